"""Run a benchmark script as a user starts it, on this checkout's sources (for the quick tests).

The script runs in a fresh process with one thread, a scratch home and cache under ``cwd``,
the Agg plotting backend and ``PYTHONPATH`` at this repository's ``src`` (its workers import
equidyn in their own processes, so the tree under test must be the one they find).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(script: str, *args: str, cwd: Path, timeout: float = 600) -> str:
    """``python benchmarks/<script> <args>``; fails the test with its output's tail if the
    script fails, returns its standard output otherwise."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(cwd),
             "EQUIDYN_CACHE": str(cwd / "cache"), "PYTHONPATH": str(ROOT / "src"),
             "MPLBACKEND": "Agg"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout
