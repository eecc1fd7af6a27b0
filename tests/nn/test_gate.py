import pytest
import torch
from nn_checks import check_equivariance, second_moments

from equidyn.nn import Gate, ScalarActivation
from equidyn.o3 import Irreps

silu, tanh, sigmoid = torch.nn.functional.silu, torch.tanh, torch.sigmoid


def test_irreps_out_and_parities():
    gate = Gate("4x0e + 2x0o", [silu, tanh], "2x0e + 1x0o", [sigmoid, tanh], "2x1o + 1x2e")
    assert gate.irreps_in == Irreps("4x0e + 2x0o + 2x0e + 1x0o + 2x1o + 1x2e")
    # tanh is odd: 0o stays 0o, and the odd gate flips 2e -> 2o
    assert gate.irreps_out == Irreps("4x0e + 2x0o + 2x1o + 1x2o")
    # an even activation on a pseudoscalar gives a scalar
    gate = Gate("", [], "1x0o", torch.abs, "1x1o")
    assert gate.irreps_out == Irreps("1x1o")
    # gates of mixed parity split a gated block
    gate = Gate("", [], "1x0e + 1x0o", tanh, "2x1o")
    assert gate.irreps_out == Irreps("1x1o + 1x1e")


def test_values():
    gate = Gate("1x0e", torch.relu, "1x0e", torch.sigmoid, "1x1o")
    x = torch.tensor([[-1.0, 0.3, 1.0, 2.0, 3.0]], dtype=torch.float64)
    y = gate(x)
    c_relu = gate.act_scalars.acts[0].cst
    c_sig = gate.act_gates.acts[0].cst
    expected = torch.cat(
        [torch.zeros(1, 1), torch.sigmoid(torch.tensor(0.3)) * c_sig * x[:, 2:]], -1
    )
    torch.testing.assert_close(y, expected.double())
    assert c_relu == pytest.approx(2**0.5, rel=1e-9)


@pytest.mark.parametrize(
    "args",
    [
        (
            "4x0e + 2x0o",
            [silu, tanh],
            "2x0e + 1x0o + 1x0e",
            [sigmoid, tanh, sigmoid],
            "2x1o + 1x2e + 1x3o",
        ),
        ("3x0e", silu, "", sigmoid, ""),
        ("", silu, "3x0o", torch.abs, "1x1e + 2x2o"),
    ],
)
def test_equivariance(args):
    check_equivariance(Gate(*args))


def test_unit_second_moment_at_init():
    gate = Gate("8x0e + 4x0o", [silu, tanh], "4x0e + 2x0o", [sigmoid, tanh], "4x1o + 2x2e")
    m2 = second_moments(gate, n=40_000)
    torch.testing.assert_close(m2, torch.ones_like(m2), atol=0.05, rtol=0)


def test_gradients_finite_at_zero():
    gate = Gate("2x0e", silu, "2x0e", sigmoid, "1x1o + 1x2e").double()
    x = torch.zeros(3, gate.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(gate(x).pow(2).sum() + gate(x).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()
    assert torch.autograd.gradcheck(
        gate, (torch.randn(2, gate.irreps_in.dim, dtype=torch.float64, requires_grad=True),)
    )


def test_errors():
    with pytest.raises(ValueError, match="one gate per gated irrep"):
        Gate("1x0e", silu, "2x0e", sigmoid, "1x1o")
    with pytest.raises(ValueError, match="scalars"):
        Gate("1x1o", silu, "", sigmoid, "")
    with pytest.raises(ValueError, match="neither even nor odd"):
        Gate("1x0o", silu, "", sigmoid, "")
    with pytest.raises(ValueError, match="2 activations for 1 blocks"):
        Gate("1x0e", [silu, silu], "", sigmoid, "")
    gate = Gate("1x0e", silu, "1x0e", sigmoid, "1x1o")
    with pytest.raises(ValueError, match=r"shape \(2, 4\).*\(\.\.\., 5\).*1x0e\+1x0e\+1x1o"):
        gate(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="scalars only"):
        ScalarActivation("1x1o", silu)


def test_batch_shapes_and_dtype_follow_to():
    gate = Gate("2x0e", silu, "1x0e", sigmoid, "1x1o")
    x = torch.randn(2, 3, gate.irreps_in.dim)
    assert gate(x).shape == (2, 3, gate.irreps_out.dim)
    gate = gate.to(torch.float64)
    assert gate(x.double()).dtype == torch.float64
    assert gate(torch.randn(0, gate.irreps_in.dim)).shape == (0, gate.irreps_out.dim)
