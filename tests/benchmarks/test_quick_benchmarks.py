"""The potential benchmarks' ``--quick`` modes run end to end (issue 4: "CI green with quick
versions"). Each runs as a subprocess exactly as a user would start it; the reference packages
(nequip, mace-torch) are absent in CI, which the benchmarks must report, not crash on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def run(script: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "NEQUIP_PYTHON": "/nonexistent/python",
             "MACE_PYTHON": "/nonexistent/python", "PATH": "/usr/bin:/bin",
             "HOME": str(cwd), "EQUIDYN_CACHE": str(cwd / "cache")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_data_efficiency_quick(tmp_path):
    out = run("data_efficiency.py", "--quick", "--threads", "1", "--out", str(tmp_path / "de"),
              cwd=tmp_path)  # fmt: skip
    results = json.loads((tmp_path / "data_efficiency_quick" / "results.json").read_text())
    assert {r["l_max"] for r in results["runs"]} == {0, 1}
    assert "fitted force-MAE slopes" in out


def test_nve_drift_quick(tmp_path):
    from equidyn.models.nequip import NequIP
    from equidyn.models.potential import Potential, save_model

    torch.manual_seed(0)
    model = NequIP(num_species=2, r_max=3.5, l_max=1, num_features=4, num_layers=1,
                   radial_hidden=8, avg_num_neighbors=12.0)  # fmt: skip
    save_model(Potential(model, [29, 79], [-3.5, -3.8], scale=0.1), tmp_path / "model.pt")
    run("nve_drift.py", str(tmp_path / "model.pt"), "--quick", "--out", str(tmp_path / "nve.json"),
        cwd=tmp_path)  # fmt: skip
    summary = json.loads((tmp_path / "nve.json").read_text())
    assert summary["steps"] == 200 and abs(summary["drift_mev_per_atom_per_ps"]) < 1.0


@pytest.mark.parametrize("task", ["infer", "train"])
def test_throughput_quick_without_reference_packages(tmp_path, task):
    out = run("potentials.py", "--quick", "--repeats", "1", "--task", task,
              "--json", str(tmp_path / "r.json"), cwd=tmp_path)  # fmt: skip
    results = json.loads((tmp_path / "r.json").read_text())["results"]
    for name in ("equidyn NequIP", "equidyn MACE"):
        assert results[f"{name} float32"]["ms"] > 0, out
    for name in ("nequip (package)", "mace-torch"):  # absent here: reported, not fatal
        assert "error" in results[f"{name} float32"] and f"{name:<18} float32: not run" in out


def test_transition_paths_quick(tmp_path):
    out = run("transition_paths.py", "--quick", "--threads", "1", "--out", str(tmp_path / "tp"),
              cwd=tmp_path)  # fmt: skip
    results = json.loads((tmp_path / "tp" / "results.json").read_text())
    assert set(results) == {"settings", "doob_k1", "doob_k2", "shooting", "md"}
    assert results["doob_k1"]["checkpoints"][-1]["n_paths"] == 256
    assert results["shooting"]["evaluations"] == 40 * 400
    assert (tmp_path / "tp" / "paths.png").stat().st_size > 10_000
    assert "plain MD" in out


def test_estag_quick(tmp_path):
    out = run("estag.py", "--quick", "--threads", "1", "--out", str(tmp_path / "estag"),
              cwd=tmp_path)  # fmt: skip
    results = json.loads((tmp_path / "estag" / "results.json").read_text())
    rows = {(r["data"], r["model"]): r for r in results["summary"]}
    models = ("LinearExtrapolation", "LastFrameEGNN", "StackedFramesEGNN", "ESTAG")
    assert set(rows) == {(d, m) for d in ("nbody", "cluster") for m in models}
    for r in rows.values():
        assert 0 < r["test_mse_mean"] < 10 and (r["params"] == 0) == (r["model"] == models[0])
    assert "| cluster | ESTAG |" in out and (tmp_path / "estag" / "table.md").is_file()


def test_alanine_paths_quick(tmp_path):
    pytest.importorskip("openmm")
    out = run("alanine_paths.py", "--quick", "--out", str(tmp_path / "ala"), cwd=tmp_path)
    results = json.loads((tmp_path / "ala" / "results.json").read_text())
    assert {"settings", "doob", "shooting", "md"} <= set(results)
    assert results["doob"]["checkpoints"][-1]["evaluations"] == 40 * 32
    assert results["doob"]["checkpoints"][-1]["force_calls"] == 3 * 40 * 32
    assert results["shooting"]["evaluations"] == 6 * 4000
    assert (tmp_path / "ala" / "paths.png").stat().st_size > 10_000
    assert "plain MD" in out


def test_so2_scaling_quick(tmp_path):
    out = run("so2_scaling.py", "--quick", "--threads", "1", "--out", str(tmp_path / "so2"),
              cwd=tmp_path)  # fmt: skip
    results = json.loads((tmp_path / "so2" / "results.json").read_text())
    methods = {r["method"] for r in results["rows"]}
    assert {"equidyn TP", "SO(2) exact", "SO(2) m_max=2"} <= methods
    assert all(r["fwd_bwd_ms"] > 0 and r["peak_mib"] > 0 for r in results["rows"])
    assert "| 2 |" in (tmp_path / "so2" / "table.md").read_text() and "faster than" in out


def test_potentials_transfer_quick(tmp_path):
    out_dir = tmp_path / "pt"
    out = run("potentials_transfer.py", "--quick", "--threads", "1", "--out", str(out_dir),
              cwd=tmp_path)  # fmt: skip
    results = json.loads((out_dir / "results.json").read_text())
    expected, skipped = results["meta"]["models"], results["meta"]["skipped"]
    assert {"NequIP", "MACE"} <= set(expected)
    assert sorted(expected + skipped) == sorted(["NequIP", "MACE", "ESCN", "Allegro"])
    for m in skipped:  # not merged yet: a note, not a crash
        assert f"note: {m} is not a registered potential" in out
    runs = {(r["model"], r["task"], r["seed"]) for r in results["runs"]}
    assert runs == {(m, t, s) for m in expected for t in ("mix", "300K") for s in (0, 1)}
    for r in results["runs"]:  # the same budget for every model
        assert r["steps"] == 2 and r["infer_ms_256"] > 0 and r["cell_edges"] > 256
        assert set(r["tests"]) == {"mix", "300K", "1200K"}
    assert "| NequIP |" in (out_dir / "table.md").read_text()
    assert (out_dir / "force_mae.png").stat().st_size > 5_000
    again = run("potentials_transfer.py", "--quick", "--threads", "1", "--out", str(out_dir),
                cwd=tmp_path)  # fmt: skip
    assert again.count("kept ") == len(runs)  # finished runs are reused, not retrained


def test_potentials_transfer_rejects_unknown_model_arguments():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pt", BENCH / "potentials_transfer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.check_model_kwargs({"NequIP": {"r_max": 4.0}})
    with pytest.raises(ValueError, match="num_featurs"):
        module.check_model_kwargs({"NequIP": {"num_featurs": 16}})


def test_atom_scaling_quick(tmp_path):
    """Allegro and NequIP timed and measured on two tiny Cu cells; the subprocess gets this
    checkout's ``src`` (the benchmark's workers import equidyn in their own processes)."""
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHONPATH": str(BENCH.parent / "src"), "MPLBACKEND": "Agg"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(BENCH / "atom_scaling.py"), "--quick", "--threads", "1", "--out",
         str(tmp_path / "as")], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "as" / "results.json").read_text())
    for name in ("Allegro", "NequIP"):
        points = results["points"][name]
        assert [p["atoms"] for p in points] == [32, 108]
        assert all(p["ms"] > 0 and p["edges"] > 0 and p["peak_mb"] > 0 for p in points)
        assert points[1]["edges"] > points[0]["edges"]
        assert results["summary"][name]["params"] > 0
    assert (tmp_path / "as" / "atom_scaling.png").stat().st_size > 10_000
    assert "| Allegro | 108 |" in (tmp_path / "as" / "table.md").read_text()


def test_potentials_transfer_side_by_side_inference_quick(tmp_path):
    out = run("potentials_transfer.py", "--quick", "--infer-only", "--threads", "1",
              "--out", str(tmp_path / "inf"), cwd=tmp_path)  # fmt: skip
    result = json.loads((tmp_path / "inf" / "inference_threads1.json").read_text())
    assert set(result["ms_per_call"]) == {"NequIP", "MACE", "ESCN", "Allegro"}
    assert all(ms > 0 for ms in result["ms_per_call"].values()) and result["edges"] > 256
    assert "ms per energy + forces call" in out
