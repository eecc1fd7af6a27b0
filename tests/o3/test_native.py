"""The native convolution kernel (equidyn.o3._native): built here, equal to the torch-op kernel
and the functional version on the shapes that take its special cases (d = 1, 3, 5, 7 and the
generic loops, channel counts that are not multiples of the vector blocks, several threads),
differentiable twice, and a clean fallback where it cannot be built."""

import os
import shutil
import warnings

import pytest
import torch

from equidyn import o3
from equidyn.o3 import _native
from equidyn.testing import assert_equivariant


def _need_compiler() -> None:
    """Skip where nothing can be built: no C compiler, or the user turned the kernel off."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine: the torch-op kernel is used")
    if os.environ.get("EQUIDYN_NATIVE") == "0":
        pytest.skip("EQUIDYN_NATIVE=0: the native kernel is turned off")


def test_builds_where_there_is_a_compiler():
    _need_compiler()
    assert _native.available(torch.float32) and _native.available(torch.float64)


def _need_native(dtype: torch.dtype) -> None:
    """Skip where the native kernel cannot be built (no C compiler, or EQUIDYN_NATIVE=0):
    there the torch-op kernel runs, which test_tp_kernels.py covers; where a compiler exists,
    test_builds_where_there_is_a_compiler fails instead of skipping."""
    if not _native.available(dtype):
        pytest.skip("no native kernel on this machine (no C compiler or EQUIDYN_NATIVE=0)")


def _conv(L: int, mul: int, dtype: torch.dtype) -> o3.ChannelwiseTensorProduct:
    irreps1 = o3.Irreps([(mul, (l, (-1) ** l)) for l in range(L + 1)])
    sh = o3.Irreps.spherical_harmonics(L)
    return o3.ChannelwiseTensorProduct(
        irreps1, sh, [o3.Irrep((l, p)) for l in range(L + 1) for p in (1, -1)]
    ).to(dtype)


def _inputs(tp, Z, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(Z, d, generator=g, dtype=dtype, requires_grad=True)
        for d in (tp.irreps_in1.dim, tp.irreps_in2.dim, tp.weight_numel)
    ]


@pytest.mark.parametrize(
    "L, mul, dtype, tol",
    [
        (3, 5, torch.float64, 1e-12),  # d1, d3 = 1, 3, 5, 7; 5 channels: only remainder loops
        (4, 2, torch.float64, 1e-12),  # d = 9: the generic (non-instantiated) loops
        (2, 20, torch.float32, 2e-5),  # 20 channels: one block of 16 and a remainder
    ],
)
def test_native_equals_torch_op_kernel(L, mul, dtype, tol):
    _need_native(dtype)
    tp = _conv(L, mul, dtype)
    Z = 300  # > 64 per thread: the work is split over threads
    x1, x2, w = _inputs(tp, Z, dtype)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = tp(x1, x2, w)
        go = torch.randn_like(out)
        grads = torch.autograd.grad(out, (x1, x2, w), go)
    finally:
        torch.set_num_threads(threads)
    with _native.use_native(False):
        ref = tp(x1, x2, w)
        ref_grads = torch.autograd.grad(ref, (x1, x2, w), go)
    scale = float(ref.abs().max())
    torch.testing.assert_close(out, ref, atol=tol * scale, rtol=0)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=tol * float(b.abs().max()), rtol=0)


def test_native_double_backward_and_gradcheck():
    _need_native(torch.float64)
    tp = _conv(2, 2, torch.float64)
    x1, x2, w = _inputs(tp, 3, torch.float64, seed=1)
    assert torch.autograd.gradcheck(tp, (x1, x2, w), fast_mode=True)
    assert torch.autograd.gradgradcheck(tp, (x1, x2, w), fast_mode=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_native_equivariance(dtype):
    _need_native(dtype)
    tp = _conv(3, 4, dtype)
    x1, x2, w = (t.detach() for t in _inputs(tp, 100, dtype, seed=2))
    errs = assert_equivariant(
        tp,
        irreps_in=[tp.irreps_in1, tp.irreps_in2, None],
        irreps_out=[tp.irreps_out],
        args_in=[x1, x2, w],
    )  # 1e-10 in float64, 1e-4 in float32
    assert set(errs) >= {"proper rotation", "improper rotation"}


def test_fallback_when_the_compiler_fails(monkeypatch, tmp_path):
    monkeypatch.setenv("EQUIDYN_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(_native, "_libs", {})
    monkeypatch.setattr(_native, "_failure", None)
    monkeypatch.setattr(_native, "_enabled", True)  # even where EQUIDYN_NATIVE=0 is set
    with pytest.warns(RuntimeWarning, match="native tensor-product kernel is unavailable"):
        assert not _native.available(torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once only
        assert not _native.available(torch.float64)
    tp = _conv(1, 3, torch.float64)
    x1, x2, w = _inputs(tp, 4, torch.float64)
    with _native.use_native(False):
        ref = tp(x1, x2, w)
    torch.testing.assert_close(tp(x1, x2, w), ref)  # the torch-op kernel took over


def test_build_is_cached_in_the_cache_directory(monkeypatch, tmp_path):
    _need_compiler()
    monkeypatch.setenv("EQUIDYN_CACHE", str(tmp_path))
    monkeypatch.setattr(_native, "_libs", {})
    monkeypatch.setattr(_native, "_failure", None)
    assert _native.available(torch.float64)
    files = [p.name for p in (tmp_path / "kernels").iterdir()]
    assert len(files) == 1 and files[0].startswith("conv_tp_double_") and files[0].endswith(".so")


def test_native_under_torch_compile_fullgraph():
    _need_native(torch.float32)
    torch._dynamo.reset()
    tp = _conv(2, 4, torch.float32)
    x1, x2, w = _inputs(tp, 50, torch.float32, seed=4)
    eager = tp(x1, x2, w)
    g_eager = torch.autograd.grad(eager.pow(2).sum(), (x1, x2, w))
    out = torch.compile(tp, fullgraph=True, backend="aot_eager")(x1, x2, w)
    g_comp = torch.autograd.grad(out.pow(2).sum(), (x1, x2, w))
    torch.testing.assert_close(out, eager)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b)


def test_native_third_derivative_matches_functional():
    _need_native(torch.float64)
    tp = _conv(1, 2, torch.float64)
    x1, x2, w = _inputs(tp, 3, torch.float64, seed=5)

    def third(f):
        (g2,) = torch.autograd.grad(f(x1, x2, w).pow(2).sum(), x2, create_graph=True)
        (g22,) = torch.autograd.grad(g2.pow(3).sum(), x1, create_graph=True)
        return torch.autograd.grad(g22.sin().sum(), (x1, x2, w))

    functional = tp._functional
    for a, b in zip(third(tp), third(functional)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("needs", [(1, 1, 0), (0, 1, 1), (1, 0, 1), (0, 1, 0)])
def test_native_force_like_loss_with_some_inputs_constant(needs):
    """A loss on a first derivative (forces) when only some of x1, x2, w require grad: the
    backward and double backward then compute only the gradients asked for; every one equals
    the functional version's."""
    _need_native(torch.float64)
    tp = _conv(2, 3, torch.float64)
    leaves = [
        t.detach().requires_grad_(bool(n)) for t, n in zip(_inputs(tp, 7, torch.float64, 8), needs)
    ]
    live = [t for t in leaves if t.requires_grad]

    def second(f):
        first = torch.autograd.grad(f(*leaves).pow(2).sum(), live, create_graph=True)
        loss = sum((g * torch.cos(g)).sum() for g in first)
        return torch.autograd.grad(loss, live)

    functional = tp._functional
    for a, b in zip(second(tp), second(functional)):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_used_product_survives_pickle_and_deepcopy():
    import copy
    import pickle

    tp = _conv(1, 3, torch.float64)
    x1, x2, w = (t.detach() for t in _inputs(tp, 6, torch.float64, seed=6))
    ref = tp(x1, x2, w)  # builds the native plan
    clone, twin = pickle.loads(pickle.dumps(tp)), copy.deepcopy(tp)
    del tp  # the copies must not depend on the original's plan
    torch.testing.assert_close(clone(x1, x2, w), ref)
    torch.testing.assert_close(twin(x1, x2, w), ref)


