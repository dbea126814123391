"""A tiny WSGI backend for proxy tests: echoes what it received, as JSON, under gunicorn.

`ECHO_NAME` names the backend in every answer. `/slow?seconds=N` sleeps first,
`/stream` answers without a Content-Length (chunked), `/status/N` answers status N.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    body = environ["wsgi.input"].read()
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
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(data))),
            ("X-Strangler-Backend", "spoofed-by-backend"),
            ("Connection", "X-Hop"),
            ("X-Hop", "hop-by-hop"),
        ],
    )
    return [data]
