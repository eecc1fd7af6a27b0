"""The rotated-digits benchmark's --quick mode runs end to end and reports every row, with
exact invariance for the models that are invariant by construction."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "rotated_digits.py"


def test_rotated_digits_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("rotated_digits", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--quick", "--out", str(tmp_path / "rd")])
    saved = json.loads((tmp_path / "rd_quick" / "results.json").read_text())
    assert [r["row"] for r in saved["runs"]] == bench.ROWS == [r["row"] for r in result["runs"]]
    inv = {r["row"]: r for r in saved["runs"]}
    for row in ("P4CNN", "P4MCNN", "CNN + C4 canon"):
        assert inv[row]["invariance_C4"] < 1e-10
    assert inv["P4MCNN"]["invariance_D4"] < 1e-10 < inv["P4CNN"]["invariance_D4"]
    assert inv["CNN"]["invariance_C4"] > 1e-6
    assert all(set(r["error_pct"]) == {"upright", "C4", "D4", "SO2"} for r in saved["runs"])
    assert (tmp_path / "rd_quick" / "table.md").read_text().count("\n") == 2 + len(bench.ROWS)
