"""`strangler fuzz`: generated requests to the legacy backend and the candidate, answers compared.

Each case (see `fuzzcases`) is sent request by request to the legacy backend, then to the
candidate; the answers are compared as the recorder compares (see `fuzzdiff`). Without
`--legacy`/`--candidate` it fuzzes this repository's demo: the monolith against the
verification service, on a stack of its own on free ports, with the webhook sink the flows
read their codes from. Schemathesis and hypothesis come with the test extra; without them the
verb says so and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from ruamel.yaml import YAML, YAMLError

from strangler.contracts.runner import EndpointError, check_base_url, observe
from strangler.stack.running import running_stack

if TYPE_CHECKING:
    from strangler.contracts.fuzzcases import Call, Case, Plan
    from strangler.contracts.fuzzdiff import Finding, Tally

DEFAULT_EXAMPLES = 200  # per operation (half valid, half invalid), and as many flows
DEFAULT_SEED = 0
REQUEST_TIMEOUT = 10.0
NEEDED = ("schemathesis", "hypothesis")
NO_ANSWER = 0  # the status shown when a backend gave no answer at all


class FuzzError(RuntimeError):
    """The fuzz cannot run (a missing library, an unreadable document); the message says why."""


def missing_libraries() -> list[str]:
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def load_document(path: Path | None) -> dict[str, Any]:
    """The OpenAPI document at `path`, or the verification API's as installed."""
    if path is None:
        from importlib import resources

        source = resources.files("strangler.apidoc").joinpath("verification-openapi.yaml")
        name, text = "the installed verification-openapi.yaml", source.read_text("utf-8")
    else:
        try:
            name, text = str(path), path.read_text("utf-8")
        except OSError as exc:
            raise FuzzError(f"--spec {path}: {exc.strerror or exc}") from None
    try:
        document = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise FuzzError(f"{name}: not YAML or JSON: {exc}") from None
    if not isinstance(document, dict) or "paths" not in document:
        raise FuzzError(f"{name}: not an OpenAPI document (no `paths`)")
    return document


@dataclass(frozen=True)
class Targets:
    legacy: str
    candidate: str
    sink: str | None  # the webhook sink's base URL; None: no flows (they need the codes)


