"""e3nn 0.6 as an oracle: code that ports by changing the import gives the same numbers.

Covers wigner_D(l, alpha, beta, gamma), D_from_angles / D_from_quaternion / D_from_axis_angle,
Norm, ReducedTensorProducts, CartesianTensor, TensorSquare(irreps_out=...), TensorProduct
with e3nn instruction tuples, from_e3nn and loading e3nn state dicts."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn import o3

e3o = pytest.importorskip("e3nn.o3")

F64 = torch.float64


def _in_f64(make):
    """Build an e3nn object with float64 constants (e3nn rounds them to the default dtype)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    try:
        return make()
    finally:
        torch.set_default_dtype(old)


def _angles(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(n, generator=g, dtype=F64) * 4 * math.pi - 2 * math.pi for _ in "abc")


# --------------------------------------------------------------------------- Wigner D
@pytest.mark.parametrize("l", range(5))
def test_wigner_D_from_angles_matches_e3nn(l):
    a, b, c = _angles(16, l)
    ref = _in_f64(lambda: e3o.wigner_D(l, a, b, c))
    torch.testing.assert_close(o3.wigner_D(l, a, b, c), ref, atol=1e-10, rtol=0)


IRREPS = "2x0e + 1x0o + 1x1o + 1x1e + 2x2e + 1x2o + 1x3o"


def test_D_from_angles_with_parity_matches_e3nn():
    a, b, c = _angles(8, 7)
    k = torch.tensor([0, 1, 2, 3, 1, 0, 1, 1], dtype=F64)
    ours = o3.Irreps(IRREPS).D_from_angles(a, b, c, k)
    ref = _in_f64(lambda: e3o.Irreps(IRREPS).D_from_angles(a, b, c, k))
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=0)
    for _, ir in o3.Irreps(IRREPS):
        ref = _in_f64(lambda ir=ir: e3o.Irrep(str(ir)).D_from_angles(a, b, c, k))
        torch.testing.assert_close(ir.D_from_angles(a, b, c, k), ref, atol=1e-10, rtol=0)


def test_D_from_quaternion_and_axis_angle_match_e3nn():
    g = torch.Generator().manual_seed(5)
    q = torch.randn(6, 4, generator=g, dtype=F64)
    q = q / q.norm(dim=-1, keepdim=True)
    k = torch.tensor([0, 1, 1, 0, 1, 2], dtype=F64)
    axis = torch.randn(6, 3, generator=g, dtype=F64)
    angle = torch.randn(6, generator=g, dtype=F64) * 3
    ours, ref = o3.Irreps(IRREPS), e3o.Irreps(IRREPS)
    torch.testing.assert_close(
        ours.D_from_quaternion(q, k),
        _in_f64(lambda: ref.D_from_quaternion(q, k)),
        atol=1e-10,
        rtol=0,
    )
    torch.testing.assert_close(
        ours.D_from_axis_angle(axis, angle),
        _in_f64(lambda: ref.D_from_axis_angle(axis, angle)),
        atol=1e-10,
        rtol=0,
    )
    ir, e_ir = o3.Irrep("3o"), e3o.Irrep("3o")
    torch.testing.assert_close(
        ir.D_from_quaternion(q, k),
        _in_f64(lambda: e_ir.D_from_quaternion(q, k)),
        atol=1e-10,
        rtol=0,
    )
    torch.testing.assert_close(
        ir.D_from_axis_angle(axis, angle),
        _in_f64(lambda: e_ir.D_from_axis_angle(axis, angle)),
        atol=1e-10,
        rtol=0,
    )
