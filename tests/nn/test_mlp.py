import pytest
import torch

from equidyn.nn import MLP


def test_unit_variance_at_init_over_seeds():
    """For N(0, 1) inputs the outputs have unit second moment (over inputs and initialisations).

    For one initialisation an output has a random offset (the activations have a nonzero mean)
    and a variance below one; the two add up to one on average.
    """
    x = torch.randn(2000, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for act in (torch.nn.functional.silu, torch.tanh, torch.relu):
        variances = []
        for seed in range(30):
            torch.manual_seed(seed)
            mlp = MLP([16, 64, 64, 64, 8], act).double()
            with torch.no_grad():
                variances.append(mlp(x).pow(2).mean().item())
        mean_var = sum(variances) / len(variances)
        assert mean_var == pytest.approx(1.0, abs=0.15), (act, mean_var)


def test_structure_bias_and_linear():
    mlp = MLP([3, 5, 2], torch.tanh, bias=True)
    assert [tuple(w.shape) for w in mlp.weights] == [(3, 5), (5, 2)]
    assert [tuple(b.shape) for b in mlp.biases] == [(5,), (2,)]
    assert str(mlp.irreps_in) == "3x0e" and str(mlp.irreps_out) == "2x0e"
    lin = MLP([3, 4], None).double()
    x = torch.randn(7, 3, dtype=torch.float64)
    torch.testing.assert_close(lin(x), x @ lin.weights[0] / 3**0.5)
    assert MLP([3, 4, 2], torch.tanh)(torch.randn(2, 5, 3)).shape == (2, 5, 2)


def test_gradcheck_and_double_backward():
    mlp = MLP([2, 8, 1], torch.nn.functional.silu, bias=True).double()
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mlp, (x,))
    assert torch.autograd.gradgradcheck(mlp, (x,))


def test_errors():
    for dims in ([3], [3, 0], [3, 2.5], "34"):
        with pytest.raises(ValueError, match="dims"):
            MLP(dims, torch.tanh)
    with pytest.raises(ValueError, match=r"shape \(2, 4\).*\(\.\.\., 3\)"):
        MLP([3, 2], torch.tanh)(torch.zeros(2, 4))
