"""`strangler status` renders the admin status as a readable table."""

from __future__ import annotations

from proxy import admin, status

from .test_admin import snapshot


def test_the_table_shows_routes_splits_and_backend_figures():
    doc = admin.status_document([snapshot(0), snapshot(1)], now=1000.0)
    text = status.render(doc)
    assert "generation 1" in text and "2 workers, converged" in text and "affinity ok" in text
    route_line = next(line for line in text.splitlines() if line.startswith("verification "))
    assert "/api/verification/" in route_line
    assert "monolith 75% / verification 25%" in route_line and "json:to 600s" in route_line
    monolith = next(line for line in text.splitlines() if line.startswith("monolith "))
    assert monolith.split()[:4] == ["monolith", "closed", "2", "2"]
    assert "last reload error: none" in text


def test_a_reload_error_and_disagreeing_workers_are_shown():
    doc = admin.status_document(
        [snapshot(0), snapshot(1, generation=2, error="routes.yaml: split: bad")], now=1000.0
    )
    text = status.render(doc)
    assert "RELOADING" in text and "last reload error: routes.yaml: split: bad" in text


def test_no_workers_yet():
    assert "no worker" in status.render({"workers": []})
