"""``benchmarks/md_scaling.py --quick`` runs end to end (issue 19: MD-step scaling with a
Verlet skin) and writes a consistent table: the steps reuse the skin list (no search after the
first call), edges grow with the atoms and every number the table reports is there; the
models' convolutions run in edge chunks (``--edge-chunk``)."""

from __future__ import annotations

import json

from bench_subprocess import run_benchmark


def test_md_scaling_quick(tmp_path):
    run_benchmark("md_scaling.py", "--quick", "--out", str(tmp_path / "md"), "--edge-chunk", "200",
                  cwd=tmp_path, timeout=300)  # fmt: skip
    results = json.loads((tmp_path / "md" / "results.json").read_text())
    assert results["settings"]["malloc_models"]["MALLOC_TOP_PAD_"] == "1000000000"
    assert results["settings"]["edge_chunk"] == 200  # the convolutions ran in chunks
    for name in ("NequIP", "MACE"):
        points = results["points"][name]
        assert [p["atoms"] for p in points] == [32, 108]
        assert points[1]["edges"] > points[0]["edges"] > 0
        for p in points:
            assert p["candidates"] > p["edges"]  # the list holds the skin's pairs too
            assert p["searches_during_steps"] == 0 and p["ms"] >= p["model_ms"] > 0
        assert results["summary"][name]["time_slope"] is not None
    nl = results["neighbor_list"]
    assert [p["atoms"] for p in nl] == [32, 108]
    assert all(p["builds"] == 1 and p["chunked"]["filter_ms"] >= 0 for p in nl)
    assert nl[0]["edges"] == results["points"]["NequIP"][0]["edges"]
    table = (tmp_path / "md" / "table.md").read_text()
    assert "| NequIP | 108 |" in table and "| MACE | 32 |" in table and "chunked" in table
    assert (tmp_path / "md" / "md_scaling.png").stat().st_size > 10_000
