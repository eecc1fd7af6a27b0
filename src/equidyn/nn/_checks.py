"""Input checks shared by the layers of :mod:`equidyn.nn` (private)."""

from __future__ import annotations

import torch

from equidyn.o3 import Irreps


def check_features(x: torch.Tensor, irreps: Irreps, name: str = "input") -> None:
    """Raise TypeError/ValueError unless ``x`` is a floating tensor ``(..., irreps.dim)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0 or x.shape[-1] != irreps.dim:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}, expected (..., {irreps.dim}) "
            f"for irreps {irreps} (dim {irreps.dim})"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def component_index(irreps: Irreps) -> torch.Tensor:
    """For every component of a feature vector, the index of the irrep copy it belongs to.

    ``"2x0e + 1x1o"`` gives ``[0, 1, 2, 2, 2]``.
    """
    dims = [ir.dim for mul, ir in irreps for _ in range(mul)]
    idx = [i for i, d in enumerate(dims) for _ in range(d)]
    return torch.tensor(idx, dtype=torch.long)
