"""The files an exported HAProxy runs from (config, splits map, Lua), written and checked.

Each file is replaced atomically, and a config is checked with `haproxy -c` before it may
replace the running one: a table HAProxy would refuse never reaches it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from strangler.haproxy.config import LUA_FILE, MAP_FILE, ExportOptions, render
from strangler.routing.records import RoutingTable

CONFIG_FILE = "haproxy.cfg"
MASTER_SOCKET = "master.sock"


class HAProxyError(RuntimeError):
    """HAProxy is missing, refused a config, or did not start."""


@dataclass(frozen=True)
class Written:
    config: Path
    splits_map: Path
    lua: Path


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)),
        None,
    )
    if found is None:
        raise HAProxyError(
            "haproxy is not installed: apt-get install -y haproxy (2.6 or newer), "
            "or use the embedded data plane"
        )
    return found


def installed() -> bool:
    try:
        haproxy_binary()
    except HAProxyError:
        return False
    return True


def write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def lua_source() -> str:
    return resources.files("strangler.haproxy").joinpath(LUA_FILE).read_text()


def write(table: RoutingTable, options: ExportOptions, config: Path | None = None) -> Written:
    """Render `table` and write its files into `options.state_dir` (the config to `config`)."""
    state = options.state_dir
    state.mkdir(parents=True, exist_ok=True)
    text, splits = render(table, options)  # RoutingConfigError before anything is written
    written = Written(config or state / CONFIG_FILE, state / MAP_FILE, state / LUA_FILE)
    write_atomically(written.lua, lua_source())
    write_atomically(written.splits_map, splits)
    write_atomically(written.config, text)
    return written


def check(config: Path) -> None:
    """`haproxy -c`; HAProxyError with its alerts when the config is refused."""
    result = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        alerts = [line for line in (result.stdout + result.stderr).splitlines() if "ALERT" in line]
        raise HAProxyError(f"haproxy -c refused {config}: " + " | ".join(alerts or ["(no output)"]))


def master_argv(config: Path, state_dir: Path) -> list[str]:
    """HAProxy in master-worker mode, in the foreground, with its master CLI for reloads."""
    return [haproxy_binary(), "-W", "-db", "-f", str(config), "-S", str(state_dir / MASTER_SOCKET)]
