"""``benchmarks/dino.py --quick`` runs end to end as a user starts it (issue 17), on this tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_dino_quick(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "dino.py"), "--quick", "--out",
         str(tmp_path / "dino")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "EQUIDYN_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT / "src"),
             "MPLBACKEND": "Agg"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "dino" / "results.json").read_text())
    runs = {(r["data"], r["rate"]): r for r in results["runs"]}
    assert set(runs) == {("navier_stokes", 0.25), ("navier_stokes", 1.0)}
    for run in runs.values():
        for model in ("dino", "cnn"):
            assert 0 < run[model]["in_t"] < 10 and 0 < run[model]["fine_out_t"] < 10
    assert runs[("navier_stokes", 0.25)]["dino"]["in_t_out_s"] > 0  # unseen points scored
    assert runs[("navier_stokes", 0.25)]["observed_points"] == 256
    assert "| navier_stokes | 25% | DINo |" in proc.stdout
    for png in ("error_vs_rate.png", "forecast_maps_navier_stokes.png"):
        assert (tmp_path / "dino" / png).stat().st_size > 10_000
