"""HAProxy's runtime API over its unix socket: maps, server states, counters, stick tables.

One command per connection (the socket's non-interactive mode): HAProxy answers and closes.
Every failure is a RuntimeAPIError naming the socket and the command.
"""

from __future__ import annotations

import csv
import io
import socket
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 5.0


class RuntimeAPIError(RuntimeError):
    """The runtime API could not be reached, or refused a command."""


@dataclass(frozen=True)
class RuntimeAPI:
    socket_path: Path
    timeout: float = TIMEOUT

    def command(self, line: str) -> str:
        """The answer to one command (without its trailing blank line)."""
        if "\n" in line or ";" in line:
            raise RuntimeAPIError(f"refusing a command with a newline or ';': {line!r}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.socket_path))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise RuntimeAPIError(f"{self.socket_path}: {line.split()[0]}: {exc}") from exc
        return b"".join(chunks).decode("utf-8", "replace").rstrip("\n")

    def alive(self) -> bool:
        try:
            return "Pid:" in self.command("show info")
        except RuntimeAPIError:
            return False

    def info(self) -> dict[str, str]:
        pairs = (line.partition(":") for line in self.command("show info").splitlines())
        return {key.strip(): value.strip() for key, _, value in pairs if key}

    def show_map(self, path: Path) -> dict[str, str]:
        """A map's entries as HAProxy holds them now (not as the file says)."""
        answer = self.command(f"show map {path}")
        entries = {}
        for line in answer.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0].startswith("0x"):
                entries[parts[1]] = parts[2]
            elif line.strip():
                raise RuntimeAPIError(f"show map {path}: {line.strip()}")
        return entries

    def set_map(self, path: Path, key: str, value: str) -> None:
        answer = self.command(f"set map {path} {key} {value}")
        if answer.strip():
            raise RuntimeAPIError(f"set map {path} {key} {value}: {answer.strip()}")

    def stats(self) -> list[dict[str, str]]:
        """`show stat`: one row per frontend, backend and server, by column name."""
        text = self.command("show stat").lstrip("# ")
        return list(csv.DictReader(io.StringIO(text)))

    def peers_synced(self) -> bool:
        """True once the process has learned its stick tables (from the process it replaced,
        or after the resync timeout): only then does a reload hand its entries on."""
        first = self.command("show peers").splitlines()[:1]
        if not first or "flags=0x" not in first[0]:
            return True  # no peers section: nothing to hand on
        flags = int(first[0].split("flags=0x")[1].split()[0], 16)
        return flags & 0x3 == 0x3 or "resync_timeout=<PAST>" in first[0]

    def table_entries(self, table: str) -> int:
        """How many keys a stick table holds now."""
        first = self.command(f"show table {table}").splitlines()[:1]
        if not first or "used:" not in first[0]:
            raise RuntimeAPIError(f"show table {table}: {first[0] if first else 'no answer'}")
        return int(first[0].split("used:")[1].split()[0])
