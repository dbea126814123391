"""The layout's rules, read from the code's own imports: no circles, no package above its own.

`strangler.routing` (the routing model) imports nothing of ours; the data plane
(`strangler.proxy`) imports only the routing model; the toolkit imports those below it; the demo
backends import none of them. Imports under `TYPE_CHECKING` count: a circle of types is a circle.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.repository import REPO

# Rank of each package: a module may import its own package and packages of a lower rank.
RANKS = {
    "strangler.routing": 0,
    "strangler.proxy": 1,
    "strangler.control": 2,
    "strangler.haproxy": 3,  # the HAProxy data plane's export and agent
    "strangler.rollout": 3,  # the rollout controller: shifts (control), figures (proxy admin)
    "strangler.stack": 4,
    "strangler.contracts": 5,
    "strangler.loadtests": 5,
    "strangler": 6,  # the command line and the benchmark
}
BACKENDS = (
    "strangler.monolith", "strangler.extracted", "strangler.bodylimit", "strangler.apidoc",
)  # fmt: skip
OLD_TOP_LEVEL = {"proxy", "monolith", "extracted", "bodylimit", "apidoc", "loadtests"}


def package_dirs() -> dict[str, Path]:
    """Import package -> folder, as pyproject.toml maps them."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setuptools.get("package-dir", {})
    dirs = {}
    for package in setuptools["packages"]:
        parent = max((p for p in mapping if package == p or package.startswith(p + ".")),
                     key=len, default=None)  # fmt: skip
        if parent is None:
            dirs[package] = REPO / package.replace(".", "/")
        else:
            rest = package[len(parent) :].lstrip(".").replace(".", "/")
            dirs[package] = REPO / mapping[parent] / rest
    return dirs


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in package_dirs().items():
        for path in folder.glob("*.py"):
            if path.name.count(".") > 1:  # gunicorn.conf.py: a settings file, not a module
                continue
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def imports_of(path: Path, module: str) -> Iterator[tuple[str, list[str]]]:
    """(module, [module.name, ...]) for every import in this file (absolute or relative)."""
    is_package = path.stem == "__init__"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                parts = parts if is_package else parts[:-1]
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base, [f"{base}.{alias.name}" for alias in node.names]


def our_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        deps = set()
        for base, members in imports_of(path, name):
            submodules = [m for m in members if m in known]
            # `from package import module` needs the module; the package is already loading.
            if not members or len(submodules) < len(members):
                deps.add(base)
            deps.update(submodules)
        graph[name] = {dep for dep in deps if dep in known and dep != name}
    return graph


def package_of(module: str) -> str:
    for package in sorted([*RANKS, *BACKENDS], key=len, reverse=True):
        if module == package or module.startswith(package + "."):
            return package
    raise AssertionError(f"{module} belongs to no known package")


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if state.get(other) == 1:
                return [*stack[stack.index(other) :], other]
            if other not in state and (found := visit(other)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_scan_sees_the_whole_product() -> None:
    graph = our_graph()
    expected = {
        "strangler.routing.placement", "strangler.proxy.server", "strangler.control.shift",
        "strangler.contracts.replay", "strangler.loadtests.migration",
        "strangler.monolith.verification", "strangler.extracted.verification_service.http",
    }  # fmt: skip
    assert expected <= graph.keys()
    assert "strangler.routing.dispatch" in graph["strangler.proxy.plane"]


@pytest.mark.parametrize("package", sorted([*RANKS, *BACKENDS, "strangler.extracted"]))
def test_no_import_circle_inside_a_package(package: str) -> None:
    graph = our_graph()
    inside = {m: {i for i in deps if package_of(i) == package}
              for m, deps in graph.items() if package_of(m) == package}  # fmt: skip
    assert cycle_in(inside) is None, " -> ".join(cycle_in(inside) or [])


def test_no_package_imports_one_above_it() -> None:
    offences = []
    for module, deps in our_graph().items():
        mine = package_of(module)
        for dep in deps:
            theirs = package_of(dep)
            if mine in BACKENDS:
                allowed = theirs in (mine, "strangler.bodylimit", "strangler.apidoc")
            elif theirs in BACKENDS:
                allowed = mine in ("strangler.stack", "strangler", "strangler.loadtests")
                allowed = allowed or (mine == "strangler.contracts" and dep.endswith("create_app"))
            else:
                allowed = theirs == mine or RANKS[theirs] < RANKS[mine]
            if not allowed:
                offences.append(f"{module} imports {dep}")
    assert offences == []


def test_the_routing_model_imports_nothing_of_ours_and_no_io() -> None:
    for module, path in modules().items():
        if package_of(module) != "strangler.routing":
            continue
        names = {n for base, members in imports_of(path, module) for n in (base, *members)}
        assert not {n for n in names if n.startswith("strangler.") and
                    package_of(n) != "strangler.routing"}, module  # fmt: skip
        top = {n.split(".")[0] for n in names}
        assert not top & {"asyncio", "socket", "uvloop", "httptools", "redis", "requests",
                          "subprocess", "urllib.request", "http"}, module  # fmt: skip


def test_no_code_imports_a_module_by_its_old_top_level_name() -> None:
    for path in [*REPO.glob("*/**/*.py")]:
        if ".venv" in path.parts or "var" in path.parts:
            continue
        for name, _ in imports_of(path, "x.y"):
            assert name.split(".")[0] not in OLD_TOP_LEVEL, f"{path}: imports {name}"
