"""Recordings on disk: one reviewable YAML file per scenario, written byte-stable."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, YAMLError

from strangler.contracts.filters import redact_request_headers
from strangler.contracts.model import NO_BODY, Scenario, Step, Via

HEADER = (
    "# Recorded from the monolith by `strangler record`; do not edit by hand.\n"
    "# Change {source} and re-record instead.\n"
)


class RecordingError(ValueError):
    """A recording file that cannot be read as one; the message names the file."""


@dataclass(frozen=True)
class Recording:
    scenario: str
    scenario_digest: str
    steps: list[dict[str, Any]]  # {"name", "request", "response"}; response holds matchers
    source: str | None = None  # the scenario file, as the header names it; not in the data

    def expected(self, index: int) -> dict[str, Any]:
        return self.steps[index]["response"]


def request_summary(step: Step) -> dict[str, Any]:
    """The step's request as a reader of the recording sees it (placeholders, no secrets)."""
    if step.request is None:
        return {"sink": step.sink}
    req = step.request
    summary: dict[str, Any] = {"method": req.method, "path": req.path}
    if step.via is not Via.TARGET:
        summary["via"] = step.via.value
    if req.headers:
        summary["headers"] = redact_request_headers(req.headers)
    if req.json is not NO_BODY:
        summary["json"] = req.json
    elif req.raw is not None:
        summary["raw"] = req.raw
    elif req.raw_bytes is not None:
        summary["raw_bytes"] = req.raw_bytes
    return summary


def build(scenario: Scenario, responses: list[dict[str, Any]]) -> Recording:
    steps = [
        {"name": step.name, "request": request_summary(step), "response": response}
        for step, response in zip(scenario.steps, responses, strict=True)
    ]
    return Recording(scenario.name, scenario.digest, steps)


def _yaml() -> YAML:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # our order: request before response
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def dumps(recording: Recording) -> str:
    data = {
        "scenario": recording.scenario,
        "scenario_digest": recording.scenario_digest,
        "steps": recording.steps,
    }
    buffer = io.StringIO()
    _yaml().dump(data, buffer)
    source = recording.source or f"the scenario {recording.scenario!r}"
    return HEADER.format(source=source) + buffer.getvalue()


def path_for(name: str, directory: Path) -> Path:
    return directory / f"{name}.yaml"


def write(recording: Recording, directory: Path) -> Path:
    """Write atomically (a reader never sees half a file)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = path_for(recording.scenario, directory)
    partial = target.with_suffix(".yaml.partial")
    partial.write_text(dumps(recording))
    partial.replace(target)
    return target


def read(name: str, directory: Path) -> Recording | None:
    """The recording of scenario `name`, or None when it was never recorded."""
    path = path_for(name, directory)
    if not path.exists():
        return None
    return read_file(path)


def read_file(path: Path) -> Recording:
    """The recording in `path`; RecordingError when it is not one."""
    try:
        data = _yaml().load(path.read_text())
    except (OSError, YAMLError) as exc:
        raise RecordingError(f"{path}: not a readable recording: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise RecordingError(f"{path}: not a recording (no list of steps)")
    steps = data["steps"]
    if not all(isinstance(s, dict) and {"name", "request", "response"} <= s.keys() for s in steps):
        raise RecordingError(f"{path}: a step lacks its name, request or response")
    if not isinstance(data.get("scenario"), str) or not isinstance(
        data.get("scenario_digest"), str
    ):
        raise RecordingError(f"{path}: scenario and scenario_digest must be strings")
    return Recording(data["scenario"], data["scenario_digest"], list(steps))
