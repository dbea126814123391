"""WSGI middleware holding a chunked request body to the same size limit as a sized one.

Shared by both backends (each deployable copies this package beside its own): the same
logic in one place, depending on neither.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import IO, Any

from werkzeug.wsgi import get_content_length

READ_SIZE = 65536


class ChunkedBodyLimit:
    """Buffers a chunked body (at most `limit` + 1 bytes) and gives it a Content-Length.

    Without a Content-Length werkzeug only stops reading at the limit: a body over it
    arrives cut and fails as bad JSON (400). Once the buffered body has a length, werkzeug's
    own check refuses one over the limit (413), exactly as for a declared oversized body.
    """

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if _is_chunked(environ):
            body = _read_at_most(environ["wsgi.input"], self.limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            # werkzeug ignores any Content-Length next to `chunked`: the body is sized now.
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)


def _is_chunked(environ: dict[str, Any]) -> bool:
    # Only a stream the server ends itself (gunicorn's) can be read to its end safely;
    # otherwise werkzeug already reads an unsized body as empty, and that stays as it is.
    return (
        bool(environ.get("wsgi.input_terminated"))
        and "HTTP_TRANSFER_ENCODING" in environ
        and get_content_length(environ) is None
    )


def _read_at_most(stream: IO[bytes], size: int) -> bytes:
    parts, remaining = [], size
    while remaining > 0:
        part = stream.read(min(remaining, READ_SIZE))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
