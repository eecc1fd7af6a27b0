"""The tensor-product plan (equidyn.o3._tp_plan) and backends (equidyn.o3._tp_backends): which
backend takes which call, every backend that supports a call agrees with the functional one,
the plan is frozen and device-free, and the one path generator of the named products."""

import dataclasses

import pytest
import torch

from equidyn import o3
from equidyn.o3 import _native, _tp_backends
from equidyn.o3.tensor_product import _product_paths

F64 = torch.float64


def _conv() -> o3.ChannelwiseTensorProduct:
    return o3.ChannelwiseTensorProduct("3x0e+3x1o", "0e+1o+2e", ["0e", "1o", "1e", "2e"]).to(F64)


def _general() -> o3.TensorProduct:
    """uvu paths with V > 1 and without weights next to uvw, uuu and uvuv paths."""
    P = o3.Path
    paths = [
        P(0, 0, 0, "uvu", True),  # V = 2
        P(1, 1, 1, "uvu", False),  # unweighted
        P(1, 1, 1, "uvu", True),  # a second writer into block 1
        P(1, 1, 1, "uvw", True),
        P(1, 2, 2, "uuu", True),
        P(1, 1, 3, "uvuv", False),
    ]
    return o3.TensorProduct(
        "3x0e+3x1o", "2x0e+1x1o+3x1o", "3x0e+3x1e+3x0e+3x2e", paths, internal_weights=False
    ).to(F64)


