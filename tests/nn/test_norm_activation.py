import pytest
import torch
from nn_checks import check_equivariance, second_moments

from equidyn.nn import NormActivation

IRREPS = "3x0e + 2x0o + 2x1o + 1x1e + 2x2e + 1x3o"


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("bias", [False, True])
def test_equivariance(normalize, bias):
    act = NormActivation(IRREPS, torch.sigmoid, normalize=normalize, bias=bias)
    if bias:
        with torch.no_grad():
            act.bias.normal_()
    check_equivariance(act)


def test_values():
    act = NormActivation("1x1o", torch.sigmoid, normalize=True).double()
    x = torch.tensor([[3.0, 0.0, 4.0]], dtype=torch.float64)
    c = act._csts[0]
    torch.testing.assert_close(act(x), c * torch.sigmoid(torch.tensor(5.0)).double() * x / 5)
    act = NormActivation("1x1o", torch.sigmoid, normalize=False).double()
    c = act._csts[0]
    torch.testing.assert_close(act(x), c * torch.sigmoid(torch.tensor(5.0)).double() * x)


@pytest.mark.parametrize("normalize", [True, False])
def test_unit_second_moment_at_init(normalize):
    act = NormActivation("4x0e + 4x1o + 4x2e + 2x3o", torch.sigmoid, normalize=normalize)
    m2 = second_moments(act, n=40_000)
    torch.testing.assert_close(m2, torch.ones_like(m2), atol=0.05, rtol=0)


@pytest.mark.parametrize("normalize", [True, False])
def test_gradients_finite_at_zero(normalize):
    act = NormActivation("2x0e + 1x1o + 1x2e", torch.tanh, normalize=normalize).double()
    x = torch.zeros(2, act.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    y = act(x)
    assert torch.isfinite(y).all() and y.abs().max() == 0
    (g,) = torch.autograd.grad((y * torch.arange(y.shape[-1])).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.pow(2).sum(), x)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()
    x = torch.randn(2, act.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(act, (x,))
    assert torch.autograd.gradgradcheck(act, (x,))


def test_errors():
    with pytest.raises(TypeError, match="callable"):
        NormActivation("1x1o", "sigmoid")
    with pytest.raises(ValueError, match="epsilon"):
        NormActivation("1x1o", torch.sigmoid, epsilon=0.0)
    act = NormActivation("2x1o", torch.sigmoid)
    with pytest.raises(ValueError, match=r"shape \(3, 5\).*\(\.\.\., 6\).*2x1o"):
        act(torch.zeros(3, 5))
