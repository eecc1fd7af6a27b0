"""Tests of equidyn.o3.wigner: generators, Wigner D (group law, orthogonality, D^1 = R,
accuracy against an independent matrix exponential and against e3nn 0.6 for l <= 12,
gradients, compile) and Clebsch-Gordan / Wigner 3j (exact values, e3nn agreement, invariance,
orthogonality and completeness, errors)."""

from __future__ import annotations

import math
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from equidyn.o3 import rotations as rot
from equidyn.o3 import wigner as W

F64 = torch.float64
F32 = torch.float32
TOL = {F64: 1e-13, F32: 1e-5}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _special_rotations(dtype=F64) -> torch.Tensor:
    pi = torch.tensor(math.pi, dtype=dtype)
    axes = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [1, -2, 0.5]], dtype=dtype)
    a, c = torch.tensor(0.3, dtype=dtype), torch.tensor(-1.2, dtype=dtype)
    mats = [torch.eye(3, dtype=dtype)]
    mats += [rot.axis_angle_to_matrix(n, pi) for n in axes]
    mats += [rot.axis_angle_to_matrix(n, pi / 2) for n in axes]
    mats += [rot.axis_angle_to_matrix(n, 1e-7 * pi) for n in axes]
    mats += [rot.angles_to_matrix(a, 0 * pi, c), rot.angles_to_matrix(a, pi, c)]  # gimbal lock
    return torch.stack(mats)  # [n, 3, 3]


def _rotations(n: int, dtype=F64, seed: int = 0) -> torch.Tensor:
    return torch.cat(
        [rot.rand_matrix(n, generator=_gen(seed), dtype=dtype), _special_rotations(dtype)]
    )


def _expm_reference(l: int, R: torch.Tensor) -> torch.Tensor:
    """Independent path: D = exp(omega . J) with omega the rotation vector of R."""
    w = rot.matrix_to_rotation_vector(R)  # [n, 3]
    return torch.linalg.matrix_exp(
        torch.einsum("ni,ijk->njk", w, W.so3_generators(l, dtype=R.dtype))
    )


# ------------------------------------------------------------------------------- generators


@pytest.mark.parametrize("l", [0, 1, 2, 5, 12])
def test_generators_lie_algebra(l):
    J = W.so3_generators(l, dtype=F64)
    n = 2 * l + 1
    assert J.shape == (3, n, n) and J.dtype == F64
    assert torch.allclose(J, -J.transpose(-1, -2))
    comm = lambda A, B: A @ B - B @ A
    for a, b, c in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        assert torch.allclose(comm(J[a], J[b]), J[c], atol=1e-12)
    casimir = (J @ J).sum(0)
    assert torch.allclose(casimir, -l * (l + 1) * torch.eye(n, dtype=F64), atol=1e-11)


def test_generators_l1_and_defaults():
    J = W.so3_generators(1, dtype=F64)
    eps = torch.zeros(3, 3, 3, dtype=F64)
    for a, b, c in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        eps[a, b, c], eps[a, c, b] = 1.0, -1.0
    assert torch.equal(J, -eps)
    assert W.so3_generators(2).dtype == torch.get_default_dtype()
    J[0, 0, 0] = 5.0  # a copy: the cache is not modified
    assert W.so3_generators(1, dtype=F64)[0, 0, 0] == 0


# --------------------------------------------------------------------------------- wigner_D


@pytest.mark.parametrize("dtype", [F32, F64])
def test_wigner_D_group_law_orthogonality(dtype):
    tol = TOL[dtype]
    g = _rotations(20, dtype, seed=1)
    h = _rotations(20, dtype, seed=2).flip(0)
    for l in [0, 1, 2, 3, 6, 9]:
        Dg, Dh, Dgh = W.wigner_D(l, g), W.wigner_D(l, h), W.wigner_D(l, g @ h)
        n = 2 * l + 1
        assert Dg.shape == (g.shape[0], n, n) and Dg.dtype == dtype
        assert (Dg @ Dh - Dgh).abs().max() < tol * (l + 1)
        assert (Dg.transpose(-1, -2) - W.wigner_D(l, g.transpose(-1, -2))).abs().max() < tol * (
            l + 1
        )
        assert (Dg @ Dg.transpose(-1, -2) - torch.eye(n, dtype=dtype)).abs().max() < tol * (l + 1)
        assert torch.allclose(
            W.wigner_D(l, torch.eye(3, dtype=dtype)), torch.eye(n, dtype=dtype), atol=tol
        )
    assert torch.equal(W.wigner_D(1, g), g)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10), st.integers(0, 2**31 - 1))
