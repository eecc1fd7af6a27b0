import math

import pytest
import torch

from equidyn.nn import CosineCutoff, PolynomialCutoff


def _derivatives(f, r0: float, order: int) -> list[float]:
    """f(r0), f'(r0), ..., f^(order)(r0) by repeated autograd (float64)."""
    r = torch.tensor(r0, dtype=torch.float64, requires_grad=True)
    y = f(r)
    out = [y.item()]
    for _ in range(order):
        (y,) = torch.autograd.grad(y, r, create_graph=True)
        out.append(y.item())
    return out


@pytest.mark.parametrize("p", [2, 5, 6, 9])
def test_polynomial_cutoff_smooth_at_r_max(p):
    r_max = 2.5
    cut = PolynomialCutoff(r_max, p)
    # approaching r_max from below: value, 1st and 2nd derivatives vanish (C^2 envelope)
    left = _derivatives(cut, r_max * (1 - 1e-9), 3)
    assert max(abs(v) for v in left[:3]) < 1e-6
    # the third derivative jumps by -p(p+1)(p+2)/r_max^3: it is not C^3 (documented)
    assert left[3] == pytest.approx(-p * (p + 1) * (p + 2) / r_max**3, rel=1e-5)
    # identically 0 beyond, and its derivatives too
    assert _derivatives(cut, r_max * 1.1, 3) == [0.0, 0.0, 0.0, 0.0]
    # cross-check the vanishing derivatives with finite differences on the grid
    h = 1e-4
    r = torch.tensor([r_max - 2 * h, r_max - h, r_max, r_max + h], dtype=torch.float64)
    f = cut(r)
    assert abs((f[2] - f[1]).item() / h) < 1e-6
    # f'' ~ h f''' just left of r_max
    assert abs((f[2] - 2 * f[1] + f[0]).item() / h**2) < 2 * h * p * (p + 1) * (p + 2) / r_max**3


@pytest.mark.parametrize("p", [3, 6])
def test_polynomial_cutoff_flat_at_origin_and_monotone(p):
    cut = PolynomialCutoff(1.0, p)
    d0 = _derivatives(cut, 0.0, p)
    assert d0[0] == 1.0
    assert all(abs(v) < 1e-12 for v in d0[1:p])  # f^(k)(0) = 0 for 1 <= k < p
    assert d0[p] != 0.0
    r = torch.linspace(0, 1, 1001, dtype=torch.float64)
    f = cut(r)
    assert (f.diff() <= 1e-15).all() and f.min() >= 0 and f.max() <= 1


def test_polynomial_cutoff_matches_formula():
    p, r_max = 6, 5.0
    r = torch.linspace(0, 6, 61, dtype=torch.float64)
    x = r / r_max
    ref = (
        1
        - (p + 1) * (p + 2) / 2 * x**p
        + p * (p + 2) * x ** (p + 1)
        - p * (p + 1) / 2 * x ** (p + 2)
    ) * (x < 1)
    torch.testing.assert_close(PolynomialCutoff(r_max, p)(r), ref)


def test_cosine_cutoff():
    cut = CosineCutoff(3.0)
    left = _derivatives(cut, 3.0 * (1 - 1e-9), 2)
    assert abs(left[0]) < 1e-12 and abs(left[1]) < 1e-8
    assert left[2] == pytest.approx(0.5 * (math.pi / 3.0) ** 2, rel=1e-6)  # C^1 only
    assert _derivatives(cut, 4.0, 1) == [0.0, 0.0]
    assert _derivatives(cut, 0.0, 1) == [1.0, 0.0]


def test_dtypes_and_errors():
    for dtype in (torch.float32, torch.float64):
        r = torch.rand(3, 4, dtype=dtype) * 6
        assert PolynomialCutoff(5.0)(r).dtype == dtype and CosineCutoff(5.0)(r).shape == (3, 4)
    with pytest.raises(ValueError, match="r_max"):
        PolynomialCutoff(0.0)
    with pytest.raises(ValueError, match="p must be"):
        PolynomialCutoff(1.0, p=1)
    with pytest.raises(TypeError, match="floating-point"):
        CosineCutoff(1.0)(torch.tensor([1, 2]))
