"""The 15-minute history: samples are differences of the workers' totals, across restarts."""

from __future__ import annotations

import json
from pathlib import Path

from strangler.proxy import history, metrics


def worker(pid: int, *latencies: float, status: int = 200, at: float = 1000.0) -> dict:
    recorder = metrics.Recorder()
    for seconds in latencies:
        recorder.record("r", "monolith", status, seconds, at)
    return {"pid": pid, "metrics": recorder.snapshot(at)}


def test_a_sample_is_what_the_workers_served_since_the_last_one(tmp_path: Path):
    ring = history.History(tmp_path / history.FILE, now=1000.0)
    ring.sample([worker(1, 0.001, 0.001), worker(2, 0.001)], now=1005.0)
    second = ring.sample([worker(1, 0.001, 0.001, 0.001, 0.2), worker(2, 0.001)], now=1010.0)
    figures = second["backends"]["monolith"]
    assert (figures["requests"], figures["rate"]) == (2, 0.4)  # 2 more in 5 s
    assert figures["p50_ms"] < 5 < 100 < figures["p99_ms"]  # the slow one is in this sample


def test_a_restarted_worker_counts_from_zero_and_the_dead_ones_count_is_kept(tmp_path: Path):
    ring = history.History(tmp_path / history.FILE, now=1000.0)
    ring.sample([worker(1, *[0.001] * 10), worker(2, *[0.001] * 4)], now=1005.0)
    # worker 1 died and came back as pid 3 with 2 requests: no negative, no loss of those 2
    after = ring.sample([worker(3, 0.001, 0.001), worker(2, *[0.001] * 5)], now=1010.0)
    assert after["backends"]["monolith"]["requests"] == 3
    assert [s["backends"]["monolith"]["requests"] for s in ring.samples] == [14, 3]


def test_errors_are_5xx_answers_of_the_sample(tmp_path: Path):
    ring = history.History(tmp_path / history.FILE, now=1000.0)
    sample = ring.sample([worker(1, 0.001, 0.001, 0.001, 0.001, status=503)], now=1005.0)
    assert sample["backends"]["monolith"]["error_rate"] == 1.0


def test_the_ring_is_written_for_every_worker_and_read_back_by_a_new_master(tmp_path: Path):
    path = tmp_path / history.FILE
    ring = history.History(path, now=1000.0)
    for i in range(1, 4):
        ring.sample([worker(1, *[0.001] * i)], now=1000.0 + 5 * i)
    assert [s["t"] for s in history.read(path, since=1005.0)["samples"]] == [1010.0, 1015.0]
    again = history.History(path, now=1015.0 + history.SPAN - 2)  # the first two are too old
    assert [s["t"] for s in again.samples] == [1015.0]


def test_the_ring_keeps_fifteen_minutes(tmp_path: Path):
    ring = history.History(tmp_path / history.FILE, now=0.0)
    for i in range(1, 400):
        ring.sample([], now=i * history.STEP)
    kept = json.loads((tmp_path / history.FILE).read_text())["samples"]
    assert len(kept) == history.SPAN / history.STEP + 1
    assert kept[-1]["t"] - kept[0]["t"] == history.SPAN


def test_a_damaged_or_missing_ring_reads_as_empty(tmp_path: Path):
    (tmp_path / history.FILE).write_text("{half")
    assert (
        history.History(tmp_path / history.FILE, now=0.0).samples
        == type(history.History(tmp_path / "none.json", now=0.0).samples)()
    )
    assert history.read(tmp_path / "none.json")["samples"] == []
