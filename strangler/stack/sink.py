"""A stand-in SMS/e-mail gateway: records what backends deliver to `VERIFICATION_WEBHOOK_URL`.

Tests, contract recordings and load tests point both backends' webhook at it and read the
code a user would have received. `POST /messages` stores a message; `GET /messages?to=X`
lists them (newest last); `GET /messages/latest?to=X` gives the newest or 404;
`DELETE /messages` clears. `POST /fail?count=N` makes the next N deliveries answer 503.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class MessageLog:
    """Thread-safe record of delivered messages."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._messages: list[dict[str, Any]] = []
        self._failures_left = 0

    def add(self, message: dict[str, Any]) -> bool:
        with self._lock:
            if self._failures_left > 0:
                self._failures_left -= 1
                return False
            self._messages.append({**message, "received_at": time.time()})
            self._lock.notify_all()
            return True

    def fail_next(self, count: int) -> None:
        with self._lock:
            self._failures_left = count

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self._messages if to is None or m.get("to") == to]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._failures_left = 0


class _Handler(BaseHTTPRequestHandler):
    server: _SinkServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a kept-alive client (the
    # service's pooled session) waits ~40 ms for its delayed ACK on every delivery.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the messages carry codes: never log them

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _query(self) -> tuple[str, dict[str, str]]:
        parts = urllib.parse.urlsplit(self.path)
        return parts.path, dict(urllib.parse.parse_qsl(parts.query))

    def do_POST(self) -> None:
        path, query = self._query()
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path == "/fail":
            self.server.log.fail_next(int(query.get("count", "1")))
            self._reply(200, {"ok": True})
            return
        if path != "/messages":
            self._reply(404, {"error": "not_found", "message": "POST /messages"})
            return
        try:
            message = json.loads(raw)
        except ValueError:
            self._reply(400, {"error": "invalid_json", "message": "body is not JSON"})
            return
        if not isinstance(message, dict):
            self._reply(400, {"error": "invalid_json", "message": "body is not an object"})
            return
        if self.server.log.add(message):
            self._reply(202, {"accepted": True})
        else:
            self._reply(503, {"error": "unavailable", "message": "failure injected by the test"})

    def do_GET(self) -> None:
        path, query = self._query()
        messages = self.server.log.messages(query.get("to"))
        if path == "/messages":
            self._reply(200, {"messages": messages})
        elif path == "/messages/latest":
            if messages:
                self._reply(200, messages[-1])
            else:
                self._reply(404, {"error": "not_found", "message": "no message for that address"})
        elif path == "/healthz":
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": "not_found", "message": "unknown path"})

    def do_DELETE(self) -> None:
        self.server.log.clear()
        self._reply(200, {"cleared": True})


class _SinkServer(ThreadingHTTPServer):
    daemon_threads = True
    log: MessageLog

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a sender killed mid-delivery (the fault rehearsals do it): nothing to say
        super().handle_error(request, client_address)


class WebhookSink:
    """The sink in a background thread of this process: `with WebhookSink() as sink: sink.url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _SinkServer((host, port), _Handler)
        self._server.log = MessageLog()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The value for VERIFICATION_WEBHOOK_URL."""
        return self.base_url + "/messages"

    @property
    def log(self) -> MessageLog:
        return self._server.log

    def latest_code(self, to: str) -> str | None:
        messages = self.log.messages(to)
        return messages[-1]["code"] if messages else None

    def start(self) -> WebhookSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def fetch_latest_code(sink_base_url: str, to: str, timeout: float = 5.0) -> str | None:
    """The newest code delivered to `to`, read from a sink in another process."""
    query = urllib.parse.urlencode({"to": to})
    url = f"{sink_base_url}/messages/latest?{query}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback sink)
            return json.loads(resp.read())["code"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the webhook sink in the foreground.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    sink = WebhookSink(args.host, args.port)
    print(f"webhook sink: VERIFICATION_WEBHOOK_URL={sink.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sink._server.serve_forever()


if __name__ == "__main__":
    main()
