"""Scenarios: typed records parsed from the reviewable YAML files, validated up front."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

from strangler.contracts import paths
from strangler.contracts.choices import Choice
from strangler.contracts.matchers import is_matcher, validate_matcher
from strangler.contracts.templating import VariableKind

NO_BODY = object()


class ScenarioError(ValueError):
    """An invalid scenario file; the message names the file, the step and the bad value."""


class Target(Choice):
    """The backend a replay runs against."""

    MONOLITH = "monolith"
    SERVICE = "service"
    PROXY = "proxy"


class RecordMode(Choice):
    """vcrpy's record modes, the two that fit us: re-record all, or only what is missing."""

    ALL = "all"
    NEW = "new"


class Via(Choice):
    """Where a step's request goes: the target, or the legacy app (the monolith) behind it."""

    TARGET = "target"
    MONOLITH = "monolith"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = NO_BODY
    raw: str | None = None
    raw_bytes: int | None = None  # a body of that many filler bytes (too big to write down)


@dataclass(frozen=True)
class SinkCode:
    """Capture the newest code the gateway received for an address (`wrong`: a code that is not)."""

    address: str
    wrong: bool = False


@dataclass(frozen=True)
class Until:
    """Repeat the step until the value at `path` equals `equals`, for at most `within` seconds."""

    path: str
    equals: Any
    within: float
    every: float = 0.2


@dataclass(frozen=True)
class Step:
    name: str
    request: Request | None = None
    sink: str | None = None  # instead of a request: the messages the gateway got for an address
    via: Via = Via.TARGET
    delay: float = 0.0
    capture: dict[str, str | SinkCode] = field(default_factory=dict)
    until: Until | None = None
    match: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    targets: tuple[Target, ...]
    variables: dict[str, VariableKind]
    steps: tuple[Step, ...]
    match: dict[str, Any]  # explicit matchers for every step whose response has the path
    digest: str  # of the parsed content: comments may change, the contract may not
    source: str = ""  # the file it was read from

    def applies_to(self, target: Target) -> bool:
        return target in self.targets

    @property
    def uses_sink(self) -> bool:
        """Whether a step reads the webhook sink (its messages, or a code it received)."""
        return any(
            step.sink is not None or any(isinstance(c, SinkCode) for c in step.capture.values())
            for step in self.steps
        )


def _keys(data: Any, allowed: set[str], where: str, required: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a mapping, got {data!r}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ScenarioError(
            f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    for key in required:
        if key not in data:
            raise ScenarioError(f"{where}: {key!r} is required")
    return data


def _request(data: Any, where: str) -> Request:
    keys = {"method", "path", "headers", "json", "raw", "raw_bytes"}
    data = _keys(data, keys, where, ("method", "path"))
    bodies = [k for k in ("json", "raw", "raw_bytes") if k in data]
    if len(bodies) > 1:
        raise ScenarioError(f"{where}: give one body of json, raw, raw_bytes (got {bodies})")
    headers = data.get("headers") or {}
    if not all(isinstance(v, str) for v in headers.values()):
        raise ScenarioError(f"{where}.headers: values must be strings")
    return Request(
        method=str(data["method"]).upper(),
        path=str(data["path"]),
        headers=dict(headers),
        json=data.get("json", NO_BODY),
        raw=data.get("raw"),
        raw_bytes=data.get("raw_bytes"),
    )


def _capture(data: Any, where: str) -> dict[str, str | SinkCode]:
    captures: dict[str, str | SinkCode] = {}
    for name, source in (data or {}).items():
        if isinstance(source, str):
            _path(source, f"{where}.{name}")
            captures[name] = source
        else:
            spec = _keys(source, {"sink_code", "wrong"}, f"{where}.{name}", ("sink_code",))
            captures[name] = SinkCode(str(spec["sink_code"]), bool(spec.get("wrong", False)))
    return captures


def _path(text: str, where: str) -> str:
    try:
        paths.parse(text)
    except paths.PathError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    return text


def _match(data: Any, where: str) -> dict[str, Any]:
    for path, matcher in (data or {}).items():
        _path(path, f"{where}.{path}")
        if is_matcher(matcher):
            try:
                validate_matcher(matcher)
            except ValueError as exc:
                raise ScenarioError(f"{where}.{path}: {exc}") from None
    return dict(data or {})


def _until(data: Any, where: str) -> Until | None:
    if data is None:
        return None
    data = _keys(data, {"path", "equals", "within", "every"}, where, ("path", "equals", "within"))
    return Until(
        path=_path(data["path"], f"{where}.path"),
        equals=data["equals"],
        within=float(data["within"]),
        every=float(data.get("every", 0.2)),
    )


def _step(data: Any, where: str) -> Step:
    keys = {"name", "request", "sink", "via", "delay", "capture", "until", "match"}
    data = _keys(data, keys, where, ("name",))
    where = f"{where} ({data['name']})"
    if ("request" in data) == ("sink" in data):
        raise ScenarioError(f"{where}: give exactly one of 'request' or 'sink'")
    try:
        via = Via.parse(data.get("via", "target"))
    except ValueError as exc:
        raise ScenarioError(f"{where}.via: {exc}") from None
    return Step(
        name=str(data["name"]),
        request=_request(data["request"], f"{where}.request") if "request" in data else None,
        sink=data.get("sink"),
        via=via,
        delay=float(data.get("delay", 0)),
        capture=_capture(data.get("capture"), f"{where}.capture"),
        until=_until(data.get("until"), f"{where}.until"),
        match=_match(data.get("match"), f"{where}.match"),
    )


def parse_scenario(data: Any, source: str, default_name: str) -> Scenario:
    """A Scenario from loaded YAML; ScenarioError names `source` and the bad part."""
    keys = {"name", "description", "targets", "variables", "steps", "match"}
    data = _keys(data, keys, source, ("steps",))
    try:
        targets = tuple(Target.parse(t) for t in data.get("targets", [t.value for t in Target]))
        variables = {n: VariableKind.parse(k) for n, k in (data.get("variables") or {}).items()}
    except ValueError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    if not data["steps"]:
        raise ScenarioError(f"{source}: steps: at least one step is needed")
    steps = tuple(_step(s, f"{source}: steps[{i}]") for i, s in enumerate(data["steps"]))
    canonical = json.dumps({k: v for k, v in data.items() if k != "description"}, sort_keys=True)
    return Scenario(
        name=str(data.get("name", default_name)),
        description=str(data.get("description", "")).strip(),
        targets=targets,
        variables=variables,
        steps=steps,
        match=_match(data.get("match"), f"{source}: match"),
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
        source=source,
    )


def load_scenario(path: Path) -> Scenario:
    try:
        data = YAML(typ="safe", pure=True).load(path.read_text())
    except YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(data, str(path), path.stem)


def load_scenarios(directory: Path, only: str | None = None) -> list[Scenario]:
    """Every scenario in `directory`, sorted by name; `only` picks one by name."""
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: no such scenario folder")
    found = [load_scenario(p) for p in sorted(directory.glob("*.yaml"))]
    if not found:
        raise ScenarioError(f"{directory}: no scenario files (*.yaml) in it")
    names = [s.name for s in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ScenarioError(f"{directory}: two files name the scenario {twice[0]!r}")
    if only is not None:
        found = [s for s in found if s.name == only]
        if not found:
            raise ScenarioError(f"no scenario named {only!r} in {directory}")
    return found
