"""The toolkit as a user gets it: the built wheel in a fresh virtualenv, used from a temp dir.

The wheel is built from a copy of this checkout and installed (with pip's cache) into a
virtualenv outside the repository. Then the session of the README's "Use it on your own
monolith" runs with that `strangler` only, from a temporary directory, on the example's
own pair of backends (`examples/orders`: a legacy shop on http.server, its orders API
rewritten on Flask): init, serve, record, verify, shift 0 -> 50 -> 100 with a header-sticky
key, status, rollback, Ctrl-C. Nothing may be written inside site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from strangler import cli
from strangler.stack.supervisor import ChildSpec, Supervisor, free_port, http_ready
from tests.integration.polling import wait_for
from tests.integration.processes import alive, descendants
from tests.repository import REPO

pytestmark = [pytest.mark.live, pytest.mark.slow]

EXAMPLE = REPO / "examples" / "orders"
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "var", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
    ".hypothesis", "tests", "examples", "docs",
)  # fmt: skip
PIP_TIMEOUT = 600  # seconds: a fresh machine downloads every dependency once
STEP_TIMEOUT = 120  # seconds for any one command of the session, on a slow shared machine


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    site_packages: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)

    def env(self) -> dict[str, str]:
        """A user's shell: the venv first on PATH, none of this test run's settings."""
        return {
            "PATH": f"{self.venv / 'bin'}:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
        }


def pip_env() -> dict[str, str]:
    """This machine's pip settings (indexes, cache), without this test run's virtualenv."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)  # a clean tree: the checkout stays as it is
    wheels = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheels,
         source],
        check=True, timeout=PIP_TIMEOUT, env=pip_env(),
    )  # fmt: skip
    (wheel,) = wheels.glob("strangler-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=STEP_TIMEOUT)
    subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel],
        check=True, timeout=PIP_TIMEOUT, env=pip_env(),
    )  # fmt: skip
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run(
        [venv / "bin" / "python", "-c", where],
        check=True, timeout=STEP_TIMEOUT, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    return Installed(venv, wheel, Path(purelib))


def test_the_wheel_installs_one_import_name_and_every_verb_runs(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        top_level = wheel.read(next(n for n in names if n.endswith("top_level.txt"))).decode()
    tops = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert tops == {"strangler"}, tops
    assert top_level.split() == ["strangler"]
    for data in ("strangler/proxy/routes.yaml", "strangler/loadtests/locust.conf",
                 "strangler/apidoc/verification-openapi.yaml",
                 "strangler/monolith/gunicorn.conf.py",
                 "strangler/extracted/verification_service/gunicorn.conf.py"):  # fmt: skip
        assert data in names, data
    for verb in sorted(cli.VERBS):  # `record` and `load` once ended in a traceback
        helped = subprocess.run(
            [installed.bin("strangler"), verb, "--help"], cwd=installed.venv.parent,
            env=installed.env(), capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False,
        )  # fmt: skip
        assert helped.returncode == 0 and f"strangler {verb}" in helped.stdout, helped.stderr


def test_fuzz_without_the_test_extra_says_what_is_missing(installed: Installed) -> None:
    ran = subprocess.run(
        [installed.bin("strangler"), "fuzz"], cwd=installed.venv.parent, env=installed.env(),
        capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False,
    )  # fmt: skip
    assert ran.returncode == 2, ran.stderr
    assert "schemathesis and hypothesis not installed" in ran.stderr
    assert "pip install 'strangler[test]'" in ran.stderr and "Traceback" not in ran.stderr


@dataclass
class Session:
    """The user's directory, their two backends, and the installed `strangler`."""

    installed: Installed
    home: Path
    legacy: str
    new: str

    def strangler(self, *args: str, expect: int = 0) -> str:
        done = subprocess.run(
            [self.installed.bin("strangler"), *args], cwd=self.home, env=self.installed.env(),
            capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False,
        )  # fmt: skip
        output = done.stdout + done.stderr
        assert done.returncode == expect, f"strangler {' '.join(args)}: {done.returncode}\n{output}"
        return output


@pytest.fixture
def session(installed: Installed, tmp_path: Path) -> Iterator[Session]:
    home = tmp_path / "shop"
    shutil.copytree(EXAMPLE, home, ignore=shutil.ignore_patterns("__pycache__"))
    legacy_port, new_port = free_port(), free_port()
    python = installed.bin("python")
    legacy = [python, "legacy_shop.py", "--port", str(legacy_port), "--database", "shop.sqlite3"]
    new = [installed.bin("gunicorn"), "--bind", f"127.0.0.1:{new_port}", "--workers", "2",
           "--no-control-socket", "new_orders:create_app()"]  # fmt: skip
    env = {**installed.env(), "ORDERS_DATABASE": "shop.sqlite3"}
    with Supervisor(log_dir=tmp_path / "logs") as apps:
        for name, argv, port in (("legacy", legacy, legacy_port), ("new", new, new_port)):
            url = f"http://127.0.0.1:{port}"
            apps.start(ChildSpec(name, argv, env, http_ready(url + "/health"), url, str(home)), 60)
        yield Session(installed, home, apps.children[0].spec.url, apps.children[1].spec.url)


def backends_of(public: str, users: list[str]) -> dict[str, str]:
    """Each user places an order and lists theirs; the one backend that served them all."""
    served: dict[str, str] = {}
    with requests.Session() as http:
        for user in users:
            headers = {"X-User": user}
            placed = http.post(public + "/api/orders/", json={"item": "tea"}, headers=headers,
                               timeout=30)  # fmt: skip
            listed = http.get(public + "/api/orders/", headers=headers, timeout=30)
            assert (placed.status_code, listed.status_code) == (201, 200), placed.text
            assert listed.json()["orders"][-1]["id"] == placed.json()["id"]
            sides = {r.headers["X-Strangler-Backend"] for r in (placed, listed)}
            assert len(sides) == 1, f"{user} was served by {sides}"
            served[user] = sides.pop()
    return served


@pytest.mark.timeout(900)
def test_a_session_on_your_own_monolith_with_the_installed_toolkit(
    installed: Installed, session: Session
) -> None:
    before = files_under(installed.site_packages)
    home, strangler = session.home, session.strangler

    pair = ("--legacy", session.legacy, "--new", session.new)
    route = ("--route", "orders", "--prefix", "/api/orders/")
    out = strangler("init", *pair, *route, "--sticky", "header:X-User", "--health", "/health")
    assert f"wrote {home / 'routes.yaml'}: route orders (/api/orders/, every method)" in out
    assert "exists: pass --force" in strangler("init", *pair, *route, expect=2)

    public, admin = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    log = home / "serve.log"
    with log.open("wb") as out_file:
        serve = subprocess.Popen(
            [installed.bin("strangler"), "serve", "--workers", "2", "--bind", public[7:],
             "--admin-bind", admin[7:]],
            cwd=home, env=installed.env(), stdout=out_file, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        run_the_session(session, serve, log, public, admin)
    finally:
        if serve.poll() is None:
            tree = descendants(serve.pid)
            serve.kill()
            for pid in tree:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        serve.wait(30)
    assert files_under(installed.site_packages) == before, "something wrote into site-packages"


def run_the_session(
    session: Session, serve: subprocess.Popen, log: Path, public: str, admin: str
) -> None:
    home, strangler = session.home, session.strangler
    wait_for(lambda: "Ctrl-C stops it." in log.read_text(), "the serve banner", timeout=90)
    banner = log.read_text()
    assert f"public URL    {public}" in banner and "   warning: " not in banner, banner
    record = json.loads((home / "var" / "dataplane.json").read_text())
    assert (record["kind"], record["admin_url"], record["pid"]) == ("embedded", admin, serve.pid)

    out = strangler("record", "--scenarios", "contracts/scenarios", "--out", "contracts/recordings",
                    "--base-url", session.legacy)  # fmt: skip
    assert "3 of 3 scenarios recorded into contracts/recordings" in out
    for committed in (EXAMPLE / "contracts" / "recordings").glob("*.yaml"):
        again = home / "contracts" / "recordings" / committed.name
        assert again.read_bytes() == committed.read_bytes(), f"{committed.name} is out of date"
    out = strangler("verify", "--recordings", "contracts/recordings", "--base-url", session.new)
    assert f"strangler verify: 3 of 3 scenarios match at {session.new}" in out
    tampered = home / "tampered"
    shutil.copytree(home / "contracts" / "recordings", tampered)
    listing = tampered / "place_and_list.yaml"
    listing.write_text(listing.read_text().replace("status: placed", "status: shipped", 1))
    out = strangler("verify", "--recordings", str(tampered), "--base-url", session.new, expect=1)
    assert "json.status: recorded 'shipped', actual 'placed'" in out
    strangler("verify", "--recordings", "nowhere", "--base-url", session.new, expect=2)

    out = strangler("shift", "orders", "50", "--reason", "canary")
    assert "orders: legacy 100% -> 50%, new 0% -> 50%" in out
    assert f"live: the proxy at {admin} runs generation 2 in all 2 workers" in out
    early = backends_of(public, [f"early-{i}" for i in range(40)])
    assert set(early.values()) == {"legacy", "new"}, early  # all on one side: p = 2 ** -39
    assert backends_of(public, list(early)) == early  # sticky: the same users, the same sides
    out = strangler("verify", "--base-url", public)
    assert f"strangler verify: 3 of 3 scenarios match at {public}" in out

    out = strangler("shift", "orders", "100")
    assert f"live: the proxy at {admin} runs generation 3" in out
    late = backends_of(public, [f"late-{i}" for i in range(10)])
    assert set(late.values()) == {"new"}
    # A user the legacy shop served keeps it for the sticky key's ttl: their flow ends there.
    on_legacy = [user for user, side in early.items() if side == "legacy"]
    assert set(backends_of(public, on_legacy).values()) == {"legacy"}

    out = strangler("status")
    assert "2 workers, converged" in out and f"routes file: {home / 'routes.yaml'}" in out
    route = next(line for line in out.splitlines() if line.startswith("orders "))
    assert "legacy 0% / new 100%" in route and "header:x-user 600s" in route

    out = strangler("rollback", "orders", "--reason", "done for today")
    assert "orders: legacy 0% -> 100%, new 100% -> 0%" in out
    assert f"live: the proxy at {admin} runs generation 4" in out
    audit = [json.loads(line) for line in (home / "var" / "audit.log").read_text().splitlines()]
    assert [(a["action"], a["new_split"]["new"]) for a in audit] == [
        ("shift", 50), ("shift", 100), ("rollback", 0),
    ]  # fmt: skip

    tree = descendants(serve.pid)
    serve.send_signal(signal.SIGINT)
    assert serve.wait(60) == 0
    assert "strangler serve: every process stopped" in log.read_text()
    assert not (home / "var" / "dataplane.json").exists()
    wait_for(lambda: not any(alive(pid) for pid in tree), "every child of serve to exit")
