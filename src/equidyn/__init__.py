"""equidyn: equivariant deep learning and learned dynamics in PyTorch.

``equidyn.o3`` (irreps, rotations, Wigner D, Clebsch–Gordan, spherical harmonics, tensor
products) and ``equidyn.nn`` (equivariant layers) are imported with the package; the heavier
subpackages (``graph``, ``models``, ``dynamics``, ``data``, ``train``, ``calculators``,
``testing``) load on first access.

>>> import equidyn as ed
>>> ed.o3.Irreps("16x0e + 8x1o").dim
40
>>> ed.testing.assert_equivariant(lambda v: 2 * v, ["1o"], ["1o"])["improper rotation"] < 1e-12
True
"""

from __future__ import annotations

import importlib
from typing import Any

from equidyn import nn, o3

__version__ = "0.1.0"
_LAZY = ("graph", "models", "dynamics", "paths", "data", "train", "calculators", "testing")
__all__ = ["o3", "nn", *_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(f"equidyn.{name}")
    raise AttributeError(f"module 'equidyn' has no attribute {name!r}")
