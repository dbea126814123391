"""Read a Dockerfile's instructions and lay out its build context as its COPY lines do.

There is no Docker engine here: a test copies what the image would hold into a folder (the
image's WORKDIR) and runs the image's CMD from there, so a COPY that misses a package fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.repository import REPO


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = dockerfile.read_text().replace("\\\n", " ")
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def exec_form(dockerfile: Path, keyword: str) -> list[str]:
    """The JSON argv of the (last) CMD or HEALTHCHECK."""
    args = [rest for kw, rest in instructions(dockerfile) if kw == keyword][-1]
    if keyword == "HEALTHCHECK":
        args = args[args.index("CMD") + len("CMD") :]
    return json.loads(args)


def lay_out_image(dockerfile: Path, app_dir: Path) -> Path:
    """Copy every `COPY SRC... DEST` of the Dockerfile (relative to WORKDIR) into `app_dir`."""
    for keyword, rest in instructions(dockerfile):
        if keyword != "COPY":
            continue
        *sources, dest = rest.split()
        for source in sources:
            src = REPO / source
            # An absolute destination lands under app_dir/rootfs, never on this machine's /.
            target = (
                app_dir / "rootfs" / dest.lstrip("/") if dest.startswith("/") else app_dir / dest
            )
            if src.is_dir():
                ignore = shutil.ignore_patterns("__pycache__")  # .dockerignore's
                shutil.copytree(src, target, dirs_exist_ok=True, ignore=ignore)
            else:
                if dest.endswith("/"):
                    target = target / src.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
    return app_dir


def assert_imports_from(app_dir: Path, code: str) -> None:
    """Run `code` in `app_dir` and check every `strangler` module it loaded came from there."""
    check = (
        f"{code}\nimport sys\n"
        "bad = [m.__name__ for n, m in list(sys.modules.items()) if n.startswith('strangler')"
        " and getattr(m, '__file__', None) and not m.__file__.startswith(sys.argv[1])]\n"
        "assert not bad, f'not in the image: {bad}'"
    )
    result = subprocess.run(
        [sys.executable, "-c", check, str(app_dir)],
        cwd=app_dir, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
