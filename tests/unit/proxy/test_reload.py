"""Hot reload: a valid change swaps the table, an invalid one is refused whole."""

from __future__ import annotations

import copy
import os

import pytest

from strangler.proxy.reload import TableWatcher
from strangler.routing.records import RoutingConfigError
from tests.unit.routing.tables import routes_yaml


def write(path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_a_valid_change_is_applied_and_counted(tmp_path):
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0))
    watcher = TableWatcher.load(str(path))
    assert watcher.poll() is None
    write(path, routes_yaml(25))
    new = watcher.poll()
    assert new is not None and dict(new.routes[0].split)["verification"] == 25
    assert watcher.generation == 2 and watcher.table is new


def test_an_invalid_change_is_refused_and_reported_until_fixed(tmp_path):
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0))
    watcher = TableWatcher.load(str(path))
    running = watcher.table
    write(path, routes_yaml(0).replace("verification: 0", "verification: 7"))
    assert watcher.poll() is None
    assert watcher.table is running and watcher.generation == 1
    assert "routes.yaml" in watcher.last_error and "verification" in watcher.last_error
    assert watcher.status()["last_reload_error"] == watcher.last_error
    write(path, routes_yaml(50))
    assert watcher.poll() is not None
    assert watcher.last_error is None and watcher.generation == 2


def test_the_same_bytes_rewritten_keep_the_generation(tmp_path):
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0))
    watcher = TableWatcher.load(str(path))
    write(path, routes_yaml(0))
    assert watcher.poll() is None and watcher.generation == 1


def test_a_vanished_file_keeps_the_running_table(tmp_path):
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0))
    watcher = TableWatcher.load(str(path))
    path.unlink()
    assert watcher.poll() is None
    assert watcher.last_error is not None and watcher.table.routes


def test_a_copy_made_after_a_change_it_has_not_polled_for_still_sees_it(tmp_path):
    """A restarted worker starts from the master's watcher: the file may be newer than it."""
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0))
    master = TableWatcher.load(str(path))
    write(path, routes_yaml(100))
    worker = copy.deepcopy(master)  # what a fork hands the new worker
    new = worker.poll()
    assert new is not None and dict(new.routes[0].split)["verification"] == 100
    assert worker.generation == 2 and worker.last_error is None


def test_a_copy_made_while_the_file_is_invalid_keeps_the_last_valid_table_and_the_error(tmp_path):
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0))
    master = TableWatcher.load(str(path))
    write(path, routes_yaml(50))
    master.poll()
    write(path, routes_yaml(0).replace("verification: 0", "verification: 7"))
    worker = copy.deepcopy(master)
    assert worker.poll() is None
    assert dict(worker.table.routes[0].split)["verification"] == 50
    assert "verification" in worker.status()["last_reload_error"]


def test_loading_an_invalid_file_raises(tmp_path):
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0).replace("verification: 0", "verification: 7"))
    with pytest.raises(RoutingConfigError, match=r"routes\.yaml"):
        TableWatcher.load(str(path))
