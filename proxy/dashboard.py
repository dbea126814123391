"""The migration dashboard's HTTP rules (pure): its page, credentials, cross-site checks, actions.

The page lives at `/_strangler/` on the admin listener, under the same token rules as every
admin call (`admin.authorize`). A browser cannot add a header to a page it navigates to, so
with a token set the page is opened once as `/_strangler/?token=...`: the answer sets the token
as an HttpOnly, SameSite=Strict cookie, which the page's own requests then carry (and which a
request from another site never carries), and the page removes the token from its address.

A state-changing request (POST `/_strangler/actions`) must also come from the page itself:
a browser names the requesting site in `Origin` (and `Sec-Fetch-Site`), which must be this
listener's own; and it must be JSON, which another site cannot send without a CORS preflight
the listener never grants. A client that sends neither header is not a browser (curl, a
script): it is no cross-site risk and passes on its credentials alone.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from strangler.proxy.admin import PREFIX, Reply
from strangler.routing.dispatch import ADMIN_TOKEN_HEADER, HeaderLookup, token_matches

PAGE = PREFIX
HISTORY = PREFIX + "history"
AUDIT = PREFIX + "audit"
ACTIONS = PREFIX + "actions"
ROLLOUTS = PREFIX + "rollouts"
PATHS = (PAGE, PREFIX + "index.html", HISTORY, AUDIT, ACTIONS, ROLLOUTS)
# What the page may ask: a split's edits, and a rollout controller's verbs (a rollout's own
# state file says which apply; `strangler.rollout.web_actions` refuses the others).
ROLLOUT_VERBS = ("pause", "resume", "abort")
VERBS = ("shift", "rollback", *ROLLOUT_VERBS)
COOKIE = "strangler_admin"
MAX_BODY = 16 * 1024  # an action is a few hundred bytes
MAX_REASON = 500
MAX_USER = 80
AUDIT_LINES = 20  # recent audit lines the page shows
AUDIT_TAIL = 64 * 1024  # bytes read from the end of the audit log


def error(status: int, code: str, message: str) -> Reply:
    return Reply(
        status, "application/json", json.dumps({"error": code, "message": message}).encode()
    )


def ok(body: object) -> Reply:
    return Reply(
        200, "application/json", json.dumps(body).encode(), (("Cache-Control", "no-store"),)
    )


def query_of(url: str) -> dict[str, str]:
    """The last value of each query parameter."""
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def cookie(lookup: HeaderLookup, name: str) -> str | None:
    for part in (lookup("cookie") or "").split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None


def credentials(lookup: HeaderLookup, path: str, query: Mapping[str, str]) -> HeaderLookup:
    """`lookup` with the admin token also taken from the cookie, and from `?token=` on the page."""

    def with_token(name: str) -> str | None:
        value = lookup(name)
        if value or name.lower() != ADMIN_TOKEN_HEADER:
            return value
        if path == PAGE and query.get("token"):
            return query["token"]
        return cookie(lookup, COOKIE)

    return with_token


def cross_site(lookup: HeaderLookup) -> Reply | None:
    """None when a state-changing request comes from this listener's own page (or no browser)."""
    site = lookup("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return error(403, "cross_site", f"refused a request from another site ({site})")
    origin = lookup("origin")
    if origin is not None and urlsplit(origin).netloc != (lookup("host") or ""):
        return error(403, "cross_site", f"refused a request from another origin ({origin})")
    return None


@dataclass(frozen=True)
class Action:
    verb: str
    route: str
    percent: int | None  # the new backend's share (shift); None for a rollback
    reason: str
    user: str | None  # who, as the engineer typed it; the audit adds "via dashboard"


def parse_action(body: bytes, content_type: str | None) -> Action | Reply:
    """The action a page asked for, or the refusal naming the bad field."""
    if (content_type or "").split(";")[0].strip().lower() != "application/json":
        return error(415, "unsupported_media_type", "an action is a JSON body")
    try:
        doc = json.loads(body)
    except ValueError:
        return error(400, "bad_json", "the body is not JSON")
    if not isinstance(doc, dict):
        return error(400, "bad_action", "the body must be a JSON object")
    verb, route, reason, user = (doc.get(k) for k in ("action", "route", "reason", "user"))
    if verb not in VERBS:
        return error(400, "bad_action", f"action must be one of {', '.join(VERBS)}, got {verb!r}")
    if not isinstance(route, str) or not route:
        return error(400, "bad_route", f"route must be a route's name, got {route!r}")
    if not isinstance(reason, str) or not reason.strip():
        return error(400, "reason_required", "every change needs a reason for the audit log")
    if len(reason) > MAX_REASON:
        return error(400, "bad_reason", f"the reason is longer than {MAX_REASON} characters")
    if user is not None and (not isinstance(user, str) or len(user) > MAX_USER):
        return error(400, "bad_user", f"user must be a name of at most {MAX_USER} characters")
    percent = doc.get("percent")
    if verb == "shift":
        if not isinstance(percent, int) or isinstance(percent, bool) or not 0 <= percent <= 100:
            return error(
                400, "bad_percent", f"percent must be a whole number 0-100, got {percent!r}"
            )
    else:
        percent = None
    return Action(verb, route, percent, reason.strip(), (user or "").strip() or None)


def audit_lines(path: Path | None, limit: int = AUDIT_LINES) -> dict[str, object]:
    """The audit log's newest lines, newest first; lines that are not JSON records are skipped."""
    if path is None:
        return {"audit_log": None, "lines": []}
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - AUDIT_TAIL))
            tail = f.read().splitlines()
    except FileNotFoundError:
        return {"audit_log": str(path), "lines": []}
    except OSError as exc:
        return {"audit_log": str(path), "lines": [], "error": exc.strerror}
    if len(tail) > 1 and size > AUDIT_TAIL:
        tail = tail[1:]  # the first line read may be cut
    newest: deque[dict] = deque(maxlen=limit)
    for line in tail:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            newest.append(record)
    return {"audit_log": str(path), "lines": list(reversed(newest))}


@functools.cache
def page() -> tuple[bytes, str]:
    """The page, and a Content-Security-Policy allowing its own inline script and style only."""
    body = resources.files("strangler.proxy").joinpath("dashboard.html").read_bytes()
    hashes = {}
    for tag in ("script", "style"):
        found = re.findall(rb"<%s>(.*?)</%s>" % (tag.encode(), tag.encode()), body, re.S)
        digests = (base64.b64encode(hashlib.sha256(block).digest()).decode() for block in found)
        hashes[tag] = " ".join(f"'sha256-{d}'" for d in digests)
    policy = (
        f"default-src 'none'; script-src {hashes['script']}; style-src {hashes['style']}; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    return body, policy


def page_reply(query: Mapping[str, str], token: str | None) -> Reply:
    body, policy = page()
    headers = [
        ("Content-Security-Policy", policy),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ]
    if token is not None and token_matches(query.get("token"), token):
        headers.append(
            ("Set-Cookie", f"{COOKIE}={token}; Path={PREFIX}; HttpOnly; SameSite=Strict")
        )
    return Reply(200, "text/html; charset=utf-8", body, tuple(headers))
