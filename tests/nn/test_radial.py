import math

import pytest
import torch

from equidyn.nn import BesselBasis, GaussianBasis
from equidyn.nn.radial import sinc


def test_bessel_values_match_formula():
    basis = BesselBasis(r_max=4.0, num_basis=6).double()
    r = torch.linspace(0.1, 5.0, 50, dtype=torch.float64)
    n = torch.arange(1, 7, dtype=torch.float64)
    expected = math.sqrt(2 / 4.0) * torch.sin(n * math.pi * r[:, None] / 4.0) / r[:, None]
    torch.testing.assert_close(basis(r), expected, rtol=1e-12, atol=1e-12)


def test_bessel_orthonormal_on_ball():
    """int_0^r_max b_n b_m r^2 dr = delta_nm."""
    basis = BesselBasis(r_max=3.0, num_basis=5).double()
    r = torch.linspace(0, 3.0, 20001, dtype=torch.float64)
    b = basis(r)  # [n, 5]
    gram = torch.trapezoid(b[:, :, None] * b[:, None, :] * r[:, None, None] ** 2, r, dim=0)
    torch.testing.assert_close(gram, torch.eye(5, dtype=torch.float64), atol=1e-6, rtol=0)


def test_bessel_finite_at_zero_with_derivatives():
    basis = BesselBasis(r_max=5.0, num_basis=8).double()
    r = torch.tensor([0.0, 1e-9, 1e-3, 0.5], dtype=torch.float64, requires_grad=True)
    b = basis(r)
    limit = math.sqrt(2 / 5.0) * torch.arange(1, 9, dtype=torch.float64) * math.pi / 5.0
    torch.testing.assert_close(b[0], limit)
    torch.testing.assert_close(b[1], limit)
    (g,) = torch.autograd.grad(b.sum(), r, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), r)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()
    assert g[0].item() == pytest.approx(0.0, abs=1e-12)  # even in r
    for dtype in (torch.float32, torch.float64):
        out = BesselBasis(5.0).to(dtype)(torch.zeros(3, dtype=dtype))
        assert out.dtype == dtype and torch.isfinite(out).all()


def test_sinc_series_matches_closed_form_and_derivatives():
    a = torch.tensor([-0.02, -0.0099, -1e-5, 1e-5, 0.0099, 0.02, 1.0], dtype=torch.float64)
    torch.testing.assert_close(sinc(a), torch.sin(a) / a, rtol=1e-14, atol=0)
    a = a.clone().requires_grad_()
    assert torch.autograd.gradcheck(sinc, (a,))
    assert torch.autograd.gradgradcheck(sinc, (a,))


def test_bessel_trainable():
    basis = BesselBasis(r_max=5.0, num_basis=3, trainable=True)
    assert [n for n, _ in basis.named_parameters()] == ["freqs"]
    basis(torch.rand(4) * 5).sum().backward()
    assert basis.freqs.grad is not None and torch.isfinite(basis.freqs.grad).all()


def test_gaussian():
    basis = GaussianBasis(1.0, 3.0, num_basis=3).double()
    r = torch.tensor([2.0, 2.5], dtype=torch.float64)
    centres = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(basis(r), torch.exp(-0.5 * (r[:, None] - centres) ** 2))
    assert GaussianBasis(0.0, 1.0, 4, width=0.1)(torch.rand(2, 3)).shape == (2, 3, 4)


def test_errors():
    with pytest.raises(ValueError, match="r_max"):
        BesselBasis(r_max=-1.0)
    with pytest.raises(ValueError, match="num_basis"):
        BesselBasis(r_max=1.0, num_basis=0)
    with pytest.raises(ValueError, match="r_max > r_min"):
        GaussianBasis(2.0, 1.0, 4)
    with pytest.raises(TypeError, match="floating-point"):
        BesselBasis(1.0)(torch.tensor([1, 2]))
