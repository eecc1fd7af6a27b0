"""Smoke tests: the example scripts a newcomer reads first must run."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spiral_ode_runs_and_writes_a_plot(tmp_path, capsys):
    pytest.importorskip("torchdiffeq")
    out = tmp_path / "spiral.png"
    assert _load("spiral_ode").main(["--iters", "3", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert "whole-trajectory mean |error|" in capsys.readouterr().out
