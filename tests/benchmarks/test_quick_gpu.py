"""benchmarks/gpu.py --quick runs on CPU (CI has no GPU), reports the libraries it lacks
instead of crashing, and writes its results and table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_benchmark_quick_on_cpu(tmp_path):
    pytest.importorskip("ase")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--quick", "--device", "cpu",
         "--out", str(tmp_path / "gpu")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = json.loads((tmp_path / "gpu" / "results.json").read_text())["rows"]
    by_lib = {(r["problem"], r["lib"]): r for r in rows}
    ours = by_lib[("conv-1", "equidyn")]
    assert ours["backend"] in ("native", "torch-op") and ours["fwd_ms"] > 0  # CPU: never cuda
    for lib in ("equidyn NequIP", "equidyn MACE"):
        row = by_lib[("md-step", lib)]
        assert "error" not in row and row["ms"] > 0 and row["atoms"] == 32
    # every library has a row: a time, or the reason it did not run
    for key in [("conv-1", "e3nn"), ("conv-1", "cuequivariance"), ("md-step", "mace-torch (e3nn)")]:
        assert key in by_lib and ("error" in by_lib[key] or by_lib[key].get("ms", 1) > 0)
    table = (tmp_path / "gpu" / "table.md").read_text()
    assert "| conv-1 | float32 | equidyn |" in table and "Ratios" in table
    try:
        import cuequivariance_torch  # noqa: F401
    except ImportError:
        assert "not run: ModuleNotFoundError" in table
