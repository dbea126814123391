"""Diversion windows: one worker's write is every worker's at their next request."""

from __future__ import annotations

from pathlib import Path

from strangler.proxy.diversions import SLOTS, Diversions
from tests.unit.fake_clock import FakeClock


def test_a_window_marked_by_one_worker_is_seen_by_another_at_once(tmp_path: Path) -> None:
    clock = FakeClock(now=1000.0)
    path = tmp_path / "diversions.bin"
    first, second = Diversions(path, clock), Diversions(path, clock)
    assert second.until("verification", "verification") == 0.0  # looked at before: no window
    first.mark("verification", "verification", 1600.0)
    assert second.until("verification", "verification") == 1600.0
    assert second.until("verification", "monolith") == 0.0
    assert second.until("other", "verification") == 0.0
    first.close()
    second.close()


def test_a_window_only_grows_and_a_restarted_worker_finds_it(tmp_path: Path) -> None:
    clock = FakeClock(now=1000.0)
    path = tmp_path / "diversions.bin"
    worker = Diversions(path, clock)
    worker.mark("r", "b", 1600.0)
    worker.mark("r", "b", 1200.0)  # an earlier end never shortens it
    worker.mark("r", "b", 1700.0)
    worker.close()
    assert Diversions(path, clock).until("r", "b") == 1700.0


def test_expired_windows_make_room_for_new_pairs(tmp_path: Path) -> None:
    clock = FakeClock(now=1000.0)
    diversions = Diversions(tmp_path / "diversions.bin", clock)
    for n in range(SLOTS):
        diversions.mark(f"route{n}", "b", 1010.0)
    clock.advance(20)  # all of them over
    diversions.mark("new", "b", 1600.0)
    assert diversions.until("new", "b") == 1600.0
    reader = Diversions(tmp_path / "diversions.bin", clock)
    assert reader.until("new", "b") == 1600.0
    assert sum(reader.until(f"route{n}", "b") > 0 for n in range(SLOTS)) == SLOTS - 1
