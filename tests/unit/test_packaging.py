"""The backend images install pyproject's `backend` extra: it covers what the backends import."""

from __future__ import annotations

import ast
import re
import sys
import tomllib

from tests.repository import REPO

BACKEND_PACKAGES = ("monolith", "extracted", "bodylimit", "apidoc")


def third_party_imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update(name.split(".")[0] for name in names)
    return found - set(sys.stdlib_module_names) - {"strangler"}


def test_the_backend_extra_covers_every_import_of_the_backends() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["backend"]
    declared = {
        re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower() for requirement in extra
    }
    imported = set().union(*(third_party_imports(p) for p in BACKEND_PACKAGES))
    assert imported, "the scan found no imports at all"
    imported = {"pyyaml" if name == "yaml" else name for name in imported}
    assert imported <= declared, f"imported but not in the backend extra: {imported - declared}"
    assert "gunicorn" in declared  # the images' CMD runs it


def test_the_proxy_extra_covers_every_import_of_the_data_plane_and_the_routing_model() -> None:
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["proxy"]
    declared = {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in extra}
    imported = third_party_imports("proxy") | third_party_imports("strangler/routing")
    assert {"uvloop", "httptools", "yaml", "xxhash"} <= imported
    assert {"pyyaml" if name == "yaml" else name for name in imported} <= declared