def test_wigner_D_group_law_hypothesis(l, seed):
    R = rot.rand_matrix(3, generator=_gen(seed), dtype=F64)
    D = W.wigner_D(l, R)
    assert (D[0] @ D[1] @ D[2] - W.wigner_D(l, R[0] @ R[1] @ R[2])).abs().max() < 1e-12
    # exp(t n.J) is D of the rotation by t about n
    n, t = R[0, 0], R[1, 0, 0] * 3
    # (batched: torch's unbatched matrix_exp is only ~1e-11 accurate for small arguments)
    A = t * torch.einsum("i,ijk->jk", n, W.so3_generators(l, dtype=F64))
    expm = torch.linalg.matrix_exp(A[None])[0]
    assert (W.wigner_D(l, rot.axis_angle_to_matrix(n, t)) - expm).abs().max() < 1e-12


def test_wigner_D_matches_matrix_exponential_up_to_l12():
    # including angle pi, tiny angles and gimbal lock
    R = _rotations(30, F64, seed=3)
    for l in range(13):
        err = (W.wigner_D(l, R) - _expm_reference(l, R)).abs().max().item()
        assert err < 1e-12, (l, err)


@pytest.fixture
def e3nn_o3():
    o3 = pytest.importorskip("e3nn.o3")
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)  # e3nn builds its generators in the default dtype
    yield o3
    torch.set_default_dtype(old)


def test_wigner_D_agrees_with_e3nn(e3nn_o3):
    # e3nn goes through Euler angles computed with acos, so compare on generic rotations
    R = rot.rand_matrix(5, generator=_gen(4), dtype=F64)
    for l in range(13):
        ref = e3nn_o3.Irrep(l, 1).D_from_matrix(R)
        err = (W.wigner_D(l, R) - ref).abs().max().item()
        assert err < 1e-12, (l, err)
    R32 = R.float()
    for l in [2, 6, 12]:
        ref = e3nn_o3.Irrep(l, 1).D_from_matrix(R)
        assert (W.wigner_D(l, R32).double() - ref).abs().max() < 1e-4


def test_wigner_D_rotates_spherical_harmonics(e3nn_o3):
    # the representation convention: Y(R x) = D(R) Y(x)
    x = torch.randn(10, 3, generator=_gen(5), dtype=F64)
    R = rot.rand_matrix(generator=_gen(6), dtype=F64)
    for l in [1, 2, 5]:
        Y = e3nn_o3.spherical_harmonics(l, x, normalize=True)
        YR = e3nn_o3.spherical_harmonics(l, x @ R.T, normalize=True)
        assert torch.allclose(YR, Y @ W.wigner_D(l, R).T, atol=1e-12)


def test_wigner_D_from_angles():
    a, b, c = rot.rand_angles(10, generator=_gen(7), dtype=F64)
    R = rot.angles_to_matrix(a, b, c)
    J = W.so3_generators(4, dtype=F64)
    expm = lambda t, k: torch.linalg.matrix_exp(t[:, None, None] * J[k])
    D = W.wigner_D_from_angles(4, a, b, c)
    assert torch.allclose(D, expm(a, 1) @ expm(b, 0) @ expm(c, 1), atol=1e-12)
    assert torch.allclose(D, W.wigner_D(4, R), atol=1e-12)
    assert W.wigner_D_from_angles(2, a[0], b[:3], c[:1]).shape == (3, 5, 5)  # broadcasting


def test_wigner_D_batch_shapes():
    R = rot.rand_matrix(2, 3, generator=_gen(), dtype=F64)
    assert W.wigner_D(3, R).shape == (2, 3, 7, 7)
    assert W.wigner_D(0, R).shape == (2, 3, 1, 1)
    assert W.wigner_D(2, R[0, 0]).shape == (5, 5)
    assert W.wigner_D(2, torch.zeros(0, 3, 3, dtype=F64)).shape == (0, 5, 5)


def test_wigner_D_errors():
    R = rot.rand_matrix(3, generator=_gen(), dtype=F64)
    with pytest.raises(ValueError, match=r"improper.*D_from_matrix"):
        W.wigner_D(2, torch.cat([R, -R]))
    with pytest.raises(ValueError, match="not orthogonal"):
        W.wigner_D(2, 1.01 * R)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3, 3\)"):
        W.wigner_D(2, torch.zeros(3, 3, 2))
    with pytest.raises(ValueError, match="non-negative int, got -1"):
        W.wigner_D(-1, R)
    with pytest.raises(TypeError, match="non-negative int"):
        W.wigner_D(1.5, R)
    with pytest.raises(TypeError, match="non-negative int"):
        W.so3_generators(True)


