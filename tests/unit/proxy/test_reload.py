"""Hot reload: a valid change swaps the table, an invalid one is refused whole."""

from __future__ import annotations

import os

from proxy.reload import TableWatcher
from proxy.routing import load_table

from .tables import routes_yaml


def write(path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_a_valid_change_is_applied_and_counted(tmp_path):
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0))
    watcher = TableWatcher(str(path), load_table(path))
    assert watcher.poll() is None
    write(path, routes_yaml(25))
    new = watcher.poll()
    assert new is not None and dict(new.routes[0].split)["verification"] == 25
    assert watcher.generation == 2 and watcher.table is new


def test_an_invalid_change_is_refused_and_reported_until_fixed(tmp_path):
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0))
    watcher = TableWatcher(str(path), load_table(path))
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
    watcher = TableWatcher(str(path), load_table(path))
    write(path, routes_yaml(0))
    assert watcher.poll() is None and watcher.generation == 1


def test_a_vanished_file_keeps_the_running_table(tmp_path):
    path = tmp_path / "routes.yaml"
    write(path, routes_yaml(0))
    watcher = TableWatcher(str(path), load_table(path))
    path.unlink()
    assert watcher.poll() is None
    assert watcher.last_error is not None and watcher.table.routes
