"""A child started from a short-lived thread lives on after that thread ends."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from strangler.stack.supervisor import ChildSpec, Supervisor


def test_a_child_restarted_from_a_thread_that_ends_keeps_running(tmp_path: Path) -> None:
    """The parent-death signal follows the forking thread: the supervisor forks from its own,
    so a fault injector's restart of Redis does not die with the injector."""
    with Supervisor(log_dir=tmp_path) as supervisor:
        first = supervisor.start(ChildSpec("sleeper", ["sleep", "60"]))
        restarted: list = []
        thread = threading.Thread(target=lambda: restarted.append(supervisor.restart(first)))
        thread.start()
        thread.join()
        (child,) = restarted
        assert supervisor.child("sleeper") is child and not first.alive()
        with pytest.raises(subprocess.TimeoutExpired):
            child.process.wait(timeout=0.5)  # forked by that thread, SIGTERM would end it now
