"""``benchmarks/climode.py --quick`` runs end to end, as a user starts it, on this tree's
sources (PYTHONPATH points at the repository's ``src``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_climode_quick(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "climode.py"), "--quick", "--out",
         str(tmp_path / "climode")],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "EQUIDYN_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT / "src"),
             "MPLBACKEND": "Agg"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "climode" / "results.json").read_text())
    rows = {r["model"]: r for r in results["summary"]}
    assert set(rows) == {"Persistence", "Climatology", "ARResNet", "ClimODE"}
    assert len(rows["ClimODE"]["rmse"]) == 4 and "crps" in rows["ClimODE"]
    assert max(rows["ClimODE"]["ode_mass_drift"][-1]) < 1e-5
    for name in ("table.md", "rmse_vs_lead.png", "forecast_maps.png"):
        assert (tmp_path / "climode" / name).stat().st_size > 1000, name
    assert "| z500 | ClimODE |" in proc.stdout
