"""Unit tests (no e3nn needed) of the e3nn-style entry points: wigner_D from angles,
D_from_angles / D_from_quaternion / D_from_axis_angle with the parity factor k."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from equidyn import o3

F64 = torch.float64


def _angles(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(n, generator=g, dtype=F64) * 4 * math.pi - 2 * math.pi for _ in "abc")


# --------------------------------------------------------------------------- wigner_D dispatch
@pytest.mark.parametrize("l", range(5))
def test_wigner_D_angles_equals_matrix_form(l):
    a, b, c = _angles(8, l)
    R = o3.angles_to_matrix(a, b, c)
    torch.testing.assert_close(o3.wigner_D(l, a, b, c), o3.wigner_D(l, R), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        o3.wigner_D(l, a, b, c), o3.wigner_D_from_angles(l, a, b, c), atol=0, rtol=0
    )


def test_wigner_D_angles_accepts_numbers_and_broadcasts():
    D = o3.wigner_D(2, 0.1, torch.tensor([0.2, 0.3], dtype=F64), 0.4)
    assert D.shape == (2, 5, 5) and D.dtype == F64
    assert o3.wigner_D(1, 0.0, 0.0, 0.0).shape == (3, 3)


@pytest.mark.parametrize("args", [(), (0.1, 0.2), (0.1, 0.2, 0.3, 0.4)])
def test_wigner_D_wrong_number_of_arguments(args):
    with pytest.raises(TypeError, match="wigner_D takes"):
        o3.wigner_D(1, *args)


def test_wigner_D_wrong_types():
    with pytest.raises(TypeError, match="R must be a tensor"):
        o3.wigner_D(1, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(TypeError, match="beta must be a tensor"):
        o3.wigner_D(1, 0.1, "x", 0.2)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 3),
    st.lists(st.floats(-7, 7, allow_nan=False), min_size=6, max_size=6),
)
def test_wigner_D_angles_group_law_against_matrix_exp(l, angles):
    """D(a1, b1, c1) D(a2, b2, c2) = D(R1 R2), the reference D = exp(a Jy) exp(b Jx) exp(c Jy)
    from matrix_exp (its rounding is ~6e-12 at l = 2, hence 1e-10)."""
    t = torch.tensor(angles, dtype=F64)
    J = o3.so3_generators(l, dtype=F64)

    def ref(a, b, c):
        return (
            torch.linalg.matrix_exp(a * J[1])
            @ torch.linalg.matrix_exp(b * J[0])
            @ torch.linalg.matrix_exp(c * J[1])
        )

    D1, D2 = o3.wigner_D(l, *t[:3]), o3.wigner_D(l, *t[3:])
    torch.testing.assert_close(D1, ref(*t[:3]), atol=1e-10, rtol=0)
    R = o3.angles_to_matrix(*t[:3]) @ o3.angles_to_matrix(*t[3:])
    torch.testing.assert_close(D1 @ D2, o3.wigner_D(l, R), atol=1e-10, rtol=0)


# --------------------------------------------------------------------------- D_from_*
IRREPS = "2x0e + 1x0o + 1x1o + 1x1e + 2x2e + 1x3o"


def test_irrep_D_from_angles_parity_factor():
    a, b, c = _angles(6, 1)
    k = torch.tensor([0, 1, 2, 3, 0, 1])
    R = o3.angles_to_matrix(a, b, c)
    sign = ((-1.0) ** k).to(F64)
    for ir in o3.Irreps(IRREPS):
        ir = ir.ir
        D = ir.D_from_angles(a, b, c, k)
        expected = (
            o3.wigner_D(ir.l, R) * (sign if ir.p == -1 else torch.ones_like(sign))[:, None, None]
        )
        torch.testing.assert_close(D, expected, atol=1e-12, rtol=0)
        # the same element as a matrix (-1)^k R
        torch.testing.assert_close(D, ir.D_from_matrix(sign[:, None, None] * R), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        o3.Irrep("1o").D_from_angles(a, b, c), R, atol=1e-12, rtol=0
    )  # k=None means 0


def test_irreps_D_from_angles_is_block_diagonal_and_matches_matrix():
    a, b, c = _angles(5, 2)
    k = torch.tensor([1, 0, 1, 1, 0])
    irreps = o3.Irreps(IRREPS)
    sign = ((-1.0) ** k).to(F64)[:, None, None]
    D = irreps.D_from_angles(a, b, c, k)
    assert D.shape == (5, irreps.dim, irreps.dim)
    torch.testing.assert_close(
        D, irreps.D_from_matrix(sign * o3.angles_to_matrix(a, b, c)), atol=1e-12, rtol=0
    )
    assert irreps.D_from_angles(0.1, 0.2, 0.3, k=1).shape == (irreps.dim, irreps.dim)


def test_D_from_quaternion_and_axis_angle():
    g = torch.Generator().manual_seed(3)
    q = o3.rand_quaternion(4, generator=g, dtype=F64)
    axis, angle = o3.rand_axis_angle(4, generator=g, dtype=F64)
    irreps = o3.Irreps(IRREPS)
    k = torch.tensor([0, 1, 1, 0])
    sign = ((-1.0) ** k).to(F64)[:, None, None]
    torch.testing.assert_close(
        irreps.D_from_quaternion(q, k),
        irreps.D_from_matrix(sign * o3.quaternion_to_matrix(q)),
        atol=1e-12,
        rtol=0,
    )
    torch.testing.assert_close(
        irreps.D_from_axis_angle(axis, angle),
        irreps.D_from_matrix(o3.axis_angle_to_matrix(axis, angle)),
        atol=1e-12,
        rtol=0,
    )
    ir = o3.Irrep("2o")
    torch.testing.assert_close(
        ir.D_from_quaternion(q, k),
        ir.D_from_matrix(sign * o3.quaternion_to_matrix(q)),
        atol=1e-12,
        rtol=0,
    )
    torch.testing.assert_close(
        ir.D_from_axis_angle(axis, angle),
        o3.wigner_D(2, o3.axis_angle_to_matrix(axis, angle)),
        atol=1e-12,
        rtol=0,
    )


def test_D_from_angles_bad_k():
    with pytest.raises(TypeError, match="k must be"):
        o3.Irrep("1o").D_from_angles(0.1, 0.2, 0.3, k="odd")
