"""``benchmarks/dino.py --quick`` runs end to end as a user starts it (issue 17), on this tree."""

from __future__ import annotations

import json

from bench_subprocess import run_benchmark


def test_dino_quick(tmp_path):
    out = run_benchmark("dino.py", "--quick", "--out", str(tmp_path / "dino"), cwd=tmp_path)
    results = json.loads((tmp_path / "dino" / "results.json").read_text())
    runs = {(r["data"], r["rate"]): r for r in results["runs"]}
    assert set(runs) == {("navier_stokes", 0.25), ("navier_stokes", 1.0)}
    for run in runs.values():
        for model in ("dino", "cnn"):
            assert 0 < run[model]["in_t"] < 10 and 0 < run[model]["fine_out_t"] < 10
    assert runs[("navier_stokes", 0.25)]["dino"]["in_t_out_s"] > 0  # unseen points scored
    assert runs[("navier_stokes", 0.25)]["observed_points"] == 256
    assert "| navier_stokes | 25% | DINo |" in out
    for png in ("error_vs_rate.png", "forecast_maps_navier_stokes.png"):
        assert (tmp_path / "dino" / png).stat().st_size > 10_000