def _inputs(tp: o3.TensorProduct, Z: int, shared: bool, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (tp.weight_numel,) if shared else (Z, tp.weight_numel)
    return [
        torch.randn(*s, dtype=F64, generator=g)
        for s in ((Z, tp.irreps_in1.dim), (Z, tp.irreps_in2.dim), shape)
    ]


def _selected(tp: o3.TensorProduct, x1, x2, w) -> str:
    return _tp_backends.select(tp._bound(), x1, x2, w).name


def test_backend_order_and_selection(monkeypatch):
    assert [b.name for b in _tp_backends.BACKENDS] == ["native", "torch-op", "functional"]
    conv, fc = _conv(), o3.FullyConnectedTensorProduct("2x0e+1x1o", "1x1o", "2x1o").to(F64)
    x1, x2, w = _inputs(conv, 4, shared=False)
    native = _native.available(F64)
    assert _selected(conv, x1, x2, w) == ("native" if native else "torch-op")
    assert _selected(conv, x1, x2, w[0]) == "torch-op"  # shared weights: not the C kernel
    with _native.use_native(False):
        assert _selected(conv, x1, x2, w) == "torch-op"
    # other devices never take the C kernel (CUDA falls back to the torch-op kernel)
    meta = [t.to("meta") for t in (x1, x2, w)]
    assert _selected(conv, *meta) == "torch-op"
    f1, f2 = torch.randn(3, fc.irreps_in1.dim, dtype=F64), torch.randn(3, 3, dtype=F64)
    assert _selected(fc, f1, f2, fc.weight) == "functional"
    assert _selected(_general(), *_inputs(_general(), 3, shared=True)) == "functional"
    # while tracing, the eager autograd.Function is not used
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with _native.use_native(False):
        assert _selected(conv, x1, x2, w) == "functional"


@pytest.mark.parametrize("make", [_conv, _general])
@pytest.mark.parametrize("shared", [False, True])
def test_every_supporting_backend_equals_functional(make, shared):
    tp = make()
    x1, x2, w = (t.requires_grad_(True) for t in _inputs(tp, 5, shared, seed=1))
    bound = tp._bound()
    ref = tp._functional(x1, x2, w)
    go = torch.randn_like(ref)
    ref_grads = torch.autograd.grad(ref, (x1, x2, w), go)
    ran = []
    for backend in _tp_backends.BACKENDS:
        if not backend.supports(bound, x1, x2, w):
            continue
        ran.append(backend.name)
        out = backend.run(bound, x1, x2, w)
        torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
        for a, b in zip(torch.autograd.grad(out, (x1, x2, w), go), ref_grads):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert ran[-1] == "functional" and (make is _general or "torch-op" in ran)


def test_unweighted_uvu_path_equals_unit_weights():
    """The V > 1 and unweighted uvu runs of the functional version: an unweighted path equals
    the same path weighted with ones."""
    tp = _general()
    P = o3.Path
    weighted = [P(p.in1, p.in2, p.out, p.mode, True) for p in tp.paths]
    tpw = o3.TensorProduct(
        tp.irreps_in1, tp.irreps_in2, tp.irreps_out, weighted, internal_weights=False
    ).to(F64)
    x1, x2, w = _inputs(tp, 4, shared=False, seed=2)
    layout = tp._plan.weights
    parts = [
        w[:, layout.offsets[i] : layout.offsets[i] + n] if p.weighted else w.new_ones(4, n)
        for i, (p, n) in enumerate(zip(tp.paths, tpw._plan.weights.sizes()))
    ]
    torch.testing.assert_close(tpw(x1, x2, torch.cat(parts, 1)), tp(x1, x2, w), atol=1e-12, rtol=0)


def test_plan_is_frozen_and_keeps_float64_constants():
    tp = _conv().float()
    plan = tp._plan
    assert plan.convolution and len(plan.uvu.groups) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.uvu = None  # type: ignore[misc]
    assert all(c.dtype == F64 for c in plan.constants)
    consts = tp._constants()
    assert len(consts) == len(plan.constants) and all(c.dtype == torch.float32 for c in consts)
    # the uvu constants are those of the C kernel: one per group, nothing duplicated
    assert [g.const for g in plan.uvu.groups] == [0, 1]
    assert [name for name, _ in tp.named_buffers()] == ["_c0", "_c1"]
    assert list(tp.state_dict()) == []


def test_state_dict_keys_of_every_product():
    internal = [
        o3.FullyConnectedTensorProduct("2x0e", "1x0e", "2x0e"),
        o3.ChannelwiseTensorProduct("2x0e", "1x0e", internal_weights=True),
    ]
    external = [
        o3.FullTensorProduct("2x0e+1x1o", "1x1o"),
        o3.ChannelwiseTensorProduct("2x0e", "1x0e"),
        o3.ElementwiseTensorProduct("2x1o", "2x1o"),
        o3.TensorSquare("2x0e+1x1o"),
        _general(),
    ]
    assert all(list(tp.state_dict()) == ["weight"] for tp in internal)
    assert all(list(tp.state_dict()) == [] for tp in external)


def test_one_path_generator_for_the_named_products():
    i1, i2 = o3.Irreps("2x0e+1x1o"), o3.Irreps("1x1o+3x0e")
    irreps, paths = _product_paths(i1, i2, None, "uvuv", "upper")
    assert {(p.in1, p.in2) for p in paths} == {(0, 0), (0, 1), (1, 1)}
    assert all(p.mode == "uvuv" and not p.weighted for p in paths)
    assert irreps == o3.Irreps("6x0e+2x1o+3x1o")  # sorted by (l, p), multiplicity U V
    irreps, paths = _product_paths(
        o3.Irreps("2x1o+3x0e"), o3.Irreps("2x0e+3x1o"), ["1o"], "uuu", "diagonal", sort=False
    )
    assert [(p.in1, p.in2, p.out) for p in paths] == [(0, 0, 0), (1, 1, 1)]
    assert irreps == o3.Irreps("2x1o+3x1o")  # not sorted, multiplicity U
    irreps, paths = _product_paths(i1, i2, ["1o"], "uvu", weighted=True)
    assert irreps == o3.Irreps("2x1o+1x1o") and all(p.weighted for p in paths)
    assert o3.ChannelwiseTensorProduct(i1, i2, ["1o"]).paths == tuple(paths)


def test_torch_export_of_a_product_with_every_mode():
    tp = _general().float()
    x1, x2, w = (t.float() for t in _inputs(tp, 5, shared=False, seed=3))
    program = torch.export.export(tp, (x1, x2, w))
    torch.testing.assert_close(program.module()(x1, x2, w), tp(x1, x2, w), atol=1e-5, rtol=1e-5)