def test_wigner_D_gradients():
    # random rotations, the identity, angle pi about x and about (1, 1, 1), gimbal lock
    R = _rotations(2, F64)[[0, 1, 2, 3, 6, -1]]
    q = rot.matrix_to_quaternion(R).requires_grad_()
    f = lambda q: W.wigner_D(3, rot.quaternion_to_matrix(q))
    assert torch.autograd.gradcheck(f, (q,), fast_mode=True)
    f2 = lambda q: W.wigner_D(2, rot.quaternion_to_matrix(q))
    assert torch.autograd.gradgradcheck(f2, (q[[0, 2, 3]],), fast_mode=True)
    # gradient with respect to the matrix entries
    Rg = R.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda R: W._wigner_D(2, R), (Rg,), fast_mode=True)
    Rs = _rotations(2, F64).requires_grad_()
    (g,) = torch.autograd.grad(W.wigner_D(6, Rs).sin().sum(), Rs)
    assert torch.isfinite(g).all()


def test_wigner_D_compile_fullgraph():
    torch._dynamo.reset()
    f = torch.compile(W.wigner_D, fullgraph=True, backend="aot_eager")
    R = _rotations(5, F64, seed=8)
    assert (f(3, R) - W.wigner_D(3, R)).abs().max() < 1e-12


@pytest.mark.slow
def test_wigner_D_compile_inductor():
    torch._dynamo.reset()
    f = torch.compile(W.wigner_D, fullgraph=True)
    for dtype in [F32, F64]:
        R = _rotations(5, dtype, seed=9).requires_grad_()
        D = f(6, R)
        assert (D - W.wigner_D(6, R)).abs().max() < TOL[dtype]
        D.sum().backward()
        assert torch.isfinite(R.grad).all()


# -------------------------------------------------------------------------------- wigner_3j


def test_clebsch_gordan_exact_values():
    cg = W._clebsch_gordan
    assert cg(1, 1, 1, -1, 0, 0) == pytest.approx(1 / math.sqrt(3), rel=1e-15)
    assert cg(1, 0, 1, 0, 0, 0) == pytest.approx(-1 / math.sqrt(3), rel=1e-15)
    assert cg(1, 0, 1, 0, 2, 0) == pytest.approx(math.sqrt(2 / 3), rel=1e-15)
    assert cg(1, 0, 1, 0, 1, 0) == 0.0
    assert cg(1, 1, 1, 0, 1, 1) == pytest.approx(1 / math.sqrt(2), rel=1e-15)
    assert cg(2, 2, 1, -1, 2, 1) == pytest.approx(math.sqrt(1 / 3), rel=1e-15)
    assert cg(2, 1, 2, -1, 0, 0) == pytest.approx(-1 / math.sqrt(5), rel=1e-15)
    assert cg(3, 3, 2, 2, 5, 5) == 1.0  # stretched state
    assert cg(1, 1, 1, 1, 2, 1) == 0.0  # m1 + m2 != m3


def test_wigner_3j_known_tensors():
    C = W.wigner_3j(1, 1, 0, dtype=F64)
    assert torch.allclose(C[:, :, 0], torch.eye(3, dtype=F64) / math.sqrt(3), atol=1e-16)
    C = W.wigner_3j(1, 1, 1, dtype=F64)  # the cross product
    eps = torch.zeros(3, 3, 3, dtype=F64)
    for a, b, c in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        eps[a, b, c], eps[a, c, b] = 1.0, -1.0
    assert torch.allclose(C, eps / math.sqrt(6), atol=1e-16)
    C = W.wigner_3j(0, 2, 2, dtype=F64)
    assert torch.allclose(C[0], torch.eye(5, dtype=F64) / math.sqrt(5), atol=1e-16)


def test_wigner_3j_agrees_with_e3nn_exactly(e3nn_o3):
    # our sign rule reproduces e3nn's sign for every triple (so also "up to a global sign")
    for l1 in range(5):
        for l2 in range(5):
            for l3 in range(abs(l1 - l2), l1 + l2 + 1):
                C = W.wigner_3j(l1, l2, l3, dtype=F64)
                ref = e3nn_o3.wigner_3j(l1, l2, l3, dtype=F64)
                assert (C - ref).abs().max() < 1e-14, (l1, l2, l3)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize(
    "ls", [(1, 1, 1), (1, 2, 3), (2, 2, 2), (3, 3, 1), (2, 4, 5), (4, 4, 8), (7, 5, 9)]
)
def test_wigner_3j_invariance(ls, dtype):
    l1, l2, l3 = ls
    C = W.wigner_3j(l1, l2, l3, dtype=dtype)
    assert C.shape == (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1) and C.dtype == dtype
    assert abs(C.norm().item() - 1) < TOL[dtype]
    R = _rotations(4, dtype, seed=10)
    D1, D2, D3 = (W.wigner_D(l, R) for l in ls)
    CR = torch.einsum("nia,njb,nkc,abc->nijk", D1, D2, D3, C)
    assert (CR - C).abs().max() < TOL[dtype]