@pytest.mark.parametrize("need", [7, 6, 3, 1])
def test_custom_operators_pass_opcheck(need):
    """torch.library.opcheck: schema, fake (meta) kernels, autograd registration and AOT
    dispatch of both operators, for several masks of the gradients asked for."""
    _need_native(torch.float64)
    tp = _conv(1, 3, torch.float64)
    x1, x2, w = (t.detach() for t in _inputs(tp, 5, torch.float64, seed=9))
    g = torch.randn(5, tp.irreps_out.dim, dtype=torch.float64)
    ops = torch.ops.equidyn
    key = tp._native.key
    torch.library.opcheck(ops.conv_tp_backward.default, (g, x1, x2, w, key, need))
    torch.library.opcheck(ops.conv_tp.default, (x1.requires_grad_(True), x2, w, key))


def test_fake_backward_promises_the_strides_the_kernel_returns():
    """The spherical harmonics reach the kernel component-major (x2 of strides (1, Z)); the
    kernel's gradients are contiguous, so its fake kernel must say so (inductor asserts the
    strides: a compiled NequIP's backward failed on ``stride 9 == 1``)."""
    _need_native(torch.float64)
    tp = _conv(1, 3, torch.float64)
    x1, x2, w = (t.detach() for t in _inputs(tp, 5, torch.float64, seed=10))
    x2 = x2.t().contiguous().t()  # same values, component-major storage
    assert x2.stride() == (1, 5)
    g = torch.randn(5, tp.irreps_out.dim, dtype=torch.float64)
    op = torch.ops.equidyn.conv_tp_backward.default
    real = op(g, x1, x2, w, tp._native.key, 7)
    with torch._subclasses.FakeTensorMode() as mode:
        fake = op(*(mode.from_tensor(t) for t in (g, x1, x2, w)), tp._native.key, 7)
    assert [t.stride() for t in fake] == [t.stride() for t in real]
    torch.library.opcheck(op, (g, x1, x2, w, tp._native.key, 7))
