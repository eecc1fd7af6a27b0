import importlib
import math

import numpy as np
import pytest
import torch

from equidyn import o3
from equidyn.o3 import SphericalHarmonics, spherical_harmonics

DTYPES = [torch.float64, torch.float32]
TOL = {torch.float64: 1e-10, torch.float32: 1e-4}
NORMALIZATIONS = ["component", "norm", "integral"]


def _rotations(n: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    q = q * torch.det(q)[:, None, None]  # proper
    return q.to(dtype)


def _wigner_D(l: int, R: torch.Tensor) -> torch.Tensor:
    try:
        from equidyn.o3.wigner import wigner_D
    except ImportError:  # pragma: no cover - the o3 core ships wigner.py
        e3nn_o3 = pytest.importorskip("e3nn.o3")
        return e3nn_o3.Irrep(l, 1).D_from_matrix(R)
    return wigner_D(l, R)


def _vectors(n: int, dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, 3, generator=g, dtype=torch.float64) * 2.0).to(dtype)


def _blocks(y: torch.Tensor, ls: list[int]) -> list[torch.Tensor]:
    out, i = [], 0
    for l in ls:
        out.append(y[..., i : i + 2 * l + 1])
        i += 2 * l + 1
    return out


# ----------------------------------------------------------------------------- reference values
@pytest.mark.parametrize("normalization", NORMALIZATIONS)
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_e3nn(normalization, normalize):
    e3nn_o3 = pytest.importorskip("e3nn.o3")
    ls = list(range(13))
    x = _vectors(200, torch.float64)
    ours = spherical_harmonics(ls, x, normalize, normalization)
    ref = e3nn_o3.spherical_harmonics(ls, x, normalize, normalization)
    assert ours.shape == ref.shape == (200, 169)
    scale = ref.abs().amax(0).clamp(min=1.0)
    assert ((ours - ref).abs() / scale).max() < 1e-11
    ours32 = spherical_harmonics(ls, x.float(), normalize, normalization)
    assert ours32.dtype == torch.float32
    assert ((ours32.double() - ref).abs() / scale).max() < 1e-4


def test_matches_e3nn_selection_and_irreps():
    e3nn_o3 = pytest.importorskip("e3nn.o3")
    x = _vectors(20, torch.float64)
    for ls in ([3, 1, 3], "1x2e+2x0e+1x5o", [0], 4):
        ours = spherical_harmonics(ls, x, True, "integral")
        ref = e3nn_o3.spherical_harmonics(ls, x, True, "integral")
        torch.testing.assert_close(ours, ref, atol=1e-12, rtol=1e-12)


