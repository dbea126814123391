"""Routing tables for the proxy's unit tests, built through the real parser."""

from __future__ import annotations

from strangler.routing.records import RoutingTable
from strangler.routing.table import parse_text


def routes_yaml(percent: int = 0, ttl: int = 600, sticky: str = "json:to") -> str:
    """A monolith + verification table with `percent` of the verification route on the new side."""
    return f"""
backends:
  monolith: {{url: "http://127.0.0.1:8001", health: /healthz}}
  verification: {{url: "http://127.0.0.1:8002", health: /healthz}}
default_backend: monolith
routes:
  - name: verification
    match: {{prefix: /api/verification/, methods: [POST]}}
    split: {{monolith: {100 - percent}, verification: {percent}}}
    sticky: {{key: "{sticky}", ttl: {ttl}}}
    fallback: monolith
"""


def table(percent: int = 0, ttl: int = 600, sticky: str = "json:to") -> RoutingTable:
    return parse_text(routes_yaml(percent, ttl, sticky), "routes.yaml")
