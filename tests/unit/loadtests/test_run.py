"""The locust runner's pure parts: run times and the locust command line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from strangler.loadtests.run import FORUM_ONLY, add_arguments, locust_argv, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("30s", 30), ("2m", 120), ("1h30m", 5400), ("1m 5s", 65)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5x", "10s later"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="not a run time"):
        parse_duration(text)


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments("load", parser)
    return parser.parse_args(argv)


def test_locust_runs_every_persona_when_a_sink_reads_the_codes() -> None:
    argv = locust_argv(parsed("--users", "7"), "http://h", "http://sink", Path("/r/x"))
    assert argv[argv.index("--sink-url") + 1] == "http://sink"
    assert argv[argv.index("--users") + 1] == "7"
    assert argv[argv.index("--csv") + 1] == "/r/x"
    assert argv[argv.index("--html") + 1] == "/r/x.html"
    assert not set(FORUM_ONLY) & set(argv)


def test_without_a_sink_only_the_forum_personas_run(capsys: pytest.CaptureFixture) -> None:
    argv = locust_argv(parsed(), "http://h", None, Path("/r/x"))
    assert argv[-2:] == FORUM_ONLY
    assert "--sink-url" not in argv
    assert "no PhoneVerifier" in capsys.readouterr().out


def test_the_failure_threshold_reaches_locust() -> None:
    argv = locust_argv(parsed("--max-failure-ratio", "0.05"), "http://h", "http://s", Path("x"))
    assert argv[argv.index("--max-failure-ratio") + 1] == "0.05"
