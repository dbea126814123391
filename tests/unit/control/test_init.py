"""`strangler init`: a commented table the data planes accept, or a refusal naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler import cli
from strangler.control.shift import edit_split
from strangler.routing.table import load_table

GOOD = [
    "--legacy", "http://127.0.0.1:9001", "--new", "http://127.0.0.1:9002",
    "--route", "orders", "--prefix", "/api/orders/",
]  # fmt: skip


def init(tmp_path: Path, *flags: str) -> int:
    return cli.main(["init", *GOOD, *flags, "--out", str(tmp_path / "routes.yaml")])


def test_the_file_routes_the_prefix_to_the_legacy_backend_with_the_new_one_at_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ("--methods", "GET", "post", "--sticky", "header:X-User", "--health", "/health")
    assert init(tmp_path, *flags) == 0
    table = load_table(tmp_path / "routes.yaml")
    (route,) = table.routes
    assert (route.name, route.prefix, route.methods) == ("orders", "/api/orders/", {"GET", "POST"})
    assert dict(route.split) == {"legacy": 100, "new": 0} and route.fallback == "legacy"
    assert (route.sticky.kind, route.sticky.name, route.sticky.ttl) == ("header", "x-user", 600)
    assert table.default_backend == "legacy"
    assert table.backends["new"].url == "http://127.0.0.1:9002"
    assert table.backends["legacy"].health == "/health"
    out = capsys.readouterr().out
    assert "route orders (/api/orders/, GET POST)" in out and "sticky header:X-User" in out


def test_the_file_is_commented_and_strangler_shift_edits_it_in_place(tmp_path: Path) -> None:
    assert init(tmp_path, "--sticky", "cookie:session", "--ttl", "120") == 0
    raw = (tmp_path / "routes.yaml").read_bytes()
    assert raw.count(b"\n#") >= 10  # says what each part is for
    edit = edit_split(raw, "routes.yaml", "orders", 25)
    assert edit.new_split == {"legacy": 75, "new": 25}
    assert edit.text.replace(b"legacy: 75, new: 25", b"legacy: 100, new: 0") == raw


def test_without_a_sticky_key_the_file_says_how_to_add_one(tmp_path: Path) -> None:
    assert init(tmp_path) == 0
    text = (tmp_path / "routes.yaml").read_text()
    assert '# sticky: {key: "header:X-User", ttl: 600}' in text
    assert load_table(tmp_path / "routes.yaml").routes[0].sticky is None


def test_names_of_your_own_and_methods_given_with_commas(tmp_path: Path) -> None:
    flags = ("--legacy-name", "rails", "--new-name", "orders-svc", "--methods", "GET,PUT")
    assert init(tmp_path, *flags) == 0
    table = load_table(tmp_path / "routes.yaml")
    assert set(table.backends) == {"rails", "orders-svc"}
    assert table.routes[0].methods == {"GET", "PUT"}


@pytest.mark.parametrize(
    ("flags", "refusal"),
    [
        (["--legacy", "ftp://127.0.0.1:9001"], "--legacy: bad URL 'ftp://127.0.0.1:9001'"),
        (["--legacy", "http://127.0.0.1:9001/app"], "--legacy: bad URL"),
        (["--new", "http://127.0.0.1:99999"], "--new: bad URL"),
        (["--new", "http://127.0.0.1:9001/"], "--new: 'http://127.0.0.1:9001/' is the legacy"),
        (["--new", "127.0.0.1:9002"], "--new: bad URL"),
        (["--route", "two words"], "--route: bad name 'two words'"),
        (["--route", "a\ndefault_backend: x"], "--route: bad name"),
        (["--prefix", "api/orders/"], "--prefix: must start with '/'"),
        (["--prefix", "/api orders/"], "--prefix: must start with '/'"),
        (["--methods", "FETCH"], "--methods: unknown method 'FETCH'"),
        (["--methods", ","], "--methods: is empty"),
        (["--sticky", "header:"], "--sticky: 'header:' needs a name"),
        (["--sticky", "session:X"], "--sticky: unknown kind 'session'"),
        (["--sticky", "client_ip:x"], "--sticky: client_ip takes no name"),
        (["--sticky", "header:X User"], "--sticky: bad header name"),
        (["--sticky", "header:X", "--ttl", "0"], "--ttl: must be a positive number"),
        (["--ttl", "60"], "--ttl: needs --sticky"),
        (["--health", "healthz"], "--health: must be a path starting with '/'"),
        (["--legacy-name", "old one"], "--legacy-name: bad name 'old one'"),
        (["--new-name", "x" * 65], "--new-name: bad name"),
        (["--new-name", "legacy"], "--new-name: 'legacy' is the legacy backend's name too"),
    ],
)
def test_a_bad_value_is_refused_naming_its_flag_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], refusal: str
) -> None:
    assert init(tmp_path, *flags) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"strangler init: {refusal}"), err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "routes.yaml"
    target.write_text("# mine\n")
    assert init(tmp_path) == 2
    assert "exists: pass --force to replace it" in capsys.readouterr().err
    assert target.read_text() == "# mine\n"
    assert init(tmp_path, "--force") == 0
    assert load_table(target).routes[0].name == "orders"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["routes.yaml"]  # no partial left


def test_the_default_file_is_the_projects_and_the_hint_needs_no_routes_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STRANGLER_ROUTES", raising=False)
    assert cli.main(["init", *GOOD]) == 0
    assert (tmp_path / "routes.yaml").is_file()
    assert "next: strangler serve, then strangler shift orders PERCENT" in capsys.readouterr().out
