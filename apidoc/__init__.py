"""The verification API's OpenAPI document, served by both backends at `/openapi.json`.

One source for both (each deployable copies this package beside its own, as `bodylimit`):
the YAML file next to this module, shipped as package data and read at request time, so
the document served is always the one installed. `docs/verification-openapi.yaml` links here.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

DOCUMENT = "verification-openapi.yaml"
PATH = "/openapi.json"


def document() -> dict[str, Any]:
    """The OpenAPI document as a JSON-ready tree."""
    text = resources.files(__name__).joinpath(DOCUMENT).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _serve() -> ResponseReturnValue:
    return jsonify(document())


def register(app: Flask) -> None:
    """Serve the document at `/openapi.json` (GET and HEAD)."""
    app.add_url_rule(PATH, "openapi", _serve, methods=["GET"])
