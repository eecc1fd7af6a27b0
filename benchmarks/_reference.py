"""Where the potential benchmarks find the reference packages' virtual environments, and the
check that a pair of models compared side by side has the same size.

``benchmarks/reference_envs.sh`` creates ``benchmarks/.venvs/nequip`` and
``benchmarks/.venvs/mace``; ``NEQUIP_PYTHON`` / ``MACE_PYTHON`` override them.
"""

from __future__ import annotations

import os
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"


def reference_python(package: str) -> str:
    """The interpreter of ``package``'s venv ("nequip" or "mace"); the env var wins."""
    return os.environ.get(f"{package.upper()}_PYTHON", str(VENVS / package / "bin" / "python"))


#: the largest relative difference of parameter counts of a like-for-like comparison
MAX_PARAMS_GAP = 0.10


def params_gap(ours: int, theirs: int) -> float:
    """Relative difference of two parameter counts (0 when equal)."""
    return abs(ours - theirs) / max(ours, theirs, 1)


def params_warning(ours: str, n_ours: int, theirs: str, n_theirs: int) -> str | None:
    """A loud line when the two models differ by more than :data:`MAX_PARAMS_GAP` in size."""
    gap = params_gap(n_ours, n_theirs)
    if gap <= MAX_PARAMS_GAP:
        return None
    return (
        f"NOT COMPARABLE: {ours} has {n_ours} parameters, {theirs} {n_theirs} "
        f"({gap:.0%} apart, more than {MAX_PARAMS_GAP:.0%})"
    )