def test_known_values():
    # y is the polar axis: Y^1 = sqrt(3) (x, y, z) on the unit sphere (component)
    y = spherical_harmonics(
        [0, 1],
        torch.tensor([[0.6, 0.0, 0.8]], dtype=torch.float64),
        normalize=True,
        normalization="component",
    )
    torch.testing.assert_close(
        y[0], torch.tensor([1.0, 0.6 * 3**0.5, 0.0, 0.8 * 3**0.5], dtype=torch.float64)
    )
    # on the polar axis only m = 0 survives: Y_l^0 = sqrt(2l+1)
    y = spherical_harmonics(
        list(range(9)),
        torch.tensor([0.0, 3.0, 0.0], dtype=torch.float64),
        normalize=True,
        normalization="component",
    )
    for l, block in enumerate(_blocks(y, list(range(9)))):
        expected = torch.zeros(2 * l + 1, dtype=torch.float64)
        expected[l] = math.sqrt(2 * l + 1)
        torch.testing.assert_close(block, expected, atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- symmetries
@pytest.mark.parametrize("dtype", DTYPES)
def test_rotation_equivariance(dtype):
    ls = list(range(9))
    R = _rotations(5, torch.float64)
    x = _vectors(7, torch.float64)
    y = spherical_harmonics(
        ls, x.to(dtype), normalize=True, normalization="component"
    ).double()  # [7, dim]
    y_rot = spherical_harmonics(
        ls, torch.einsum("rij,nj->rni", R, x).to(dtype), normalize=True, normalization="component"
    ).double()
    for l, block, block_rot in zip(ls, _blocks(y, ls), _blocks(y_rot, ls)):
        D = _wigner_D(l, R)  # [5, 2l+1, 2l+1]
        expected = torch.einsum("rij,nj->rni", D, block)
        err = (block_rot - expected).abs().max().item()
        assert err < TOL[dtype] * (2 * l + 1), (l, err)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize", [True, False])
def test_parity_and_reflections(dtype, normalize):
    ls = list(range(11))
    x = _vectors(30, dtype)
    y, y_neg = (
        spherical_harmonics(ls, x, normalize, normalization="component"),
        spherical_harmonics(ls, -x, normalize, normalization="component"),
    )
    for l, a, b in zip(ls, _blocks(y, ls), _blocks(y_neg, ls)):
        torch.testing.assert_close(b, (-1) ** l * a, atol=TOL[dtype] * a.abs().max(), rtol=0)
    # improper R = -R': Y(R x) = (-1)^l D(R') Y(x), i.e. Irreps.D_from_matrix with p = (-1)^l
    irreps = o3.Irreps([(1, (l, (-1) ** l)) for l in ls])
    R = -_rotations(3, torch.float64, seed=3)
    y64 = spherical_harmonics(ls, x.double(), normalize, normalization="component")
    y_ref = torch.einsum("rij,nj->rni", irreps.D_from_matrix(R), y64)
    y_mir = spherical_harmonics(
        ls,
        torch.einsum("rij,nj->rni", R, x.double()).to(dtype),
        normalize,
        normalization="component",
    )
    scale = y64.abs().max()
    assert (y_mir.double() - y_ref).abs().max() < TOL[dtype] * 20 * scale


# ----------------------------------------------------------------------------- normalizations
@pytest.mark.parametrize("dtype", DTYPES)
def test_component_and_norm_per_point(dtype):
    ls = list(range(13))
    x = _vectors(100, dtype)
    comp = spherical_harmonics(ls, x, normalization="component", normalize=True)
    norm = spherical_harmonics(ls, x, normalization="norm", normalize=True)
    for l, c, n in zip(ls, _blocks(comp, ls), _blocks(norm, ls)):
        sq = c.double().pow(2).sum(-1)
        assert (sq - (2 * l + 1)).abs().max() < 50 * TOL[dtype] * (2 * l + 1)
        assert (n.double().pow(2).sum(-1) - 1).abs().max() < 50 * TOL[dtype]
        torch.testing.assert_close(n * math.sqrt(2 * l + 1), c, atol=20 * TOL[dtype], rtol=0)


def test_integral_orthonormal_by_quadrature():
    # Gauss-Legendre in cos(theta) (13 nodes) x 26 uniform phi: exact for the products
    # Y_l^m Y_l'^m' with l, l' <= 12 (degree <= 24). Tolerance: 1e-12, float64 rounding.
    lmax = 12
    t, w = np.polynomial.legendre.leggauss(lmax + 1)
    n_phi = 2 * lmax + 2
    phi = 2 * np.pi * np.arange(n_phi) / n_phi
    ct = torch.tensor(t)[:, None].expand(-1, n_phi)
    st = (1 - ct**2).sqrt()
    ph = torch.tensor(phi)[None, :].expand(lmax + 1, -1)
    # any axis convention: the quadrature is exact on the whole sphere
    x = torch.stack([st * torch.cos(ph), st * torch.sin(ph), ct], dim=-1).reshape(-1, 3)
    weights = (torch.tensor(w)[:, None] * (2 * np.pi / n_phi)).expand(-1, n_phi).reshape(-1)
    y = spherical_harmonics(
        list(range(lmax + 1)), x, normalization="integral", normalize=True
    )  # [q, 169]
    gram = torch.einsum("q,qi,qj->ij", weights, y, y)
    torch.testing.assert_close(gram, torch.eye(169, dtype=torch.float64), atol=1e-12, rtol=0)
    # component = sqrt(4 pi) integral
    comp = spherical_harmonics(list(range(lmax + 1)), x, normalization="component", normalize=True)
    torch.testing.assert_close(comp, y * math.sqrt(4 * math.pi), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unnormalized_is_homogeneous(dtype):
    ls = list(range(9))
    x = _vectors(20, dtype)
    y = spherical_harmonics(ls, x, normalize=False, normalization="component")
    y_hat = spherical_harmonics(ls, x, normalize=True, normalization="component")
    r = x.double().norm(dim=-1, keepdim=True)
    for c in (2.5, -0.5):
        y_c = spherical_harmonics(ls, c * x, normalize=False, normalization="component")
        for l, a, b, h in zip(ls, _blocks(y, ls), _blocks(y_c, ls), _blocks(y_hat, ls)):
            scale = a.double().abs().max() * abs(c) ** l
            assert (b.double() - c**l * a.double()).abs().max() <= 10 * TOL[dtype] * scale
            # and Y(x) = |x|^l Y(x / |x|)
            ref = r**l * h.double()
            assert (a.double() - ref).abs().max() <= 10 * TOL[dtype] * ref.abs().max()


def test_high_l_stable():
    x = _vectors(50, torch.float64)
    y = spherical_harmonics([20, 40], x, normalize=True, normalization="component")
    a, b = _blocks(y, [20, 40])
    torch.testing.assert_close(a.pow(2).sum(-1), torch.full((50,), 41.0, dtype=torch.float64))
    torch.testing.assert_close(b.pow(2).sum(-1), torch.full((50,), 81.0, dtype=torch.float64))
    # float32: the scaled recurrence stays far from underflow
    y32 = spherical_harmonics(40, x.float(), normalize=True, normalization="component")
    assert torch.isfinite(y32).all()
    assert (y32.double().pow(2).sum(-1) - 81.0).abs().max() < 1e-3 * 81


# ----------------------------------------------------------------------------- derivatives
SPECIAL = [
    [0.0, 0.0, 0.0],
    [1.0, 0.0, 0.0],
    [-1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
    [0.0, -1.0, 0.0],
    [0.0, 0.0, 1.0],
    [0.0, 0.0, -1.0],
    [0.0, 1e-30, 0.0],
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize", [True, False])
def test_finite_at_zero_and_on_axes(dtype, normalize):
    ls = list(range(7))
    x = torch.tensor(SPECIAL, dtype=dtype) * 2.0
    x.requires_grad_(True)
    y = spherical_harmonics(ls, x, normalize, normalization="component")
    assert torch.isfinite(y).all()
    weights = torch.linspace(-1.0, 1.0, y.shape[-1], dtype=dtype)
    (grad,) = torch.autograd.grad((y * weights).sum(), x, create_graph=True)
    assert torch.isfinite(grad).all()
    (grad2,) = torch.autograd.grad((grad * grad).sum(), x)
    assert torch.isfinite(grad2).all()
    # the zero vector: Y^0 = 1, Y^{l>=1} = 0
    assert y[0, 0] == 1.0 and (y[0, 1:] == 0).all()
    if normalize:
        # on an axis the gradient is tangent (Y depends on the direction only)
        radial = (grad[1:7] * x[1:7]).sum(-1)
        assert radial.abs().max() < 100 * TOL[dtype]


def test_gradcheck_and_gradgradcheck():
    x = _vectors(2, torch.float64).requires_grad_(True)
    for ls, normalize, normalization in [
        ([0, 1, 2, 3, 4], True, "component"),
        ([3, 1, 3], False, "integral"),
    ]:
        fn = lambda v: spherical_harmonics(ls, v, normalize, normalization)
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))
    # on an axis and at the zero vector (unnormalized: a polynomial, smooth there)
    x = torch.tensor([[0.0, 0.0, 1.3], [0.0, 0.0, 0.0]], dtype=torch.float64)
    x.requires_grad_(True)
    fn = lambda v: spherical_harmonics([2, 3], v, False, "norm")
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


def test_gradient_matches_e3nn():
    e3nn_o3 = pytest.importorskip("e3nn.o3")
    ls = list(range(9))
    x = _vectors(30, torch.float64).requires_grad_(True)
    w = torch.randn(30, 81, dtype=torch.float64)
    (ours,) = torch.autograd.grad(
        (spherical_harmonics(ls, x, normalize=True, normalization="component") * w).sum(), x
    )
    ref = e3nn_o3.spherical_harmonics(ls, x, True, "component")
    (theirs,) = torch.autograd.grad((ref * w).sum(), x)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=1e-10)


# ----------------------------------------------------------------------------- compile, module
def test_compile_matches_eager():
    module = SphericalHarmonics([0, 1, 2, 3], normalize=True, normalization="component")
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    x = _vectors(16, torch.float32).requires_grad_(True)
    y_eager = module(x)
    y_compiled = compiled(x)
    torch.testing.assert_close(y_compiled, y_eager, atol=1e-6, rtol=1e-6)
    w = torch.randn_like(y_eager)
    (g_eager,) = torch.autograd.grad((y_eager * w).sum(), x)
    (g_compiled,) = torch.autograd.grad((y_compiled * w).sum(), x)
    torch.testing.assert_close(g_compiled, g_eager, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compile_before_any_eager_call(monkeypatch, dtype):
    """The constants are built, and moved to the input's dtype, for the first time while
    torch.compile traces forward and backward (a model compiled before its first eager call):
    nothing made inside the traced autograd.Function may escape into the caches."""
    sh_module = importlib.import_module("equidyn.o3.spherical_harmonics")
    monkeypatch.setattr(sh_module, "_COEFFICIENTS", {})  # as in a fresh process
    torch._dynamo.reset()

    def energy(v: torch.Tensor) -> torch.Tensor:
        y = spherical_harmonics(3, v, normalize=True, normalization="component")
        return (y * y.detach().roll(1, 0)).sum()

    x = _vectors(16, dtype).requires_grad_(True)
    e_c = torch.compile(energy, fullgraph=True, backend="aot_eager")(x)
    (g_c,) = torch.autograd.grad(e_c, x)
    assert sh_module._COEFFICIENTS  # built during the trace, then cached
    e = energy(x)
    (g,) = torch.autograd.grad(e, x)
    torch.testing.assert_close(e_c, e.detach())
    torch.testing.assert_close(g_c, g, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_compile_inductor_matches_eager():
    fn = torch.compile(
        lambda v: spherical_harmonics(6, v, normalize=True, normalization="component"),
        fullgraph=True,
    )
    x = _vectors(64, torch.float32)
    torch.testing.assert_close(
        fn(x),
        spherical_harmonics(6, x, normalize=True, normalization="component"),
        atol=1e-5,
        rtol=1e-5,
    )


def test_module_and_shapes():
    sh = SphericalHarmonics("1x0e+1x1o+1x2e", normalization="norm", normalize=True)
    assert sh.irreps_out == o3.Irreps("1x0e+1x1o+1x2e")
    assert SphericalHarmonics(
        [0, 1, 2], normalize=True, normalization="component"
    ).irreps_out == o3.Irreps.spherical_harmonics(2)
    assert SphericalHarmonics(3, normalize=True, normalization="component").irreps_out == o3.Irreps(
        "1x3o"
    )
    x = _vectors(24, torch.float64).reshape(2, 3, 4, 3)
    y = sh(x)
    assert y.shape == (2, 3, 4, 9)
    torch.testing.assert_close(
        y, spherical_harmonics([0, 1, 2], x, normalization="norm", normalize=True)
    )
    assert spherical_harmonics(
        2, torch.zeros(0, 3), normalize=True, normalization="component"
    ).shape == (0, 5)
    assert spherical_harmonics(
        [1, 1], torch.randn(3), normalize=True, normalization="component"
    ).shape == (6,)
    y32 = sh.to(torch.float64)(x.float())
    assert y32.dtype == torch.float32


def test_bad_input():
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        spherical_harmonics(2, torch.zeros(5, 2), normalize=True, normalization="component")
    with pytest.raises(ValueError, match="shape"):
        spherical_harmonics(2, torch.tensor(1.0), normalize=True, normalization="component")
    with pytest.raises(ValueError, match="1x1e"):
        spherical_harmonics(
            "1x0e+1x1e", torch.zeros(5, 3), normalize=True, normalization="component"
        )
    with pytest.raises(ValueError, match="parity"):
        SphericalHarmonics("2o", normalize=True, normalization="component")
    with pytest.raises(ValueError, match="normalization"):
        spherical_harmonics(2, torch.zeros(5, 3), normalization="unit", normalize=True)
    with pytest.raises(ValueError, match="-1"):
        spherical_harmonics([1, -1], torch.zeros(5, 3), normalize=True, normalization="component")
    with pytest.raises(TypeError):
        spherical_harmonics(2, [[0.0, 0.0, 1.0]], normalize=True, normalization="component")
    with pytest.raises(TypeError, match="floating"):
        spherical_harmonics(
            2, torch.zeros(5, 3, dtype=torch.int64), normalize=True, normalization="component"
        )


@pytest.mark.parametrize("n", [0, 1, 2])
def test_input_is_never_modified(n):
    # (n, 3) with n <= 1 transposes to a contiguous view: normalising it in place once
    # overwrote the caller's vectors and broke autograd for single-edge graphs.
    x = torch.randn(n, 3, dtype=torch.float64, requires_grad=True)
    e = x * 2.0
    before = e.detach().clone()
    r = e.norm(dim=-1)
    y = o3.spherical_harmonics([0, 1, 2], e, normalize=True, normalization="component")
    assert torch.equal(e.detach(), before)
    (y.sum() + r.sum()).backward()
    assert torch.isfinite(x.grad).all()


def test_defaults_are_e3nns():
    """Ported e3nn code gives the same numbers: normalization defaults to "integral" and
    normalize is required (issue 12: the defaults differed by sqrt(4 pi) with no error)."""
    e3nn_o3 = pytest.importorskip("e3nn.o3")
    x = torch.randn(20, 3, dtype=torch.float64)
    torch.testing.assert_close(
        spherical_harmonics([0, 1, 2], x, True), e3nn_o3.spherical_harmonics([0, 1, 2], x, True)
    )
    module = SphericalHarmonics([0, 1, 2], True)
    assert module.normalization == "integral"
    torch.testing.assert_close(module(x), e3nn_o3.spherical_harmonics([0, 1, 2], x, True))
    with pytest.raises(TypeError, match="normalize"):
        spherical_harmonics(2, x)
    with pytest.raises(TypeError, match="normalize must be True or False"):
        spherical_harmonics(2, x, "yes")


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_vectors_raise(bad):
    x = torch.zeros(4, 3)
    x[2, 0] = bad
    with pytest.raises(ValueError, match=r"x must be finite: vector at index \[2\]"):
        spherical_harmonics([0, 1], x, True)