@pytest.mark.parametrize(
    "l1, l2", [(0, 0), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2), (1, 3), (3, 3), (4, 2)]
)
def test_wigner_3j_orthogonality_and_completeness(l1, l2):
    # sum_{ab} C^{l3}_{abc} C^{l3'}_{abc'} = delta_{l3 l3'} delta_{cc'} / (2 l3 + 1)
    # sum_{l3, c} (2 l3 + 1) C^{l3}_{abc} C^{l3}_{a'b'c} = delta_{aa'} delta_{bb'}
    l3s = range(abs(l1 - l2), l1 + l2 + 1)
    Cs = [W.wigner_3j(l1, l2, l3, dtype=F64) for l3 in l3s]
    for C, l3 in zip(Cs, l3s):
        for C2, l3b in zip(Cs, l3s):
            G = torch.einsum("abc,abd->cd", C, C2)
            expected = torch.eye(2 * l3 + 1, dtype=F64) / (2 * l3 + 1) if l3 == l3b else 0 * G
            assert (G - expected).abs().max() < 1e-14
    n = (2 * l1 + 1) * (2 * l2 + 1)
    full = torch.cat([C.reshape(n, -1) * math.sqrt(2 * l3 + 1) for C, l3 in zip(Cs, l3s)], 1)
    assert torch.allclose(full @ full.T, torch.eye(n, dtype=F64), atol=1e-14)


def test_wigner_3j_permutation_symmetry():
    # swapping the first two factors changes C by a sign (-1)^(l1 + l2 + l3)
    for l1, l2, l3 in [(1, 2, 2), (2, 3, 4), (1, 1, 1), (3, 3, 3), (2, 2, 3)]:
        C = W.wigner_3j(l1, l2, l3, dtype=F64)
        C2 = W.wigner_3j(l2, l1, l3, dtype=F64).transpose(0, 1)
        assert torch.allclose(C, (-1) ** (l1 + l2 + l3) * C2, atol=1e-15)


def test_wigner_3j_large_l_exact_and_fast():
    W._wigner_3j_f64.cache_clear()
    W._CONSTANTS.pop(("_wigner_3j_f64", 10, 10, 10), None)
    t = time.perf_counter()
    C = W.wigner_3j(10, 10, 10, dtype=F64)
    first = time.perf_counter() - t
    assert first < 5.0  # ~0.2 s on an idle core; generous for a loaded CI machine
    t = time.perf_counter()
    C_again = W.wigner_3j(10, 10, 10, dtype=F64)
    assert time.perf_counter() - t < 0.05 and torch.equal(C, C_again)
    # odd l1 + l2 + l3 vanishes only where the parity of m forces it; check invariance
    R = rot.rand_matrix(2, generator=_gen(11), dtype=F64)
    D = W.wigner_D(10, R)
    CR = torch.einsum("nia,njb,nkc,abc->nijk", D, D, D, C)
    assert (CR - C).abs().max() < 1e-12


def test_wigner_3j_and_generators_under_compile():
    W.wigner_3j(1, 2, 3)  # constants are built outside the compiled region (e.g. in __init__)
    W.so3_generators(2)

    def f(x):
        C = W.wigner_3j(1, 2, 3, dtype=x.dtype)
        return torch.einsum("i,ijk->jk", x, C) + W.so3_generators(2, dtype=x.dtype)[0, :, :1]

    torch._dynamo.reset()
    x = torch.randn(3, generator=_gen(), dtype=F64)
    assert torch.equal(torch.compile(f, fullgraph=True, backend="eager")(x), f(x))


def test_wigner_3j_returns_copies_and_dtypes():
    C = W.wigner_3j(1, 2, 3, dtype=F64)
    C.zero_()
    assert W.wigner_3j(1, 2, 3, dtype=F64).norm() > 0.99
    assert W.wigner_3j(1, 2, 3).dtype == torch.get_default_dtype()
    assert W.wigner_3j(1, 2, 3, dtype=F32, device="cpu").dtype == F32


def test_wigner_3j_errors():
    with pytest.raises(ValueError, match=r"wigner_3j\(1, 1, 5\) violates the triangle rule"):
        W.wigner_3j(1, 1, 5)
    with pytest.raises(ValueError, match=r"wigner_3j\(4, 1, 2\) violates the triangle rule"):
        W.wigner_3j(4, 1, 2)
    with pytest.raises(ValueError, match="l2 must be a non-negative int, got -1"):
        W.wigner_3j(1, -1, 1)
    with pytest.raises(TypeError, match="l3 must be a non-negative int"):
        W.wigner_3j(1, 1, 1.0)
    assert W.wigner_3j(1, torch.tensor(1).item(), 2).shape == (3, 3, 5)
