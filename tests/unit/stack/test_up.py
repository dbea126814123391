"""`strangler up` outside a checkout: the demo's routing table is copied where `shift` finds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from strangler.stack import specs, up


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STRANGLER_ROUTES", raising=False)
    return tmp_path


def test_a_directory_without_a_table_gets_a_copy_of_the_demos(elsewhere: Path) -> None:
    routes = up.routes_for(None)
    assert routes == elsewhere / "routes.yaml"
    assert routes.read_bytes() == specs.DEMO_ROUTES.read_bytes()


def test_a_table_of_yours_is_served_as_it_is(elsewhere: Path) -> None:
    (elsewhere / "routes.yaml").write_text("# mine\n")
    assert up.routes_for(None).read_text() == "# mine\n"


def test_a_table_asked_for_by_name_must_exist(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileNotFoundError, match="no such routing file"):
        up.routes_for(elsewhere / "missing.yaml")
    monkeypatch.setenv("STRANGLER_ROUTES", str(elsewhere / "also-missing.yaml"))
    with pytest.raises(FileNotFoundError, match=r"also-missing\.yaml: no such routing file"):
        up.routes_for(None)
    assert list(elsewhere.iterdir()) == []


def test_a_rollout_asked_for_runs_last_as_its_own_following_controller(tmp_path: Path) -> None:
    cfg = specs.StackConfig.on_free_ports(tmp_path / "var")
    children = up.plan(cfg, tmp_path / "routes.yaml", rollouts=["verification"])
    controller = children[-1]
    assert controller.name == "rollout-verification"
    assert list(controller.argv[-7:]) == [
        "rollout", "verification", "--follow", "--routes", str(tmp_path / "routes.yaml"),
        "--admin", cfg.admin_url,
    ]  # fmt: skip
    assert controller.env["STRANGLER_VAR"] == str((tmp_path / "var").resolve())


def test_up_refuses_a_rollout_of_a_route_without_a_rollout_block(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from strangler import cli

    assert cli.main(["up", "--rollout", "verification"]) == 1
    assert (
        "--rollout verification: no route 'verification' with a rollout:" in capsys.readouterr().err
    )
