"""The real verification service as a team would deploy it under its own prefix: `/v1/verify/`.

`/v1/verify/send` is the service's `/api/verification/send`; its legacy paths answer 404, so
a contract replayed through the proxy passes only if the proxy rewrote every path.
"""

from __future__ import annotations

import json

from strangler.extracted.verification_service import create_app as create_service

MOUNT = "/v1/verify/"
LEGACY = "/api/verification/"


def create_app():
    service = create_service()

    def mounted(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(MOUNT):
            environ["PATH_INFO"] = LEGACY + path[len(MOUNT) :]
        elif path != "/healthz":
            body = json.dumps({"error": "not_found", "message": f"not under {MOUNT}"}).encode()
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [body]
        return service(environ, start_response)

    return mounted
