"""Tests of equidyn.o3.Linear: e3nn agreement, equivariance, normalization, gradients,
compile, pickling, edge cases and errors."""

from __future__ import annotations

import pickle

import pytest
import torch

from equidyn import o3
from equidyn.testing import assert_equivariant

e3o = pytest.importorskip("e3nn.o3")

F64 = torch.float64
IN = "3x0e+2x1o+1x0e+2x2e+1x1e"
OUT = "2x0e+3x1o+1x1e+1x0e+2x3o"


def test_matches_e3nn_with_biases():
    ours = o3.Linear(IN, OUT, biases=True).to(F64)
    ref = e3o.Linear(IN, OUT, biases=True).to(F64)
    with torch.no_grad():
        ours.weight.copy_(ref.weight)
        ref.bias.normal_()
        ours.bias.copy_(ref.bias)
    x = torch.randn(6, ours.irreps_in.dim, dtype=F64)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-12, rtol=0)


def test_matches_e3nn_per_sample_weights():
    ours = o3.Linear(IN, OUT, internal_weights=False)
    ref = e3o.Linear(IN, OUT, internal_weights=False, shared_weights=False).to(F64)
    x = torch.randn(6, ours.irreps_in.dim, dtype=F64)
    w = torch.randn(6, ours.weight_numel, dtype=F64)
    torch.testing.assert_close(ours(x, w), ref(x, w), atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equivariance(dtype):
    lin = o3.Linear(IN, OUT, biases=True).to(dtype)
    with torch.no_grad():
        lin.bias.normal_()
    x = torch.randn(5, lin.irreps_in.dim, dtype=dtype)
    assert_equivariant(lin, irreps_in=[lin.irreps_in], irreps_out=[lin.irreps_out], args_in=[x])
    ext = o3.Linear(IN, OUT, internal_weights=False).to(dtype)
    w = torch.randn(5, ext.weight_numel, dtype=dtype)
    assert_equivariant(
        ext, irreps_in=[ext.irreps_in, None], irreps_out=[ext.irreps_out], args_in=[x, w]
    )


def test_schur_only_same_irreps_mix():
    lin = o3.Linear("1x0e+1x1o", "1x1o+1x1e+1x0o").to(F64)
    x = torch.zeros(1, 4, dtype=F64)
    x[0, 0] = 1.0  # only the scalar is non-zero
    out = lin(x)
    assert out.abs().sum() == 0  # no scalar output: nothing receives it
    x = torch.randn(1, 4, dtype=F64)
    assert lin(x)[0, 3:].abs().sum() == 0  # 1e and 0o have no input


def test_unit_variance_at_init():
    moments = []
    for seed in range(30):
        torch.manual_seed(seed)
        lin = o3.Linear("8x0e+4x1o+2x0e", "5x0e+3x1o").to(F64)
        moments.append(lin(torch.randn(300, 22, dtype=F64)).pow(2).mean().item())
    assert sum(moments) / len(moments) == pytest.approx(1.0, abs=0.1)


def test_gradcheck_double_backward():
    lin = o3.Linear("2x0e+1x1o", "1x0e+2x1o", internal_weights=False, biases=True).to(F64)
    x = torch.randn(3, 5, dtype=F64, requires_grad=True)
    w = torch.randn(3, lin.weight_numel, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lin, (x, w))
    assert torch.autograd.gradgradcheck(lin, (x, w))


def test_compile_equals_eager():
    torch._dynamo.reset()
    lin = o3.Linear("2x0e+1x1o+1x2e", "3x0e+1x1o+2x2e", biases=True)
    x = torch.randn(4, lin.irreps_in.dim)
    compiled = torch.compile(lin, fullgraph=True)
    torch.testing.assert_close(compiled(x), lin(x), atol=1e-5, rtol=1e-5)


def test_pickle_state_dict_dtype():
    lin = o3.Linear(IN, OUT, biases=True)
    x = torch.randn(2, lin.irreps_in.dim)
    torch.testing.assert_close(pickle.loads(pickle.dumps(lin))(x), lin(x))
    other = o3.Linear(IN, OUT, biases=True)
    other.load_state_dict(lin.state_dict())
    torch.testing.assert_close(other(x), lin(x))
    assert lin.to(F64)(x.double()).dtype == F64


def test_empty_and_zero_multiplicity():
    lin = o3.Linear("", "2x0e", biases=True)
    assert lin.weight_numel == 0
    assert lin(torch.randn(3, 0)).shape == (3, 2)
    lin = o3.Linear("0x0e+2x1o", "1x1o+0x0e")
    assert lin(torch.randn(3, 6)).shape == (3, 3)
    assert o3.Linear("1x0e", "")(torch.randn(3, 1)).shape == (3, 0)


@pytest.mark.parametrize("per_sample", [False, True])
def test_empty_batch_forward_and_backward(per_sample):
    """Zero rows (no atoms of a kind in a batch) give [0, dim_out] and [0, dim_in] gradients."""
    lin = o3.Linear("3x0e+2x1o+1x2e", "2x0e+3x1o+1x2e", internal_weights=not per_sample)
    x = torch.randn(0, lin.irreps_in.dim, requires_grad=True)
    args = [x] + ([torch.randn(0, lin.weight_numel, requires_grad=True)] if per_sample else [])
    y = lin(*args)
    assert y.shape == (0, lin.irreps_out.dim)
    y.sum().backward()
    assert [a.grad.shape for a in args] == [a.shape for a in args]


def test_errors():
    lin = o3.Linear("2x0e+1x1o", "1x0e")
    with pytest.raises(ValueError, match=r"input has shape \(3, 4\)"):
        lin(torch.randn(3, 4))
    with pytest.raises(ValueError, match="internal weights"):
        lin(torch.randn(3, 5), torch.randn(lin.weight_numel))
    ext = o3.Linear("2x0e+1x1o", "1x0e", internal_weights=False)
    with pytest.raises(ValueError, match="external weights"):
        ext(torch.randn(3, 5))
    with pytest.raises(ValueError, match="weight has shape"):
        ext(torch.randn(3, 5), torch.randn(3, 7))
    with pytest.raises(ValueError, match="shared_weights"):
        o3.Linear("1x0e", "1x0e", internal_weights=True, shared_weights=False)


def test_mixed_dtypes_are_a_type_error_naming_both():
    """Issue 12: a float64 input into a float32 Linear gave torch's "expected m1 and m2 to have
    the same dtype"; the dtype policy is a TypeError naming both dtypes."""
    lin = o3.Linear("2x0e + 1x1o", "1x0e + 1x1o")
    with pytest.raises(TypeError, match=r"the input torch\.float64.*weight torch\.float32"):
        lin(torch.randn(3, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"the input torch\.int64"):
        lin(torch.ones(3, 5, dtype=torch.long))
    ext = o3.Linear("2x0e", "1x0e", internal_weights=False, shared_weights=False)
    with pytest.raises(TypeError, match=r"the input torch\.float32, weight torch\.float64"):
        ext(torch.randn(3, 2), torch.randn(3, ext.weight_numel, dtype=torch.float64))
    assert lin.to(torch.float64)(torch.randn(3, 5, dtype=torch.float64)).dtype == torch.float64
