"""A tiny WSGI backend for proxy tests: echoes what it received, as JSON, under gunicorn.

`ECHO_NAME` names the backend in every answer. `/slow?seconds=N` sleeps first,
`/stream` answers without a Content-Length (chunked), `/status/N` answers status N, each
`set=Name:Value` query parameter becomes a response header (`Cache-Control`, say), and `/leak`
answers with the internal token it received in `X-Strangler-*` headers of its own. While the
file named by `ECHO_REFUSE_FILE` exists, every request is answered 503 with the JSON error
code the file holds (`unavailable`: what the service answers when its store is down).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from urllib.parse import parse_qs


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    body = environ["wsgi.input"].read()
    refusal = _refusal()
    if refusal is not None:
        data = json.dumps({"error": refusal, "message": "refused by the test"}).encode()
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [data]
    if path == "/slow":
        time.sleep(float(parse_qs(query).get("seconds", ["1"])[0]))
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"part {i}\n".encode() for i in range(5))
    status = "200 OK"
    if path.startswith("/status/"):
        status = f"{path.rsplit('/', 1)[1]} Custom"
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    answer = {
        "backend": os.environ.get("ECHO_NAME", "echo"),
        "method": environ["REQUEST_METHOD"],
        "path": path,
        "raw_uri": environ.get("RAW_URI", ""),
        "query": query,
        "headers": headers,
        "body_length": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    data = json.dumps(answer).encode()
    leaks = []
    if path == "/leak":  # a careless backend: the proxy must not pass these on
        token = environ.get("HTTP_X_STRANGLER_INTERNAL_TOKEN", "")
        leaks = [("X-Strangler-Internal-Token", token), ("x_strangler_shadow", "1")]
    start_response(
        status,
        [
            *leaks,
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("X-Strangler-Backend", "spoofed-by-backend"),
            ("Connection", "X-Hop"),
            ("X-Hop", "hop-by-hop"),
            *(tuple(v.split(":", 1)) for v in parse_qs(query).get("set", [])),
        ],
    )
    return [data]


def _refusal() -> str | None:
    flag = os.environ.get("ECHO_REFUSE_FILE")
    try:
        return Path(flag).read_text().strip() if flag else None
    except FileNotFoundError:
        return None
