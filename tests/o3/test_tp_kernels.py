"""The eager convolution kernels, native (equidyn.o3._native) and torch-op
(equidyn.o3._tp_kernels): runs of several paths, several paths into one output block,
unreached output blocks, scalar and vector input blocks, shared and per-sample weights, empty
batches; always against the functional version."""

import pytest
import torch

from equidyn import o3
from equidyn.o3 import _native
from equidyn.o3._tp_kernels import _bmm
from equidyn.o3._tp_plan import plan_runs

F64 = torch.float64


@pytest.fixture(params=["native", "torch-op"], autouse=True)
def kernel(request):
    """Every test here runs with the native kernel on and off."""
    with _native.use_native(request.param == "native"):
        yield request.param


def _product() -> o3.TensorProduct:
    # group 0e: paths into out blocks 0, 1 (adjacent blocks and weights: one run of 2),
    #           and into block 4 (1o);
    # group 1o: paths into blocks 2, 3 (one run of 2) and a second writer into block 0;
    # block 5 (2e) is reached by no path.
    paths = [
        o3.Path(0, 0, 0, "uvu", True),
        o3.Path(0, 1, 1, "uvu", True),
        o3.Path(0, 2, 4, "uvu", True),
        o3.Path(1, 0, 2, "uvu", True),
        o3.Path(1, 1, 3, "uvu", True),
        o3.Path(1, 2, 0, "uvu", True),
    ]
    return o3.TensorProduct(
        "3x0e+3x1o",
        "1x0e+1x0e+1x1o",
        "3x0e+3x0e+3x1o+3x1o+3x1o+3x2e",
        paths,
        internal_weights=False,
    ).to(F64)


def test_plan_has_runs_and_second_writers():
    plan = _product()._plan
    assert plan.convolution and not plan.uvu.covered
    runs = {(g.d1, r.Q, r.first) for g in plan.uvu.groups for r in g.runs}
    assert (1, 2, True) in runs and (3, 2, True) in runs  # runs of two paths
    assert (3, 1, False) in runs  # second writer into block 0


def test_plan_runs_splits_on_gaps():
    # adjacent output blocks but weights not adjacent: two runs
    runs, members = plan_runs([(0, 3, 0, True), (96, 3, 64, True)], U=32)
    assert members == [[0], [1]]
    # different d3: two runs; a second writer: its own run
    runs, members = plan_runs([(0, 1, 0, True), (32, 3, 32, True), (128, 3, 64, False)], 32)
    assert [r[1] for r in runs] == [1, 3, 3] and [r[3] for r in runs] == [True, True, False]


@pytest.mark.parametrize("shared", [False, True])
def test_kernel_matches_functional_and_gradcheck(shared):
    tp = _product()
    g = torch.Generator().manual_seed(0)
    Z = 2
    x1 = torch.randn(Z, tp.irreps_in1.dim, dtype=F64, generator=g, requires_grad=True)
    x2 = torch.randn(Z, tp.irreps_in2.dim, dtype=F64, generator=g, requires_grad=True)
    shape = (tp.weight_numel,) if shared else (Z, tp.weight_numel)
    w = torch.randn(*shape, dtype=F64, generator=g, requires_grad=True)
    out = tp(x1, x2, w)
    ref = tp._functional(x1, x2, w)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    assert out[:, -5 * 3 :].abs().max() == 0  # unreached 2e block
    go = torch.randn_like(out)
    fast = torch.autograd.grad(out, (x1, x2, w), go)
    slow = torch.autograd.grad(ref, (x1, x2, w), go)
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(tp, (x1, x2, w), fast_mode=True)

    # second derivatives (create_graph=True differentiates the functional version)
    def second(f):
        (gw,) = torch.autograd.grad(f(x1, x2, w).pow(2).sum(), w, create_graph=True)
        return torch.autograd.grad(gw.pow(2).sum(), (x1, x2, w))

    functional = tp._functional
    for a, b in zip(second(tp), second(functional)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=0)


def test_kernel_only_some_gradients_and_empty_batch():
    tp = _product()
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(4, tp.irreps_in1.dim, dtype=F64, generator=g)
    x2 = torch.randn(4, tp.irreps_in2.dim, dtype=F64, generator=g, requires_grad=True)
    w = torch.randn(4, tp.weight_numel, dtype=F64, generator=g)
    (gx2,) = torch.autograd.grad(tp(x1, x2, w).square().sum(), x2)
    (ref,) = torch.autograd.grad(tp._functional(x1, x2, w).square().sum(), x2)
    torch.testing.assert_close(gx2, ref, atol=1e-12, rtol=0)

    e1 = torch.zeros(0, tp.irreps_in1.dim, dtype=F64, requires_grad=True)
    e2 = torch.zeros(0, tp.irreps_in2.dim, dtype=F64, requires_grad=True)
    ew = torch.zeros(0, tp.weight_numel, dtype=F64, requires_grad=True)
    out = tp(e1, e2, ew)
    assert out.shape == (0, tp.irreps_out.dim)
    grads = torch.autograd.grad(out.sum(), (e1, e2, ew))
    assert [t.shape for t in grads] == [e1.shape, e2.shape, ew.shape]


@pytest.mark.parametrize("m, c, n", [(4, 3, 32), (3, 4, 32), (1, 1, 8), (9, 5, 32), (2, 8, 3)])
def test_bmm_small_and_large(m, c, n):
    g = torch.Generator().manual_seed(2)
    a = torch.randn(6, m, c, dtype=F64, generator=g)
    b = torch.randn(6, c, n, dtype=F64, generator=g)
    torch.testing.assert_close(_bmm(a, b), torch.bmm(a, b), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        _bmm(a.transpose(1, 2).contiguous().transpose(1, 2), b), a @ b, atol=1e-12, rtol=0
    )
