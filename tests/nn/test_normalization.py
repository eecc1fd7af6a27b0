import copy

import pytest
import torch
from nn_checks import check_equivariance

from equidyn.nn import BatchNorm, LayerNorm
from equidyn.testing import assert_equivariant

IRREPS = "4x0e + 2x0o + 3x1o + 2x1e + 2x2e"


def _randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module


def test_layernorm_statistics():
    norm = LayerNorm("8x0e + 4x1o + 3x2e", affine=False).double()
    x = 3 + 5 * torch.randn(6, norm.irreps_in.dim, dtype=torch.float64)
    y = norm(x)
    s, v, t = y[:, :8], y[:, 8:20], y[:, 20:]
    torch.testing.assert_close(s.mean(-1), torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(
        s.pow(2).mean(-1), torch.ones(6, dtype=torch.float64), atol=1e-5, rtol=0
    )
    # no centring of vectors: the output is a positive rescaling of the input
    cos = torch.nn.functional.cosine_similarity(v, x[:, 8:20], dim=-1)
    torch.testing.assert_close(cos, torch.ones(6, dtype=torch.float64))
    torch.testing.assert_close(
        v.pow(2).mean(-1), torch.ones(6, dtype=torch.float64), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        t.pow(2).mean(-1), torch.ones(6, dtype=torch.float64), atol=1e-5, rtol=0
    )


def test_layernorm_affine_and_equivariance():
    norm = _randomise(LayerNorm(IRREPS))
    assert norm.weight.shape == (norm.irreps_in.num_irreps,) and norm.bias.shape == (4,)
    check_equivariance(norm)
    check_equivariance(LayerNorm(IRREPS, affine=False))


def test_batchnorm_train_statistics_and_running_stats():
    bn = BatchNorm("3x0e + 2x1o", momentum=0.5, affine=False).double()
    g = torch.Generator().manual_seed(0)
    x = 2 + 3 * torch.randn(500, 9, generator=g, dtype=torch.float64)
    y = bn(x)
    torch.testing.assert_close(y[:, :3].mean(0), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(
        y[:, :3].var(0, unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-4, rtol=0
    )
    vec = y[:, 3:].reshape(500, 2, 3)
    torch.testing.assert_close(
        vec.pow(2).sum(-1).mean(0) / 3, torch.ones(2, dtype=torch.float64), atol=1e-4, rtol=0
    )
    # running statistics: 0.5 * init + 0.5 * batch
    torch.testing.assert_close(bn.running_mean, 0.5 * x[:, :3].mean(0))
    batch_var = x[:, :3].var(0, unbiased=False)
    vnorm = x[:, 3:].reshape(500, 2, 3).pow(2).sum(-1).mean(0) / 3
    torch.testing.assert_close(bn.running_var, 0.5 + 0.5 * torch.cat([batch_var, vnorm]))


def test_batchnorm_eval_uses_running_stats():
    bn = BatchNorm("2x0e + 1x1o", momentum=1.0).double()  # running stats = last batch
    x = 1 + 2 * torch.randn(300, 5, dtype=torch.float64)
    y_train = bn(x)
    bn.eval()
    running = (bn.running_mean.clone(), bn.running_var.clone())
    torch.testing.assert_close(bn(x), y_train)  # same statistics
    single = bn(x[:1])  # eval works on a single sample and does not update
    torch.testing.assert_close(single, y_train[:1])
    torch.testing.assert_close(bn.running_mean, running[0])
    torch.testing.assert_close(bn.running_var, running[1])


def test_batchnorm_equivariance_train_and_eval():
    bn = _randomise(BatchNorm(IRREPS))
    for mode in (True, False):
        for dtype in (torch.float64, torch.float32):
            m = copy.deepcopy(bn).to(dtype).train(mode)
            x = torch.randn(20, m.irreps_in.dim, dtype=dtype)
            # a rotation applied to the whole batch: statistics are invariant
            fn = (lambda m0: lambda x: copy.deepcopy(m0)(x))(m)
            assert_equivariant(fn, irreps_in=[m.irreps_in], irreps_out=[m.irreps_out], args_in=[x])


def test_batchnorm_leading_dims_and_backward():
    bn = BatchNorm("2x0e + 1x1o").double()
    x = torch.randn(4, 5, 5, dtype=torch.float64, requires_grad=True)
    assert bn(x).shape == (4, 5, 5)
    assert torch.autograd.gradcheck(lambda x: BatchNorm("2x0e + 1x1o").double()(x), (x,))


def test_errors():
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm("1x0e", momentum=2.0)
    with pytest.raises(ValueError, match="eps"):
        LayerNorm("1x0e", eps=0.0)
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(\.\.\., 4\).*1x0e\+1x1o"):
        LayerNorm("1x0e + 1x1o")(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(\.\.\., 4\)"):
        BatchNorm("1x0e + 1x1o")(torch.zeros(2, 3))


def test_state_dict_roundtrip_keeps_running_stats():
    bn = BatchNorm("2x0e + 1x1o")
    bn(torch.randn(50, 5) + 3)
    fresh = BatchNorm("2x0e + 1x1o")
    fresh.load_state_dict(bn.state_dict())
    assert set(bn.state_dict()) == {"running_mean", "running_var", "weight", "bias"}
    x = torch.randn(4, 5)
    torch.testing.assert_close(fresh.eval()(x), bn.eval()(x))


def test_gradients_finite_at_zero_features():
    for layer in (LayerNorm(IRREPS), BatchNorm(IRREPS)):
        layer = layer.double()
        x = torch.zeros(3, layer.irreps_in.dim, dtype=torch.float64, requires_grad=True)
        y = layer(x)
        (g,) = torch.autograd.grad((y * torch.arange(y.shape[-1])).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.pow(2).sum(), x)
        assert torch.isfinite(y).all() and torch.isfinite(g).all() and torch.isfinite(gg).all()


def test_batchnorm_eval_and_layernorm_accept_an_empty_batch():
    """Zero rows in eval mode (no atoms of a kind) pass through; training mode needs a batch."""
    for layer in (BatchNorm("4x0e+2x1o").eval(), LayerNorm("4x0e+2x1o")):
        x = torch.randn(0, 10, requires_grad=True)
        y = layer(x)
        y.sum().backward()
        assert y.shape == (0, 10) and x.grad.shape == (0, 10)
    with pytest.raises(ValueError, match="non-empty batch"):
        BatchNorm("4x0e+2x1o").train()(torch.randn(0, 10))