@dataclass
class Side:
    """One backend's connection, and the last accepted send of the current flow."""

    base: str
    session: requests.Session = field(default_factory=requests.Session)
    sent: dict[str, Any] | None = None  # {"id", "to"[, "code"]} of the flow's last 201 send

    def ask(self, call: Call, sink: str | None) -> dict[str, Any]:
        body = call.body_for(self.code(call, sink)) if call.sink_code else call.body
        headers = dict(call.headers)
        try:
            response = self.session.request(
                call.method, self.base + call.path, data=body, headers=headers,
                timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
        except requests.RequestException as exc:
            self.session = requests.Session()  # a broken connection must not carry over
            return {"status": NO_ANSWER, "headers": {}, "text": f"no answer: {exc}"}
        observed = observe(response)
        answer = observed.get("json")
        if response.status_code == 201 and isinstance(answer, dict) and "id" in answer:
            self.sent = {"id": answer["id"], "to": answer.get("to")}
        return observed

    def code(self, call: Call, sink: str | None) -> str:
        """The code the sink got for this backend's last send of the flow (or a wrong one)."""
        code = "000000"
        if self.sent is not None and sink is not None:
            code = self.sent.get("code") or self._delivered(sink, self.sent) or code
            self.sent["code"] = code  # a flow checks one send's code many times: read it once
        if call.sink_code == "wrong":
            return "".join(str((int(c) + 1) % 10) for c in code)
        return code

    def _delivered(self, sink: str, sent: dict[str, Any]) -> str | None:
        messages = self.session.get(f"{sink}/messages", params={"to": sent["to"]},
                                    timeout=REQUEST_TIMEOUT).json()["messages"]  # fmt: skip
        return next((str(m["code"]) for m in messages if m.get("id") == sent["id"]), None)


def run_case(
    case: Case, legacy: Side, candidate: Side, sink: str | None, tally: Tally
) -> tuple[Finding | None, bool]:
    """(the case's first finding or None, whether any answer was 5xx)."""
    from strangler.contracts.fuzzdiff import Finding, differences

    legacy.sent = candidate.sent = None
    first: Finding | None = None
    had_5xx = False
    for index, call in enumerate(case.calls):
        old, new = legacy.ask(call, sink), candidate.ask(call, sink)
        tally.heard(call, old)
        server_error = any(a["status"] >= 500 or a["status"] == NO_ANSWER for a in (old, new))
        mismatches = tuple(differences(old, new))
        if first is None and (mismatches or server_error):
            first = Finding(case, index, old, new, mismatches)
        had_5xx = had_5xx or server_error
    return first, had_5xx


def fuzz(plan: Plan, targets: Targets, progress: Callable[[str], None] | None = None) -> Tally:
    """Send every case of `plan` to both backends, in order; the grouped findings."""
    from strangler.contracts.fuzzdiff import Tally

    tally = Tally()
    legacy, candidate = Side(targets.legacy), Side(targets.candidate)
    with legacy.session, candidate.session:
        for number, case in enumerate(plan.cases, 1):
            tally.add(*run_case(case, legacy, candidate, targets.sink, tally))
            if progress and number % 500 == 0:
                progress(f"  {number} of {len(plan.cases)} cases sent: {tally.summary()}")
    return tally


def make_plan(document: dict[str, Any], examples: int, at_seed: int, flows: bool) -> Plan:
    """The cases of the run; FuzzError when the document cannot be generated from."""
    from schemathesis.errors import SchemathesisError

    from strangler.contracts.fuzzcases import plan

    try:
        return plan(document, examples, at_seed, flows)
    except SchemathesisError as exc:
        raise FuzzError(f"cannot generate requests from the document: {exc}") from None


def report(plan: Plan, tally: Tally, targets: Targets, timing: str) -> list[str]:
    """The lines `strangler fuzz` prints: what was generated, the differences, the summary."""
    lines = [f"fuzz: legacy {targets.legacy}, candidate {targets.candidate}"]
    for operation, kinds in plan.counts.items():
        made = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        lines.append(f"  {operation}: {made}")
    if plan.flows_skipped:
        lines.append(f"  no flows: {plan.flows_skipped}")
    lines.append("the legacy answered:")
    lines += tally.reached()
    lines += tally.render(targets.candidate, targets.sink)
    lines.append(f"{tally.summary()} ({timing})")
    return lines


def check_reachable(url: str, flag: str) -> None:
    """FuzzError naming the flag unless something answers HTTP at `url` (any status will do)."""
    try:
        requests.get(url + "/", timeout=REQUEST_TIMEOUT).close()
    except requests.RequestException as exc:
        raise FuzzError(f"{flag} {url}: no answer: {exc}") from None


@contextlib.contextmanager
def targets_for(args: argparse.Namespace) -> Iterator[Targets]:
    """The given URLs, or the demo monolith and service started here on free ports."""
    if args.legacy:
        yield Targets(args.legacy, args.candidate, args.sink_url)
        return
    with (
        tempfile.TemporaryDirectory(prefix="strangler-fuzz-") as tmp,
        running_stack(Path(tmp), service=True, proxy=False) as stack,
    ):
        yield Targets(stack.monolith_url, stack.service_url, stack.sink.base_url)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--spec", type=Path, default=None,
        help="the OpenAPI document (default: the verification API's, as installed)")  # fmt: skip
    add("--legacy", help="the legacy backend's base URL (default: the demo monolith, started here)")
    add("--candidate", help="the new backend's base URL (with --legacy)")
    add("--sink-url", help="with --legacy: the webhook sink both deliver to (for the flows)")
    add("--examples", type=_positive, default=DEFAULT_EXAMPLES,
        help=f"cases per operation, half valid, half invalid; as many flows "
             f"(default {DEFAULT_EXAMPLES})")  # fmt: skip
    add("--seed", type=int, default=DEFAULT_SEED, help="the generation seed (default 0)")


def _check_args(args: argparse.Namespace) -> None:
    if bool(args.legacy) != bool(args.candidate):
        raise EndpointError("--legacy and --candidate go together (or neither: the demo stack)")
    if args.sink_url and not args.legacy:
        raise EndpointError("--sink-url goes with --legacy and --candidate")
    for flag in ("legacy", "candidate", "sink_url"):
        if getattr(args, flag):
            setattr(args, flag, check_base_url(getattr(args, flag), "--" + flag.replace("_", "-")))


def main(verb: str, args: argparse.Namespace) -> int:
    missing = missing_libraries()
    if missing:
        print(f"strangler fuzz: {' and '.join(missing)} not installed; the fuzz needs the test "
              "extra: pip install 'strangler[test]'", file=sys.stderr)  # fmt: skip
        return 2
    try:
        _check_args(args)
        document = load_document(args.spec)
        for flag in ("legacy", "candidate", "sink_url"):
            if getattr(args, flag):
                check_reachable(getattr(args, flag), "--" + flag.replace("_", "-"))
    except (EndpointError, FuzzError) as exc:
        print(f"strangler fuzz: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    flows = not args.legacy or bool(args.sink_url)
    try:
        plan = make_plan(document, args.examples, args.seed, flows)
    except FuzzError as exc:
        print(f"strangler fuzz: {exc}", file=sys.stderr)
        return 2
    generated = time.monotonic() - started
    with targets_for(args) as targets:
        tally = fuzz(plan, targets, progress=lambda line: print(line, flush=True))
    elapsed = time.monotonic() - started
    timing = f"seed {args.seed}, generated in {generated:.1f} s, {elapsed:.1f} s in all"
    print("\n".join(report(plan, tally, targets, timing)))
    return 1 if tally.failed else 0
