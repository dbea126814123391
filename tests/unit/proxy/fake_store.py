"""An affinity store in memory on the real `AffinityStore` interface, answering when told."""

from __future__ import annotations

from collections.abc import Callable

from strangler.proxy.placements import ANSWERING, REFUSING, UNREACHABLE


class FakeStore:
    """Commands wait in `pending` until `answer()` replies to them in order, as Redis would.

    `state` is what the placements see; `drop()` is a lost connection, `refuse()` a store
    answering errors (Redis loading its data), `come_back()` a store answering again.
    """

    def __init__(self, state: str = ANSWERING) -> None:
        self.state = state
        self.data: dict[str, tuple[str, int]] = {}  # key -> (backend, ttl ms)
        self.pending: list[tuple[str, tuple, Callable]] = []
        self.sent: list[tuple] = []  # every command, in the order it was sent
        self.on_answer: Callable[[], None] = lambda: None

    def listen(self, on_answer: Callable[[], None]) -> None:
        self.on_answer = on_answer

    def write(self, key: str, backend: str, ttl_ms: int, done: Callable[[bool], None]) -> bool:
        if self.state == UNREACHABLE:
            return False
        self.pending.append(("SET", (key, backend, ttl_ms), done))
        self.sent.append(("SET", key, backend))
        return True

    def read(self, key: str, done: Callable[[bool, str | None], None]) -> bool:
        if self.state == UNREACHABLE:
            return False
        self.pending.append(("GET", (key,), done))
        self.sent.append(("GET", key))
        return True

    def answer(self) -> None:
        """Reply to every pending command, in order."""
        pending, self.pending = self.pending, []
        for op, args, done in pending:
            if op == "SET":
                key, backend, ttl_ms = args
                self.data[key] = (backend, ttl_ms)
                done(True)
            else:
                entry = self.data.get(args[0])
                done(True, entry[0] if entry else None)
        self.on_answer()

    def refuse(self) -> None:
        """Reply to every pending command with an error (the store refuses for a while)."""
        self.state = REFUSING
        pending, self.pending = self.pending, []
        for op, _, done in pending:
            done(False) if op == "SET" else done(False, None)

    def drop(self) -> None:
        """The connection is lost: nothing pending was answered."""
        self.refuse()
        self.state = UNREACHABLE

    def come_back(self) -> None:
        self.state = ANSWERING
        self.on_answer()

    def written(self) -> list[tuple[str, str]]:
        return [(c[1], c[2]) for c in self.sent if c[0] == "SET"]
