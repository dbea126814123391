"""The `strangler` command line: every verb builds its parser and prints its help."""

import pytest

from strangler import cli


@pytest.mark.parametrize("verb", sorted(cli.VERBS))
def test_every_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([verb, "--help"])
    assert exc.value.code == 0
    assert f"strangler {verb}" in capsys.readouterr().out


def test_top_level_help_lists_every_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert all(verb in out for verb in cli.VERBS)


def test_unknown_verb_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["migrate-everything"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_help_texts_print_percent_signs_once(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["load-migration", "--help"])
    out = capsys.readouterr().out
    assert "0 % under load" in out and "%%" not in out
