"""`strangler record` and `strangler verify` on an API of someone else's: match, differ, refuse."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from strangler import cli
from strangler.contracts import recording
from strangler.contracts.model import load_scenario

SCENARIO = """\
description: create a thing, then read it back
variables:
  who: name
steps:
  - name: create
    request:
      method: POST
      path: /things
      headers: {X-User: "{{who}}"}
      json: {name: lamp}
    capture:
      thing: json.id
  - name: read
    request: {method: GET, path: "/things/{{thing}}", headers: {X-User: "{{who}}"}}
"""
SINK_SCENARIO = """\
steps:
  - name: the gateway
    sink: someone@example.com
"""


class ThingsApi:
    """A real HTTP server in this process; `colour` changes what it answers (drift)."""

    def __init__(self) -> None:
        self.colour = "white"
        self.ids = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                name = json.loads(self.rfile.read(length))["name"]
                self.reply(201, {"id": next(api.ids), "name": name, "colour": api.colour})

            def do_GET(self) -> None:
                thing = int(self.path.rsplit("/", 1)[1])
                self.reply(200, {"id": thing, "name": "lamp", "colour": api.colour})

            def reply(self, status: int, document: dict) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"


@pytest.fixture
def api() -> Iterator[ThingsApi]:
    server = ThingsApi()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project of the defaults: contracts/scenarios and contracts/recordings in the cwd."""
    monkeypatch.chdir(tmp_path)
    for name in ("STRANGLER_ROUTES", "STRANGLER_VAR", "STRANGLER_AUDIT_LOG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "contracts" / "scenarios").mkdir(parents=True)
    (tmp_path / "contracts" / "scenarios" / "things.yaml").write_text(SCENARIO)
    return tmp_path


def test_recorded_from_one_server_verified_against_it_all_steps_match(
    api: ThingsApi, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["record", "--base-url", api.url]) == 0
    recorded = (project / "contracts" / "recordings" / "things.yaml").read_text()
    assert "# Change contracts/scenarios/things.yaml and re-record instead." in recorded
    assert "id: '{{thing}}'" not in recorded  # ints are not taken for captures by chance
    capsys.readouterr()
    assert cli.main(["verify", "--base-url", api.url + "/"]) == 0
    out = capsys.readouterr().out
    assert f"scenario 'things' against {api.url}: all 2 steps match" in out
    assert f"strangler verify: 1 of 1 scenarios match at {api.url}" in out


def test_a_difference_is_printed_as_the_pytest_replay_prints_it_and_exits_1(
    api: ThingsApi, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["record", "--base-url", api.url]) == 0
    api.colour = "black"
    capsys.readouterr()
    assert cli.main(["verify", "--base-url", api.url]) == 1
    out = capsys.readouterr().out
    assert f"scenario 'things' against {api.url}: 2 of 2 steps differ" in out
    assert (
        "  step 1 'create' (POST /things):\n    json.colour: recorded 'white', actual 'black'"
        in out
    )
    assert "strangler verify: 1 of 1 scenarios differ" in out


def test_a_server_that_does_not_answer_is_a_difference(
    api: ThingsApi, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["record", "--base-url", api.url]) == 0
    capsys.readouterr()
    gone = api.url
    api.server.shutdown()
    api.server.server_close()
    assert cli.main(["verify", "--base-url", gone]) == 1
    assert "not run: step 'create'" in capsys.readouterr().out


def _no_recordings(project: Path) -> list[str]:
    shutil.rmtree(project / "contracts" / "recordings")
    return []


def _stale(project: Path) -> list[str]:
    scenario = project / "contracts" / "scenarios" / "things.yaml"
    scenario.write_text(SCENARIO.replace("name: lamp", "name: desk"))
    return []


def _orphan(project: Path) -> list[str]:
    (project / "contracts" / "scenarios" / "things.yaml").rename(project / "things.yaml")
    (project / "contracts" / "scenarios" / "other.yaml").write_text(SCENARIO)
    return []


def _broken_recording(project: Path) -> list[str]:
    (project / "contracts" / "recordings" / "things.yaml").write_text("steps: [1, 2]\n")
    return []


def _sink_scenario(project: Path) -> list[str]:
    path = project / "contracts" / "scenarios" / "sink.yaml"
    path.write_text(SINK_SCENARIO)
    scenario = load_scenario(path)
    step = {"name": "the gateway", "request": {"sink": "someone@example.com"}, "response": {}}
    made = recording.Recording(scenario.name, scenario.digest, [step])
    recording.write(made, project / "contracts" / "recordings")
    return []


@pytest.mark.parametrize(
    ("spoil", "flags", "refusal"),
    [
        (_no_recordings, [], "recordings: no such recordings folder"),
        (_stale, [], "things.yaml: the scenario changed since it was recorded"),
        (_orphan, [], "things.yaml: a recording without a scenario"),
        (_broken_recording, [], "things.yaml: a step lacks its name, request or response"),
        (_sink_scenario, [], "scenario 'sink' reads the webhook sink"),
        (None, ["--scenarios", "nowhere"], "nowhere: no such scenario folder"),
        (None, ["--scenario", "nothing"], "no scenario named 'nothing'"),
        (None, ["--base-url", "localhost:8000"], "--base-url: expected http://host:port"),
        (None, ["--sink-url", "http://x:99999"], "--sink-url: 'http://x:99999' is not a URL"),
    ],
)
def test_bad_input_exits_2_before_any_request(
    api: ThingsApi, project: Path, capsys: pytest.CaptureFixture[str], spoil, flags, refusal
) -> None:
    assert cli.main(["record", "--base-url", api.url]) == 0
    extra = spoil(project) if spoil else []
    served = next(api.ids)
    capsys.readouterr()
    assert cli.main(["verify", "--base-url", api.url, *extra, *flags]) == 2
    err = capsys.readouterr().err
    assert refusal in err and err.startswith("strangler verify: "), err
    assert next(api.ids) == served + 1  # the server saw no request


def test_record_needs_a_sink_only_for_scenarios_that_read_one(
    api: ThingsApi, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "contracts" / "scenarios" / "sink.yaml").write_text(SINK_SCENARIO)
    assert cli.main(["record", "--base-url", api.url]) == 2
    assert "scenario 'sink' reads the webhook sink" in capsys.readouterr().err
    assert not (project / "contracts" / "recordings").exists()
    assert cli.main(["record", "--base-url", api.url, "--scenario", "things"]) == 0
