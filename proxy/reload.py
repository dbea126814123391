"""Hot reload of the routing table: notice a changed file, apply it whole or refuse it whole."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from strangler.routing.records import RoutingConfigError, RoutingTable
from strangler.routing.table import load_table

POLL_INTERVAL = 0.2  # seconds between stat() calls: a change is live well within 1 s


@dataclass(frozen=True)
class FileSignature:
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str) -> FileSignature | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


class TableWatcher:
    """Holds the running table; `poll()` swaps in a changed file's table if it is valid.

    `signature` is that of the file `table` was read from, taken before it was read: a
    file written since then (even before this watcher exists) is noticed by the next poll.
    """

    def __init__(
        self,
        path: str,
        table: RoutingTable,
        signature: FileSignature | None,
        loader: Callable[[str], RoutingTable] = load_table,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.table = table
        self.loader = loader
        self.clock = clock
        self.generation = 1
        self.loaded_at = clock()
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.signature = signature

    @classmethod
    def load(
        cls,
        path: str,
        loader: Callable[[str], RoutingTable] = load_table,
        clock: Callable[[], float] = time.time,
    ) -> TableWatcher:
        """A watcher on the file as it is now; RoutingConfigError when it is invalid."""
        signature = FileSignature.of(path)  # before reading: a write during the read is seen
        return cls(path, loader(path), signature, loader, clock)

    def poll(self) -> RoutingTable | None:
        """The new table when the file changed and is valid; None otherwise.

        An invalid file is refused whole: the running table stays and the error is kept
        (and returned by `status`) until a valid file replaces it. Unchanged bytes (a touch,
        or a rewrite with the same text) keep the generation.
        """
        signature = FileSignature.of(self.path)
        if signature == self.signature:
            return None
        self.signature = signature
        try:
            table = self.loader(self.path)
        except RoutingConfigError as exc:
            self.last_error, self.last_error_at = str(exc), self.clock()
            return None
        self.last_error = self.last_error_at = None
        if table.digest == self.table.digest:
            return None
        self.table = table
        self.generation += 1
        self.loaded_at = self.clock()
        return table

    def status(self) -> dict[str, object]:
        return {
            "generation": self.generation,
            "digest": self.table.digest,
            "loaded_at": self.loaded_at,
            "last_reload_error": self.last_error,
            "last_reload_error_at": self.last_error_at,
        }
