"""``benchmarks/climode.py --quick`` runs end to end, as a user starts it, on this tree's
sources (PYTHONPATH points at the repository's ``src``)."""

from __future__ import annotations

import json

from bench_subprocess import run_benchmark


def test_climode_quick(tmp_path):
    out = run_benchmark("climode.py", "--quick", "--out", str(tmp_path / "climode"), cwd=tmp_path)
    results = json.loads((tmp_path / "climode" / "results.json").read_text())
    rows = {r["model"]: r for r in results["summary"]}
    assert set(rows) == {"Persistence", "Climatology", "ARResNet", "ClimODE"}
    assert len(rows["ClimODE"]["rmse"]) == 4 and "crps" in rows["ClimODE"]
    assert max(rows["ClimODE"]["ode_mass_drift"][-1]) < 1e-5
    for name in ("table.md", "rmse_vs_lead.png", "forecast_maps.png"):
        assert (tmp_path / "climode" / name).stat().st_size > 1000, name
    assert "| z500 | ClimODE |" in out
