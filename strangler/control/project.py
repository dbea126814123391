"""Where a project keeps its files: the routing table, state and audit, contract scenarios.

A project is the nearest directory, from the working directory up, holding a `strangler.toml`
or a `pyproject.toml` with a `[tool.strangler]` table; paths in it are relative to that file.
Without one, the working directory is the project and the defaults apply there. The
environment overrides both (`STRANGLER_ROUTES`, `STRANGLER_VAR`, `STRANGLER_AUDIT_LOG`).
Nothing is ever written next to the installed code.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILES = ("strangler.toml", "pyproject.toml")
KEYS = ("routes", "var", "scenarios", "recordings")
DEFAULTS = {
    "routes": "routes.yaml",
    "var": "var",
    "scenarios": "contracts/scenarios",
    "recordings": "contracts/recordings",
}


class ProjectError(ValueError):
    """A project file that cannot be read; the message names the file and the key."""


@dataclass(frozen=True)
class Project:
    root: Path  # the directory paths are relative to
    config: Path | None  # the file they came from; None: the working directory's defaults
    routes: Path
    var: Path
    scenarios: Path
    recordings: Path
    audit_log: Path

    @property
    def admin_file(self) -> Path:
        """Where a running data plane records its admin address for the CLI."""
        return self.var / "admin.json"


def _settings_in(path: Path) -> dict[str, object] | None:
    try:
        document = tomllib.loads(path.read_text())
    except OSError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{path}: not valid TOML: {exc}") from exc
    if path.name == "pyproject.toml":
        section = document.get("tool", {}).get("strangler")
        return section if isinstance(section, dict) else None
    return document


def find_config(start: Path) -> tuple[Path, dict[str, object]] | None:
    """The nearest project file at or above `start` with strangler settings, and them."""
    for directory in (start, *start.parents):
        for name in CONFIG_FILES:
            candidate = directory / name
            if candidate.is_file():
                settings = _settings_in(candidate)
                if settings is not None:
                    return candidate, settings
    return None


def load(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Project:
    """The project around `cwd` (default: the working directory), with env overrides."""
    env = os.environ if environ is None else environ
    here = (cwd or Path.cwd()).resolve()
    found = find_config(here)
    root, config, settings = here, None, {}
    if found is not None:
        config, settings = found
        root = config.parent
    for key, value in settings.items():
        if key not in KEYS:
            raise ProjectError(f"{config}: unknown key {key!r} (known: {', '.join(KEYS)})")
        if not isinstance(value, str) or not value:
            raise ProjectError(f"{config}: {key} must be a path, got {value!r}")
    paths = {key: root / str(settings.get(key, DEFAULTS[key])) for key in KEYS}
    if env.get("STRANGLER_ROUTES"):
        paths["routes"] = Path(env["STRANGLER_ROUTES"])
    if env.get("STRANGLER_VAR"):
        paths["var"] = Path(env["STRANGLER_VAR"])
    audit = Path(env["STRANGLER_AUDIT_LOG"]) if env.get("STRANGLER_AUDIT_LOG") else None
    return Project(root, config, **paths, audit_log=audit or paths["var"] / "audit.log")
