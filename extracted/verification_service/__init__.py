"""The extracted verification service: send and check one-time codes, backed by Redis."""

from strangler.extracted.verification_service.http import create_app

__all__ = ["create_app"]
