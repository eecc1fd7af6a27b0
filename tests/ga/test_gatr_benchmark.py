"""benchmarks/gatr_nbody.py --quick runs end to end (table and scale study), in seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gatr_nbody.py"


@pytest.mark.parametrize(
    "part",
    ["table", pytest.param("scale", marks=pytest.mark.slow)],  # same training loop
)
def test_quick_benchmark_runs(tmp_path, part):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--part", part, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    if part == "table":
        rows = json.loads((tmp_path / "table.json").read_text())["rows"]
        assert [r["model"] for r in rows] == [
            "gatr", "transformer", "transformer_aug", "segnn", "se3_transformer"
        ]  # fmt: skip
        assert all(r["test_mse"] > 0 for r in rows)
        # every run trained by the shared trainer: its checkpoint and log, resumable
        assert (tmp_path / "gatr_seed0" / "checkpoint.pt").is_file()
        assert (tmp_path / "gatr_seed0" / "log.csv").is_file()
    else:
        runs = json.loads((tmp_path / "scale.json").read_text())
        # 2 data sizes x 2 widths x 2 step budgets x 3 models
        assert len(runs) == 24 and all(r["flops"] > 0 for r in runs)
        assert "C^" in proc.stdout  # the fitted power laws
