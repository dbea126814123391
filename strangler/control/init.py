"""`strangler init`: a commented routing file for your legacy backend and its replacement.

The file is built from the flags, validated by the routing model with the rules the data
planes apply (`strangler.routing.table.parse_text`), and only then written, atomically and
never over an existing file unless `--force` is given. A bad value is refused with the flag
that gave it named.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from strangler.control import project
from strangler.control.atomic import write_atomically
from strangler.routing.records import DEFAULT_HEALTH, DEFAULT_TTL, RoutingConfigError, RoutingTable
from strangler.routing.table import parse_text

# Which flag gave the value at a place the routing model names (`where` of its error).
FLAG_OF_PLACE: tuple[tuple[str, str], ...] = (
    (r"\.url$", "URL"),  # the backend's own: --legacy or --new
    (r"\.health$", "--health"),
    (r"\.name$", "--route"),
    (r"\.match\.prefix$", "--prefix"),
    (r"\.match\.methods$", "--methods"),
    (r"\.sticky\.key$", "--sticky"),
    (r"\.sticky\.ttl$", "--ttl"),
    (r"^backends$", "NAME"),  # a backend's name: --legacy-name or --new-name
)
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*\Z")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


class InitError(ValueError):
    """A refused value or file; the message names the flag (or the file)."""


@dataclass(frozen=True)
class Answers:
    """What the flags say, before any check."""

    legacy: str
    new: str
    route: str
    prefix: str
    methods: tuple[str, ...] | None
    sticky: str | None
    ttl: int | None
    health: str
    legacy_name: str
    new_name: str


def add_arguments(verb: str, parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--legacy", required=True, metavar="URL", help="the backend that serves the route today")
    add("--new", required=True, metavar="URL", help="the backend the route moves to")
    add("--route", required=True, metavar="NAME", help="the route's name, e.g. orders")
    add("--prefix", required=True, help="the paths the route takes, e.g. /api/orders/")
    add(
        "--methods",
        nargs="+",
        metavar="METHOD",
        help="only these methods (GET POST or GET,POST; default: every method)",
    )
    add(
        "--sticky",
        metavar="KEY",
        help="header:NAME, cookie:NAME, query:NAME, json:FIELD, client_ip",
    )
    add("--ttl", type=int, help=f"seconds a user keeps a backend after a shift ({DEFAULT_TTL})")
    add("--health", default=DEFAULT_HEALTH, help="path probed on both backends (%(default)s)")
    add("--legacy-name", default="legacy", help="the legacy backend's name (%(default)s)")
    add("--new-name", default="new", help="the new backend's name (%(default)s)")
    add("--out", type=Path, help="where to write (default: the project's routes.yaml)")
    add("--force", action="store_true", help="replace an existing file")


def answers(args: argparse.Namespace) -> Answers:
    methods = None
    if args.methods is not None:
        methods = tuple(m.strip().upper() for arg in args.methods for m in arg.split(",") if m)
    return Answers(
        args.legacy, args.new, args.route, args.prefix, methods, args.sticky, args.ttl,
        args.health, args.legacy_name, args.new_name,
    )  # fmt: skip


def _scalar(value: str) -> str:
    """A YAML scalar for `value`: plain when that reads back the same string, else quoted."""
    if _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value)


def render(a: Answers) -> str:
    """The routing file's text (not yet validated)."""
    legacy, new = _scalar(a.legacy_name), _scalar(a.new_name)
    methods = ", ".join(_scalar(m) for m in a.methods) if a.methods is not None else None
    listed = f", methods: [{methods}]" if methods is not None else ""
    match = f"{{prefix: {_scalar(a.prefix)}{listed}}}"
    route = _scalar(a.route)
    if a.sticky is not None:
        ttl = DEFAULT_TTL if a.ttl is None else a.ttl
        sticky = f"    sticky: {{key: {_scalar(a.sticky)}, ttl: {ttl}}}\n"
    else:
        sticky = (
            "    # No sticky key: each request is placed at random at the split's odds, so one\n"
            "    # user may meet both backends. To keep a user on one, add for instance:\n"
            '    # sticky: {key: "header:X-User", ttl: 600}\n'
        )
    return TEMPLATE.format(
        route=route, match=match, sticky=sticky, legacy=legacy, new=new,
        legacy_url=json.dumps(a.legacy), new_url=json.dumps(a.new), health=_scalar(a.health),
    )  # fmt: skip


