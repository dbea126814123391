"""Per-worker figures and their merge across workers."""

from __future__ import annotations

import json

import pytest

from strangler.proxy import metrics


def test_merge_sums_workers_and_reports_the_last_minute():
    first, second = metrics.Recorder(), metrics.Recorder()
    for _ in range(90):
        first.record("verification", "monolith", 200, 0.003, now=1000.0)
    for _ in range(8):
        second.record("verification", "monolith", 201, 0.003, now=1001.0)
    for _ in range(2):
        second.record("verification", "monolith", 502, 0.2, now=1002.0)
    merged = metrics.merge([first.snapshot(1003.0), second.snapshot(1003.0)], now=1003.0)
    summary = metrics.backend_summary(merged)["monolith"]
    assert summary["requests"] == 100 and summary["errors"] == 2
    last = summary["last_minute"]
    assert last["requests"] == 100
    assert last["error_rate"] == pytest.approx(0.02)
    assert 2.0 <= last["p50_ms"] <= 5.0
    assert 100.0 <= last["p99_ms"] <= 250.0


def test_snapshots_survive_a_json_round_trip():
    recorder = metrics.Recorder()
    recorder.record("(default)", "monolith", 200, 0.001, now=50.0)
    snap = json.loads(json.dumps(recorder.snapshot(51.0)))
    merged = metrics.merge([snap], now=51.0)
    assert merged["by_status"] == {("(default)", "monolith", 200): 1}


def test_old_slots_leave_the_last_minute_but_stay_in_the_totals():
    recorder = metrics.Recorder()
    recorder.record("r", "monolith", 200, 0.001, now=1000.0)
    recorder.record("r", "monolith", 200, 0.001, now=1100.0)
    merged = metrics.merge([recorder.snapshot(1100.0)], now=1100.0)
    assert merged["totals"]["monolith"]["requests"] == 2
    assert merged["recent"]["monolith"]["requests"] == 1


def test_quantile_of_nothing_is_none_and_of_one_bucket_inside_it():
    empty = [0] * (len(metrics.BOUNDS) + 1)
    assert metrics.quantile(empty, 0.5) is None
    one = list(empty)
    one[3] = 10  # (0.002, 0.005]
    assert 0.002 <= metrics.quantile(one, 0.5) <= 0.005


def test_prometheus_text_has_counters_and_cumulative_buckets():
    recorder = metrics.Recorder()
    recorder.record("verification", "verification", 200, 0.0004, now=10.0)
    recorder.record("verification", "verification", 200, 3.0, now=10.0)
    merged = metrics.merge([recorder.snapshot(10.0)], now=10.0)
    text = metrics.prometheus_text(merged, {"strangler_workers": 2})
    labels = 'route="verification",backend="verification",status="200"'
    assert f"strangler_requests_total{{{labels}}} 2" in text
    assert 'strangler_request_duration_seconds_bucket{backend="verification",le="0.0005"} 1' in text
    assert 'strangler_request_duration_seconds_bucket{backend="verification",le="+Inf"} 2' in text
    assert 'strangler_request_duration_seconds_count{backend="verification"} 2' in text
    assert "strangler_workers 2" in text


def test_snapshot_files_are_written_whole_and_read_back(tmp_path):
    metrics.write_snapshot(tmp_path / "worker-0.json", {"index": 0})
    metrics.write_snapshot(tmp_path / "worker-1.json", {"index": 1})
    (tmp_path / "worker-2.json").write_text("{half")
    assert [s["index"] for s in metrics.read_snapshots(tmp_path)] == [0, 1]
    assert not list(tmp_path.glob(".*.tmp"))
