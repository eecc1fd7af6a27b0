"""Shared checks for the tests of equidyn.nn (imported by the test modules of this folder)."""

from __future__ import annotations

import copy

import torch

from equidyn.testing import assert_equivariant


def check_equivariance(module: torch.nn.Module, n: int = 7, seed: int = 0) -> None:
    """Rotations and reflections, float64 (1e-10) and float32 (1e-4), with random inputs."""
    for dtype in (torch.float64, torch.float32):
        m = copy.deepcopy(module).to(dtype)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, m.irreps_in.dim, generator=g, dtype=dtype)
        errors = assert_equivariant(
            m, irreps_in=[m.irreps_in], irreps_out=[m.irreps_out], args_in=[x], n_samples=3
        )
        assert set(errors) == {"proper rotation", "improper rotation"}


def second_moments(module: torch.nn.Module, n: int = 20_000, seed: int = 0) -> torch.Tensor:
    """Per-component E[y^2] of the outputs for i.i.d. N(0, 1) inputs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, module.irreps_in.dim, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = module.to(torch.float64)(x)
    return y.pow(2).mean(0)