def build(a: Answers, source: str) -> tuple[str, RoutingTable]:
    """The file's text and the table it parses to; InitError names the flag of a bad value."""
    if a.ttl is not None and a.sticky is None:
        raise InitError("--ttl: needs --sticky (the time a sticky key keeps its backend)")
    if a.legacy_name == a.new_name:
        raise InitError(f"--new-name: {a.new_name!r} is the legacy backend's name too")
    if a.legacy.rstrip("/") == a.new.rstrip("/"):
        raise InitError(f"--new: {a.new!r} is the legacy backend's URL too")
    text = render(a)
    try:
        return text, parse_text(text, source)
    except RoutingConfigError as exc:
        raise InitError(f"{_flag(exc, a)}: {exc.detail}") from None


def _flag(exc: RoutingConfigError, a: Answers) -> str:
    for pattern, flag in FLAG_OF_PLACE:
        if re.search(pattern, exc.where):
            if flag == "URL":
                return "--new" if exc.where == f"backends.{a.new_name}.url" else "--legacy"
            if flag == "NAME":
                return "--new-name" if repr(a.new_name) in exc.detail else "--legacy-name"
            return flag
    return "the flags"  # every place the template fills is listed above


def write_new(path: Path, text: str, force: bool) -> None:
    """Write atomically; without `force`, fail rather than replace a file that exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomically(path, text.encode(), replace=force)
    except FileExistsError:
        raise InitError(f"{path} exists: pass --force to replace it") from None


def main(verb: str, args: argparse.Namespace) -> int:
    where = project.load()
    out = (args.out or where.routes).absolute()
    try:
        text, table = build(answers(args), str(out))
        write_new(out, text, args.force)
    except InitError as exc:
        print(f"strangler init: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"strangler init: {out}: cannot write: {exc.strerror}", file=sys.stderr)
        return 2
    print(_summary(table, out, args.sticky))
    routes_flag = "" if out == where.routes.absolute() else f" --routes {out}"
    route = table.routes[0].name
    print(f"next: strangler serve{routes_flag}, then strangler shift {route} PERCENT{routes_flag}")
    return 0


def _summary(table: RoutingTable, out: Path, sticky: str | None) -> str:
    route = table.routes[0]
    methods = " ".join(sorted(route.methods)) if route.methods else "every method"
    split = ", ".join(
        f"{name} {table.backends[name].url} {percent}%" for name, percent in route.split
    )
    keyed = f"sticky {sticky}, ttl {route.sticky.ttl}s" if route.sticky else "no sticky key"
    return f"wrote {out}: route {route.name} ({route.prefix}, {methods}): {split}; {keyed}"


TEMPLATE = """\
# The routing table: which backend answers what. Written by `strangler init`; yours to edit.
#
# `strangler serve` serves it and reloads it within a second of a change; an invalid file
# is refused whole and the running table stays. Move traffic with
# `strangler shift {route} PERCENT` and `strangler rollback {route}`: they validate,
# keep these comments, write atomically and append to the audit log (var/audit.log).

# Every backend the data plane may contact, by name. `url` is http://host:port with no path;
# `${{VAR:-default}}` takes the environment variable VAR when it is set and not empty.
# `health` is the path probed to close a backend's circuit again after failures: any
# answer below 500 counts as healthy.
backends:
  {legacy}: {{url: {legacy_url}, health: {health}}}
  {new}: {{url: {new_url}, health: {health}}}

# The backend for every request that no route matches: all that is not migrated yet.
default_backend: {legacy}

# Routes, matched by path prefix (the longest matching prefix wins) and, when `methods` is
# given, by method; without `methods` a route takes every method.
routes:
  - name: {route}
    match: {match}
    # Whole percentages per backend, summing to 100. `strangler shift` moves the share of
    # the backend that is not the fallback: 0 -> 1 -> 5 -> 25 -> 50 -> 100.
    split: {{{legacy}: 100, {new}: 0}}
    # The request's identity (header:NAME, cookie:NAME, query:NAME, json:FIELD or
    # client_ip), hashed to pick a backend: the same key always lands on the same backend
    # for a given split, and raising the share only moves keys from old to new. `ttl`:
    # seconds a key keeps the backend that served it after the split changes, so a flow
    # a user started on one backend ends there.
{sticky}\
    # Where a request goes when its chosen backend cannot be connected to; it must be one
    # of the split's backends. It is also the "old" side of the migration.
    fallback: {legacy}
"""
