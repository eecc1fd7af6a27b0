"""``equidyn climode --quick`` trains both models and prints the table."""

from __future__ import annotations

import json

import pytest

from equidyn.cli import SUBCOMMANDS, main


def test_climode_cli_quick(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EQUIDYN_CACHE", str(tmp_path / "cache"))
    assert "climode" in SUBCOMMANDS
    assert main(["climode", "--quick", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "z500     ClimODE" in out and "24 h" in out
    results = json.loads((tmp_path / "run" / "results.json").read_text())["results"]
    assert set(results) == {"Persistence", "ARResNet", "ClimODE"}


def test_climode_cli_bad_arguments():
    with pytest.raises(SystemExit):
        main(["climode", "--epochs", "0"])
