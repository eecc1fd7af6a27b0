"""Where the potential benchmarks find the reference packages' virtual environments.

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
