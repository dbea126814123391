"""The proxy's routing table copy for a replay at a given split."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from strangler.control.shift import ControlError
from strangler.stack.running import DEMO_ROUTES as ROUTES_FILE
from strangler.stack.running import write_routes


@pytest.mark.parametrize("percent", [0, 50, 100])
def test_the_copy_moves_percent_to_the_new_backend_and_keeps_comments(
    tmp_path: Path, percent: int
) -> None:
    copy = write_routes(ROUTES_FILE, tmp_path / "routes.yaml", percent)
    table = YAML(typ="safe").load(copy.read_text())
    route = next(r for r in table["routes"] if r["name"] == "verification")
    assert route["split"] == {"monolith": 100 - percent, "verification": percent}
    assert "# The proxy's routing table" in copy.read_text()


def test_an_unknown_route_is_named(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="no route 'billing'"):
        write_routes(ROUTES_FILE, tmp_path / "routes.yaml", 10, route="billing")
