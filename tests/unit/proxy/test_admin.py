"""The admin API: who may call it, and the status merged over workers."""

from __future__ import annotations

import json

from strangler.proxy import admin, metrics
from tests.unit.routing.tables import table


def snapshot(index: int, generation: int = 1, circuit: str = "closed", error=None, **extra):
    recorder = metrics.Recorder()
    recorder.record("verification", "monolith", 200, 0.002, now=1000.0)
    t = table(25)
    return {
        "index": index,
        "pid": 1000 + index,
        "written_at": 1000.0,
        "source": t.source,
        "default_backend": t.default_backend,
        "routes": admin.routes_view(t),
        "backends": {n: {"url": b.url, "health": b.health} for n, b in t.backends.items()},
        "table": {
            "generation": generation,
            "digest": t.digest if generation == 1 else "other",
            "last_reload_error": error,
            "last_reload_error_at": 999.0 if error else None,
        },
        "circuits": {"monolith": {"state": "closed"}, "verification": {"state": circuit}},
        "affinity": extra.get("affinity", "ok"),
        "affinity_store": extra.get("store", "answering"),
        "affinity_backlog": extra.get("backlog", 0),
        "affinity_failed_recalls": extra.get("failed_recalls", 0),
        "events": extra.get("events", {}),
        "retries": extra.get("retries", []),
        "metrics": recorder.snapshot(1000.0),
    }


def events(at: float, **counts: int) -> dict:
    """A worker's RecentCounts snapshot with `counts` in the slot of time `at`."""
    recent = metrics.RecentCounts(lambda: at)
    for name, n in counts.items():
        recent.count(name, n)
    return recent.snapshot()


def lookup_of(headers):
    return lambda name: headers.get(name)


def call(path, headers=None, ip="127.0.0.1", token=None, snaps=None, method="GET"):
    return admin.handle(
        method, path, lookup_of(headers or {}), ip, token, lambda: snaps or [snapshot(0)], 1000.0
    )


def test_without_a_token_only_loopback_may_call():
    assert call("/_strangler/status").status == 200
    assert call("/_strangler/status", ip="::1").status == 200
    assert call("/_strangler/status", ip="10.1.2.3").status == 403


def test_with_a_token_every_call_needs_it_even_from_loopback():
    assert call("/_strangler/status", token="t0k").status == 401
    assert call("/_strangler/metrics", token="t0k").status == 401
    bearer = {"authorization": "Bearer t0k"}
    assert call("/_strangler/status", headers=bearer, token="t0k").status == 200
    header = {"x-strangler-admin-token": "t0k"}
    assert call("/_strangler/metrics", headers=header, token="t0k", ip="10.0.0.1").status == 200


def test_status_merges_workers():
    snaps = [
        snapshot(0),
        snapshot(1, generation=2, circuit="open", error="routes.yaml: x: bad", affinity="degraded"),
        snapshot(2, events=events(999.0, failed_recalls=3)),
    ]
    reply = call("/_strangler/status", snaps=snaps)
    doc = json.loads(reply.body)
    assert doc["generation"] == 2 and doc["converged"] is False
    assert doc["backends"]["verification"]["circuit"] == "open"
    assert doc["backends"]["monolith"]["requests"] == 3
    assert doc["routes"][0]["split"] == {"monolith": 75, "verification": 25}
    assert doc["last_reload_error"] == "routes.yaml: x: bad"
    assert doc["affinity"] == "degraded" and doc["affinity_failed_recalls"] == 3
    assert [w["pid"] for w in doc["workers"]] == [1000, 1001, 1002]


def test_any_miss_queued_write_or_failed_recall_in_the_last_minute_is_degraded_with_counts():
    now = 1000.0
    snaps = [
        snapshot(0, events=events(now - 5, misses=2, queued_writes=1, retries=4)),
        snapshot(1, events=events(now - 200, failed_recalls=7), store="stalled", backlog=3),
        snapshot(2, retries=[["verification", "verification", "monolith", 4]]),
    ]
    doc = admin.status_document(snaps, now)
    assert doc["affinity"] == "degraded"
    assert doc["affinity_last_minute"] == {
        "misses": 2, "queued_writes": 1, "failed_recalls": 0, "lost_writes": 0,
    }  # fmt: skip
    assert doc["affinity_totals"]["failed_recalls"] == 7  # older than a minute: a total only
    assert doc["affinity_store"] == "stalled" and doc["affinity_backlog"] == 3
    assert doc["retries"]["last_minute"] == 4
    assert doc["retries"]["by_route"] == [["verification", "verification", "monolith", 4]]


def test_events_older_than_a_minute_leave_the_affinity_ok():
    snaps = [snapshot(0, events=events(800.0, misses=9))]
    doc = admin.status_document(snaps, now=1000.0)
    assert doc["affinity"] == "ok" and doc["affinity_totals"]["misses"] == 9


def test_metrics_are_prometheus_text_over_all_workers():
    reply = call("/_strangler/metrics", snaps=[snapshot(0), snapshot(1)])
    assert reply.content_type.startswith("text/plain")
    text = reply.body.decode()
    assert (
        'strangler_requests_total{route="verification",backend="monolith",status="200"} 2' in text
    )
    assert "strangler_workers 2" in text


def test_the_metrics_say_degraded_with_the_counts():
    snaps = [
        snapshot(
            0,
            events=events(995.0, misses=2, failed_recalls=2),
            retries=[["verification", "verification", "monolith", 3]],
        )
    ]
    text = admin.metrics_text(snaps, now=1000.0)
    assert "strangler_affinity_degraded 1" in text
    assert 'strangler_affinity_last_minute{event="misses"} 2' in text
    assert 'strangler_affinity_events_total{event="failed_recalls"} 2' in text
    assert (
        'strangler_retries_total{route="verification",from="verification",to="monolith"} 3' in text
    )


def test_unknown_paths_and_methods():
    assert call("/_strangler/nope").status == 404
    assert call("/_strangler/status", method="POST").status == 405
