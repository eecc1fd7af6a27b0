import subprocess
import sys

import pytest

from equidyn.cli import SUBCOMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_unknown_command_is_an_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "frobnicate" in capsys.readouterr().err


def test_every_subcommand_resolves():
    import importlib

    for name, (target, _) in SUBCOMMANDS.items():
        module_name, func_name = target.split(":")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, func_name)), name


def test_demo_runs_and_reports_small_errors(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "largest float64 equivariance error" in out and "OK" in out


@pytest.mark.parametrize("args", [["--version"], ["demo", "--help"]])
def test_python_dash_m(args):
    proc = subprocess.run(
        [sys.executable, "-m", "equidyn", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
