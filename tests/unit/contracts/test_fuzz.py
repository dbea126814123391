"""The fuzz's judgement and report, without servers: answers compared, cases drawn, arguments."""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import tempfile
from typing import Any

import pytest

from strangler.contracts import fuzz
from strangler.contracts.fuzzcases import Call, Case, FlowShapes, flow_calls, plan
from strangler.contracts.fuzzdiff import Finding, Tally, curl, differences
from strangler.stack.supervisor import free_port

ID_A, ID_B = "VE" + "a" * 32, "VE" + "b" * 32
PENDING = {"status": 201, "headers": {"content-type": "application/json"},
           "json": {"id": ID_A, "to": "+15550000001", "channel": "sms", "status": "pending",
                    "expires_in": 600}}  # fmt: skip
LIMITED = {"status": 429,
           "headers": {"content-type": "application/json", "retry-after": "600"},
           "json": {"error": "rate_limited", "message": "too many codes sent"}}  # fmt: skip


def changed(answer: dict[str, Any], **parts: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(answer))
    for path, value in parts.items():
        aspect, _, key = path.partition("__")
        if not key:
            out[aspect] = value
        elif value is None:
            out[aspect].pop(key.replace("_", "-") if aspect == "headers" else key)
        else:
            out[aspect][key.replace("_", "-") if aspect == "headers" else key] = value
    return out


@pytest.mark.parametrize(
    ("legacy", "candidate", "paths"),
    [
        (PENDING, changed(PENDING, json__id=ID_B), []),  # ids by shape
        (LIMITED, changed(LIMITED, headers__retry_after="599"), []),  # Retry-After by presence
        (PENDING, changed(PENDING, json__id="42"), ["json.id"]),
        (PENDING, changed(PENDING, json__to="+15550000002"), ["json.to"]),
        (PENDING, changed(PENDING, json__expires_in="600"), ["json.expires_in"]),
        (PENDING, changed(PENDING, json__extra=1), ["json.extra"]),
        (LIMITED, changed(LIMITED, headers__retry_after=None), ["headers.retry-after"]),
        (LIMITED, changed(LIMITED, status=503, json__error="unavailable"),
         ["status", "json.error"]),
        (LIMITED, changed(LIMITED, json__message="slow down"), ["json.message"]),
        (PENDING, {"status": 201, "headers": {"content-type": "text/html"}, "text": "<p>"},
         ["headers.content-type", "json", "text"]),
    ],
)  # fmt: skip
def test_answers_are_compared_as_the_recorder_compares(
    legacy: dict, candidate: dict, paths: list[str]
) -> None:
    assert [m.path for m in differences(legacy, candidate)] == paths


def test_a_curl_line_runs_as_shown_and_names_the_sink_for_a_code() -> None:
    body = json.dumps({"to": "o'neil@x.example", "code": "0123456789"}).encode()
    call = Call("POST /c", "POST", "/c", (("Idempotency-Key", "k 'q'"),), body)
    words = shlex.split(curl(call, "http://h:1", None))
    assert words[:6] == ["curl", "-sS", "-i", "-X", "POST", "http://h:1/c"]
    assert words[6:8] == ["-H", "Idempotency-Key: k 'q'"]
    assert json.loads(words[9]) == {"to": "o'neil@x.example", "code": "0123456789"}
    coded = Call("POST /c", "POST", "/c", (), None, {"to": "+15550000001"}, "right")
    line = curl(coded, "http://h:1", "http://sink:2")
    assert '"code": "<the code the sink got>"' in line and "http://sink:2/messages" in line


SHAPES = FlowShapes(("POST", "/send"), ("POST", "/check"), r"^\+[1-9][0-9]{7,14}$",
                    r"^[^@\s]+@[^@\s]+\.[^@\s]+$", r"^[0-9]{1,10}$", 255)  # fmt: skip


def test_a_flow_sends_then_acts_on_the_same_address() -> None:
    flow = {"channel": "sms", "to": "+15550000001", "key": "k" * 255,
            "actions": [("exhaust", "1"), ("resend_same_key", "1"), ("check_right", "1"),
                        ("same_key_other_body", "12")]}  # fmt: skip
    calls = flow_calls(SHAPES, flow)
    assert [c.path for c in calls] == ["/send"] + ["/check"] * 6 + ["/send", "/check", "/send"]
    assert [c.sink_code for c in calls[1:7]] == ["wrong"] * 6
    assert calls[7] == calls[0] and dict(calls[0].headers)["Idempotency-Key"] == "k" * 255
    assert calls[8].sink_code == "right" and calls[8].document == {"to": "+15550000001"}
    assert json.loads(calls[9].body) == {"to": "+15550000001", "channel": "sms", "note": "12"}


