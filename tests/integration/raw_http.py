"""Raw HTTP/1.1 over a socket for the edge tests: send exact bytes, read every answer back."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

SENTINEL = b"GET /sentinel HTTP/1.1\r\nHost: sentinel\r\nConnection: close\r\n\r\n"


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> dict:
        return json.loads(self.body)


def converse(
    port: int, data: bytes, methods: list[str] | None = None, then: bytes = b"", timeout=10
) -> tuple[list[Answer], bool]:
    """Send `data` (and `then` after a `100 Continue`), read until the proxy closes.

    Returns the answers, in order, and whether the connection ended by a close (True) or a
    reset. `methods` names each request's method, so HEAD answers are read without a body.
    """
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if then:
            while b"\r\n\r\n" not in raw:
                raw += sock.recv(65536)
            sock.sendall(then)
        clean = True
        while True:
            try:
                got = sock.recv(65536)
            except ConnectionResetError:
                clean = False
                break
            if not got:
                break
            raw += got
    return parse(raw, methods or []), clean


def parse(raw: bytes, methods: list[str]) -> list[Answer]:
    answers: list[Answer] = []
    index = 0
    while raw:
        head, sep, raw = raw.partition(b"\r\n\r\n")
        assert sep, f"an incomplete head: {head!r}"
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.decode().lower()] = value.strip().decode()
        answer = Answer(status, headers)
        answers.append(answer)
        if status < 200:
            continue  # an interim answer: the final one follows
        method = methods[index] if index < len(methods) else "GET"
        index += 1
        if method == "HEAD" or status in (204, 304):
            continue
        if "content-length" in headers:
            size = int(headers["content-length"])
            answer.body, raw = raw[:size], raw[size:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, raw = raw.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                body, raw = body + raw[:size], raw[size + 2 :]
                if size == 0:
                    break
            answer.body = body
        else:
            answer.body, raw = raw, b""
    return answers
