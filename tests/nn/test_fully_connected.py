"""nn.FullyConnectedNet: e3nn's arguments, parameter names and numbers (to its Monte-Carlo
normalisation constant), variance at init, errors."""

import pytest
import torch

from equidyn.nn import FullyConnectedNet


def test_loads_e3nn_state_dict_and_matches():
    e3nn_nn = pytest.importorskip("e3nn.nn")
    for out_act in (False, True):
        torch.manual_seed(0)
        theirs = e3nn_nn.FullyConnectedNet([5, 16, 16, 3], torch.tanh, 2.0, 0.5, out_act)
        ours = FullyConnectedNet([5, 16, 16, 3], torch.tanh, 2.0, 0.5, out_act)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        x = torch.randn(50, 5, dtype=torch.float64)
        ours, theirs = ours.double(), theirs.double()
        # e3nn's constant is a Monte-Carlo estimate (1e6 samples): ~1e-3 relative
        torch.testing.assert_close(ours(x), theirs(x), rtol=3e-3, atol=3e-3)


def test_linear_network_is_exact_against_e3nn():
    e3nn_nn = pytest.importorskip("e3nn.nn")
    theirs = e3nn_nn.FullyConnectedNet([4, 7, 2], None, 3.0, 2.0)
    ours = FullyConnectedNet([4, 7, 2], None, 3.0, 2.0)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(10, 4)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_unit_variance_at_init():
    torch.manual_seed(1)
    net = FullyConnectedNet([64, 256, 256, 256], torch.nn.functional.silu).double()
    y = net(torch.randn(4000, 64, dtype=torch.float64))
    assert abs(y.pow(2).mean().item() - 1.0) < 0.15


@pytest.mark.parametrize("hs", [[3], [3, 0], [3, 2.5], "34", [True, 2]])
def test_bad_sizes(hs):
    with pytest.raises(ValueError, match="hs must be"):
        FullyConnectedNet(hs)


def test_bad_input_shape_and_variance():
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 3\)"):
        FullyConnectedNet([3, 2])(torch.randn(4, 5))
    with pytest.raises(ValueError, match="variance_in"):
        FullyConnectedNet([3, 2], variance_in=0)


def test_compile_matches_eager():
    net = FullyConnectedNet([3, 8, 2], torch.tanh)
    x = torch.randn(6, 3)
    torch.testing.assert_close(torch.compile(net, fullgraph=True)(x), net(x))
