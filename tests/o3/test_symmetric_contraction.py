"""Symmetric contraction: the generalized Clebsch-Gordan basis and the MACE product layer."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from equidyn.o3 import Irrep, Irreps
from equidyn.o3.rotations import rand_matrix
from equidyn.o3.symmetric_contraction import (
    SymmetricContraction,
    _monomials,
    monomial_exponents,
    symmetric_power_basis,
    symmetric_power_count,
)
from equidyn.testing import assert_equivariant


# ----------------------------------------------------------------------------- character theory
def _chi(l: int, theta: np.ndarray) -> np.ndarray:
    """Character of D^l at rotation angle theta."""
    return np.sin((l + 0.5) * theta) / np.sin(theta / 2)


def character_count(irreps: str, ir_out: str, degree: int, n: int = 2000) -> float:
    r"""dim Hom_{O(3)}(Sym^degree V, V_out) = <chi_Sym, chi_out> by integrating over O(3).

    O(3) = SO(3) x {1, -1}; a class function of SO(3) integrates as
    (1/pi) int_0^pi f(theta) (1 - cos theta) d theta (midpoint rule, exact here since the
    integrand is a trigonometric polynomial). The symmetric power's character comes from the
    cycle index of S_nu: chi_Sym2(g) = (chi(g)^2 + chi(g^2))/2, and so on.
    """
    parts = [(ir.l, ir.p) for mul, ir in Irreps(irreps) for _ in range(mul)]
    out = Irrep(ir_out)
    theta = (np.arange(n) + 0.5) * np.pi / n
    weight = (1 - np.cos(theta)) / n
    total = 0.0
    for s in (1, -1):  # proper rotation, rotation times inversion

        def chi(k: int, s: int = s) -> np.ndarray:  # character of g^k on V
            return sum((p**k if s == -1 else 1) * _chi(l, k * theta) for l, p in parts)

        sym = {
            1: chi(1),
            2: (chi(1) ** 2 + chi(2)) / 2,
            3: (chi(1) ** 3 + 3 * chi(2) * chi(1) + 2 * chi(3)) / 6,
        }[degree]
        total += 0.5 * float(np.sum(sym * (out.p if s == -1 else 1) * _chi(out.l, theta) * weight))
    return total


@pytest.mark.parametrize(
    "irreps, ir_out",
    [("0e+1o+2e+3o", "0e"), ("0e+1o+2e+3o", "1o"), ("0e+1o+2e", "2e"), ("0e+1o+2e", "1e"),
     ("0e+1o+2e", "0o"), ("2x0e+1o", "1o"), ("1o+1e", "0o"), ("1o+1e", "1e")],
)  # fmt: skip
@pytest.mark.parametrize("degree", [1, 2, 3])
def test_path_count_matches_character_theory(irreps, ir_out, degree):
    expected = character_count(irreps, ir_out, degree)
    assert abs(expected - round(expected)) < 1e-6
    assert symmetric_power_count(irreps, ir_out, degree) == round(expected)


def test_known_counts():
    # the invariants of Sym^3 of 0e+1o+2e+3o and the vectors of its cube (character theory)
    counts = [symmetric_power_count("0e+1o+2e+3o", ir, 3) for ir in ("0e", "1o")]
    assert counts == [8, 12]
    assert symmetric_power_count("1o", "1e", 2) == 0  # x cross x = 0


# ----------------------------------------------------------------------------- the U tensors
@pytest.mark.parametrize("irreps, ir_out, degree", [("0e+1o+2e", "1o", 3), ("1o+2e", "2e", 2)])
def test_basis_symmetric_and_equivariant(irreps, ir_out, degree):
    U = symmetric_power_basis(irreps, ir_out, degree)  # [d]*degree + [2L+1, K]
    assert U.dtype == torch.float64 and U.shape[-1] > 0
    for perm in itertools.permutations(range(degree)):
        torch.testing.assert_close(U.permute(*perm, degree, degree + 1), U, atol=0, rtol=0)
    for R in (rand_matrix(dtype=torch.float64), -rand_matrix(dtype=torch.float64)):
        D_in = Irreps(irreps).D_from_matrix(R)
        D_out = Irreps(ir_out).D_from_matrix(R)
        rotated = U
        for axis in range(degree):  # U(D x, D x, ...) = D_out U(x, x, ...): D_in^T on each axis
            rotated = torch.movedim(torch.tensordot(D_in, rotated, dims=([0], [axis])), 0, axis)
        expected = torch.einsum("mn,...nk->...mk", D_out, U)
        assert (rotated - expected).abs().max() < 1e-12


def test_degree_two_invariant_of_a_vector_is_the_dot_product():
    U = symmetric_power_basis("1o", "0e", 2)[..., 0, 0]  # [3, 3]
    torch.testing.assert_close(U, U[0, 0] * torch.eye(3, dtype=torch.float64))
    # normalised for a standard Gaussian: E[(c |x|^2)^2] = c^2 E[chi2_3^2] = 15 c^2 = 1
    assert abs(U[0, 0].item() ** 2 * 15 - 1) < 1e-12


def test_monomials_match_exponents():
    x = torch.randn(4, 5, dtype=torch.float64)
    for nu, mono in enumerate(_monomials(x, 3), start=1):
        alpha = torch.from_numpy(monomial_exponents(5, nu))
        expected = (x[:, None, :] ** alpha[None]).prod(-1)
        assert mono.shape[-1] == math.comb(5 + nu - 1, nu)
        torch.testing.assert_close(mono, expected)


# ----------------------------------------------------------------------------- the layer
@pytest.fixture(scope="module")
def contraction() -> SymmetricContraction:
    torch.manual_seed(0)
    # built in the default dtype (float32): .double() must restore float64-exact bases
    return SymmetricContraction("3x0e + 3x1o + 3x2e", "3x0e + 3x1o + 3x1e", 3, num_species=2)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_contraction_equivariant(contraction, dtype):
    sc = contraction.to(dtype)
    species = torch.tensor([0, 1, 1, 0, 1])
    out = assert_equivariant(
        lambda x: sc(x, species),
        irreps_in=[sc.irreps_in],
        irreps_out=[sc.irreps_out],
        args_in=[torch.randn(5, sc.irreps_in.dim, dtype=dtype)],
        permutations=False,
    )
    if dtype == torch.float64:
        assert max(out.values()) < 1e-10
    y = sc(torch.randn(5, sc.irreps_in.dim, dtype=dtype), species)
    assert y.shape == (5, sc.irreps_out.dim) and y.abs().max() > 1e-3
    sc.float()


def test_contraction_uses_species_weights(contraction):
    sc = contraction.double()
    x = torch.randn(1, sc.irreps_in.dim, dtype=torch.float64)
    y0 = sc(x, torch.tensor([0]))
    y1 = sc(x, torch.tensor([1]))
    assert (y0 - y1).abs().max() > 1e-3
    # a batch with mixed species equals the nodes one by one
    both = sc(torch.cat([x, x]), torch.tensor([1, 0]))
    torch.testing.assert_close(both, torch.cat([y1, y0]))
    sc.float()


def test_contraction_is_polynomial_of_the_right_degree(contraction):
    sc = contraction.double()
    x = torch.randn(3, sc.irreps_in.dim, dtype=torch.float64)
    s = torch.tensor([0, 1, 0])
    # degree <= 3: the 4th finite difference along any line vanishes
    h = torch.randn_like(x)
    vals = [sc(x + k * h, s) for k in range(5)]
    fourth = vals[4] - 4 * vals[3] + 6 * vals[2] - 4 * vals[1] + vals[0]
    assert fourth.abs().max() < 1e-9
    third = vals[3] - 3 * vals[2] + 3 * vals[1] - vals[0]
    assert third.abs().max() > 1e-3  # ... and the cubic part is there
    sc.float()


def test_correlation_one_is_a_linear_map():
    torch.manual_seed(1)
    sc = SymmetricContraction("3x0e + 3x1o", "3x0e + 3x1o", 1, num_species=2).double()
    x = torch.randn(4, sc.irreps_in.dim, dtype=torch.float64)
    species = torch.tensor([0, 1, 1, 0])
    y = sc(x, species)
    w0 = sc.weight_1_0[species]  # [n, K=1, C]: one path per output irrep (the identity)
    w1 = sc.weight_1_1[species]
    torch.testing.assert_close(y[:, :3], w0[:, 0] * x[:, :3])
    expected_vec = w1[:, 0, :, None] * x[:, 3:].reshape(4, 3, 3)  # channel-wise scaling
    torch.testing.assert_close(y[:, 3:], expected_vec.reshape(4, 9))
    z = torch.randn_like(x)
    torch.testing.assert_close(sc(2 * x - z, species), 2 * y - sc(z, species))


def test_unit_variance_at_initialisation():
    torch.manual_seed(3)
    sc = SymmetricContraction("64x0e + 64x1o", "64x0e + 64x1o", 3, num_species=1).double()
    x = torch.randn(4000, sc.irreps_in.dim, dtype=torch.float64)
    y = sc(x, torch.zeros(4000, dtype=torch.long))
    assert 0.6 < y.pow(2).mean().item() < 1.6


def test_second_derivatives_flow(contraction):
    sc = contraction.double()
    x = torch.randn(3, sc.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(sc(x, torch.tensor([0, 1, 0])).pow(2).sum(), x, create_graph=True)
    g.pow(2).sum().backward()
    assert sc.weight_3_0.grad is not None and sc.weight_3_0.grad.abs().max() > 0
    sc.zero_grad()
    sc.float()


@pytest.mark.parametrize(
    "args, match",
    [(("3x0e + 2x1o", "3x0e", 2, 1), "multiplicity"), (("3x0e", "3x0e", 0, 1), "correlation"),
     (("3x0e", "3x0e", 2, 0), "num_species"), (("3x1o", "3x0o", 2, 1), "no equivariant")],
)  # fmt: skip
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        SymmetricContraction(*args)


def test_bad_input_shape(contraction):
    with pytest.raises(ValueError, match="shape"):
        contraction(torch.randn(2, 5), torch.tensor([0, 0]))
