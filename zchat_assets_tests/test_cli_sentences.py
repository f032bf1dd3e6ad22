"""The zchat-assets command refuses bad input in one sentence, before it starts anything."""

import shutil
from pathlib import Path

import pytest

from zchat_assets.cli import main

ROOT = Path(__file__).parents[1]

BAD_ZONE = "is not an IANA time zone: use a name such as America/Sao_Paulo."


@pytest.mark.parametrize("argv,environ,sentence", [
    (["sandbox", "--timezone", "Mars/Olympus"], {"ZCHAT_API_TOKEN": "t"}, f"--timezone 'Mars/Olympus' {BAD_ZONE}"),
    (["sandbox"], {"ZCHAT_API_TOKEN": "t", "ZCHAT_TIMEZONE": "Mars/Olympus"}, f"ZCHAT_TIMEZONE 'Mars/Olympus' {BAD_ZONE}"),
    (["sandbox"], {}, "set ZCHAT_API_TOKEN to the tokens the sandbox should accept (any strings)"),
    (["demo", "--timezone", "Mars/Olympus"], {}, f"--timezone 'Mars/Olympus' {BAD_ZONE}"),
    (["demo", "--days", "0"], {}, "--days 0 is not valid: use a whole number of days from 1 to 60"),
    (["demo", "--days", "61"], {}, "--days 61 is not valid: use a whole number of days from 1 to 60"),
    (["ui", "--timezone", "Mars/Olympus", "--port", "0"], {}, f"--timezone 'Mars/Olympus' {BAD_ZONE}"),
])
def test_bad_input_is_one_sentence_and_exit_2(argv, environ, sentence, monkeypatch, tmp_path, capsys):
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(ROOT / name, tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in ("ZCHAT_API_TOKEN", "ZCHAT_TIMEZONE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"zchat-assets: {sentence}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dagster.yaml", "workspace.yaml"]  # nothing written


@pytest.mark.parametrize("command", ["demo", "ui"])
def test_the_sandbox_commands_outside_the_repository_root_say_where_to_run_them(command, monkeypatch, tmp_path,
                                                                                capsys):
    monkeypatch.chdir(tmp_path)
    assert main([command]) == 2
    assert capsys.readouterr().err == ("zchat-assets: run this from the repository root (where dagster.yaml and "
                                       "workspace.yaml are)\n")
    assert list(tmp_path.iterdir()) == []