def test_the_same_seed_draws_the_same_cases_and_another_seed_others() -> None:
    document = fuzz.load_document(None)
    first, again, other = (plan(document, 6, s) for s in (3, 3, 4))
    assert first.cases == again.cases
    assert first.cases != other.cases
    assert first.counts["POST /api/verification/check"] == {"valid": 3, "invalid": 3}
    assert first.counts["flow"] == {"flow": 6}
    assert {c.kind for c in first.cases} == {"valid", "invalid", "flow"}


DIGEST = """
import hashlib, sys
from strangler.contracts.fuzz import load_document
from strangler.contracts.fuzzcases import plan
cases = plan(load_document(None), 6, 5).cases
print(hashlib.sha256(repr(cases).encode()).hexdigest())
"""


def test_a_seed_draws_the_same_cases_in_a_fresh_process_as_in_this_one() -> None:
    # Hypothesis draws constants from the loaded modules: this process has many more loaded.
    fresh = subprocess.run([sys.executable, "-c", DIGEST], capture_output=True, text=True,
                           check=True, timeout=120, cwd=tempfile.gettempdir())  # fmt: skip
    here = plan(fuzz.load_document(None), 6, 5).cases
    assert fresh.stdout.strip() == hashlib.sha256(repr(here).encode()).hexdigest()


def finding(calls: int, status: int) -> Finding:
    call = Call("POST /c", "POST", "/c", (), b"{}")
    old, new = changed(LIMITED, status=status), LIMITED
    return Finding(Case("flow", "flow", (call,) * calls), calls - 1, old, new,
                   tuple(differences(old, new)))  # fmt: skip


def test_the_report_groups_by_kind_shows_the_smallest_case_and_counts() -> None:
    tally = Tally()
    for found in (finding(3, 404), finding(1, 404), finding(2, 200), None):
        tally.add(found, had_5xx=False)
    tally.add(None, had_5xx=True)
    lines = tally.render("http://cand:1", None)
    heads = [line for line in lines if line.startswith("difference")]
    assert heads == [
        "difference 1 of 2: POST /c differs: legacy 404, candidate 429 (2 cases)",
        "difference 2 of 2: POST /c differs: legacy 200, candidate 429 (1 case)",
    ]
    first_group = lines[: lines.index(heads[1])]
    assert sum(line.startswith("    curl") for line in first_group) == 1  # the 1-request case
    assert tally.summary() == "5 cases, 3 differ, 1 5xx" and tally.failed


def test_a_tally_of_equal_answers_passes() -> None:
    tally = Tally()
    tally.add(None, had_5xx=False)
    assert not tally.failed and tally.summary() == "1 cases, 0 differ, 0 5xx"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--legacy", "http://a:1"], "--legacy and --candidate go together"),
        (["--candidate", "http://a:1"], "--legacy and --candidate go together"),
        (["--sink-url", "http://s:1"], "--sink-url goes with --legacy and --candidate"),
        (["--legacy", "ftp://a", "--candidate", "http://b:1"], "--legacy: expected http://"),
        (["--legacy", "http://a:1", "--candidate", "http://b:x"], "--candidate: 'http://b:x'"),
        (["--spec", "/nonexistent/openapi.yaml"], "--spec /nonexistent/openapi.yaml:"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_with_the_flag_named(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    fuzz.add_arguments("fuzz", parser)
    assert fuzz.main("fuzz", parser.parse_args(argv)) == 2
    assert message in capsys.readouterr().err


def test_a_backend_that_does_not_answer_is_named_before_anything_is_generated(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    parser = argparse.ArgumentParser()
    fuzz.add_arguments("fuzz", parser)
    args = parser.parse_args(["--legacy", url, "--candidate", url])
    assert fuzz.main("fuzz", args) == 2
    assert f"--legacy {url}: no answer" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_examples_must_be_a_positive_number(value: str) -> None:
    parser = argparse.ArgumentParser()
    fuzz.add_arguments("fuzz", parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--examples", value])


def test_a_document_without_paths_is_refused(tmp_path: Any) -> None:
    spec = tmp_path / "x.yaml"
    spec.write_text("openapi: 3.1.0\ninfo: {title: x}\n")
    with pytest.raises(fuzz.FuzzError, match="not an OpenAPI document"):
        fuzz.load_document(spec)
