"""Tests of equidyn.o3 tensor products: e3nn agreement, equivariance, normalization, gradients,
compile, pickling, edge cases and errors."""

from __future__ import annotations

import io
import pickle

import pytest
import torch

from equidyn import o3
from equidyn.testing import assert_equivariant

e3o = pytest.importorskip("e3nn.o3")

F64 = torch.float64


def _in_f64(make):
    """Build an e3nn module with float64 constants (e3nn rounds them to the default dtype)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    try:
        return make()
    finally:
        torch.set_default_dtype(old)


def _e3nn_tp(tp: o3.TensorProduct, **kw) -> torch.nn.Module:
    """e3nn's TensorProduct with exactly our paths and output order."""
    return _in_f64(
        lambda: e3o.TensorProduct(
            str(tp.irreps_in1),
            str(tp.irreps_in2),
            str(tp.irreps_out),
            [(p.in1, p.in2, p.out, p.mode, p.weighted) for p in tp.paths],
            irrep_normalization=tp.irrep_normalization,
            path_normalization=tp.path_normalization,
            **kw,
        )
    )


def _inputs(tp: o3.TensorProduct, n: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(n, tp.irreps_in1.dim, dtype=F64, generator=g)
    x2 = torch.randn(n, tp.irreps_in2.dim, dtype=F64, generator=g)
    return x1, x2


_UVW_ORDER_PATHS = [
    o3.Path(0, 1, 1, "uvw", True),  # 0e x 1o -> 1o: x1 first
    o3.Path(0, 0, 0, "uvw", True),  # 0e x 0e -> 0e: x1 first
    o3.Path(1, 0, 1, "uvw", True),  # 1o x 0e -> 1o: x2 first
    o3.Path(1, 1, 0, "uvw", True),  # 1o x 1o -> 0e: general (T formed on the output side)
    o3.Path(1, 1, 2, "uvw", True),  # 1o x 1o -> 2e: x1 first (d1 = 3 < d3 = 5)
    o3.Path(2, 1, 3, "uvw", True),  # 2e x 1o -> 2o: x2 first (d2 = 3 < d1 = d3 = 5)
    o3.Path(2, 1, 1, "uvw", True),  # 2e x 1o -> 1o: general (d3 = 3)
]


def _uvw_orders_tp() -> o3.TensorProduct:
    """A product whose uvw paths take all three contraction orders (see _tp_plan.uvw_kind)."""
    return o3.TensorProduct(
        "2x0e+3x1o+2x2e",
        "2x0e+2x1o",
        "3x0e+2x1o+2x2e+2x2o",
        _UVW_ORDER_PATHS,
        internal_weights=False,
    ).to(F64)


# --------------------------------------------------------------------------- e3nn agreement
@pytest.mark.parametrize(
    ("i1", "i2", "io"),
    [
        ("3x0e+3x1o+2x2e", "2x0e+1x1o+1x2e", "4x0e+2x1o+3x2e+1x1e"),
        ("2x0o+1x1e", "3x1o", "2x1o+1x0o+2x2o"),
    ],
)
def test_fully_connected_matches_e3nn(i1, i2, io):
    ours = o3.FullyConnectedTensorProduct(i1, i2, io).to(F64)
    ref = _in_f64(lambda: e3o.FullyConnectedTensorProduct(i1, i2, io))
    with torch.no_grad():
        ours.weight.copy_(ref.weight)
    x1, x2 = _inputs(ours)
    torch.testing.assert_close(ours(x1, x2), ref(x1, x2), atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("i1", "i2", "filt"),
    [
        ("4x0e+4x1o+3x2e", "1x0e+1x1o+1x2e", ["0e", "1o", "2e", "1e"]),  # NequIP conv
        ("3x0e+2x1o", "2x0e+3x1o", None),  # uvu with mul2 > 1
    ],
)
def test_channelwise_matches_e3nn_per_edge_weights(i1, i2, filt):
    ours = o3.ChannelwiseTensorProduct(i1, i2, filt).to(F64)
    ref = _e3nn_tp(ours, shared_weights=False, internal_weights=False)
    x1, x2 = _inputs(ours)
    w = torch.randn(x1.shape[0], ours.weight_numel, dtype=F64)
    torch.testing.assert_close(ours(x1, x2, w), ref(x1, x2, w), atol=1e-12, rtol=0)


def test_full_and_elementwise_match_e3nn():
    full = o3.FullTensorProduct("2x0e+2x1o+1x2e", "1x1o+2x2e").to(F64)
    # e3nn orders equal-l irreps odd first; the multiset of output irreps agrees
    e_full = e3o.FullTensorProduct("2x0e+2x1o+1x2e", "1x1o+2x2e")
    assert sorted(str(e_full.irreps_out).split("+")) == sorted(str(full.irreps_out).split("+"))
    x1, x2 = _inputs(full)
    torch.testing.assert_close(full(x1, x2), _e3nn_tp(full)(x1, x2), atol=1e-12, rtol=0)

    elt = o3.ElementwiseTensorProduct("2x0e+3x1o", "4x1o+1x2e", ["0e", "1o", "1e", "2e", "3o"])
    elt = elt.to(F64)
    e_elt = _in_f64(
        lambda: e3o.ElementwiseTensorProduct(
            "2x0e+3x1o", "4x1o+1x2e", ["0e", "1o", "1e", "2e", "3o"]
        )
    )
    assert str(elt.irreps_out) == str(e_elt.irreps_out)
    x1, x2 = _inputs(elt)
    torch.testing.assert_close(elt(x1, x2), e_elt(x1, x2), atol=1e-12, rtol=0)


@pytest.mark.parametrize("irrep_normalization", ["component", "norm", "none"])
@pytest.mark.parametrize("path_normalization", ["element", "path", "none"])
def test_general_modes_and_normalizations_match_e3nn(irrep_normalization, path_normalization):
    paths = [
        o3.Path(0, 0, 0, "uvw", True),
        o3.Path(1, 1, 0, "uvw", True),
        o3.Path(1, 0, 1, "uvu", True),
        o3.Path(1, 1, 2, "uuu", True),
        o3.Path(1, 1, 3, "uvuv", False),
        o3.Path(1, 1, 4, "uuu", False),
    ]
    tp = o3.TensorProduct(
        "2x0e+2x1o",
        "2x0e+2x1o",
        "3x0e+2x1o+2x1e+4x2e+2x0e",
        paths,
        irrep_normalization=irrep_normalization,
        path_normalization=path_normalization,
    ).to(F64)
    ref = _e3nn_tp(tp)
    with torch.no_grad():
        tp.weight.copy_(ref.weight)
    x1, x2 = _inputs(tp)
    torch.testing.assert_close(tp(x1, x2), ref(x1, x2), atol=1e-12, rtol=0)


def test_per_sample_uvw_weights_match_e3nn():
    tp = o3.TensorProduct(
        "2x0e+1x1o",
        "1x1o",
        "3x1o+2x0e",
        [o3.Path(0, 0, 0, "uvw", True), o3.Path(1, 0, 1, "uvw", True)],
        internal_weights=False,
    ).to(F64)
    ref = _e3nn_tp(tp, shared_weights=False, internal_weights=False)
    x1, x2 = _inputs(tp)
    w = torch.randn(x1.shape[0], tp.weight_numel, dtype=F64)
    torch.testing.assert_close(tp(x1, x2, w), ref(x1, x2, w), atol=1e-12, rtol=0)
    # a shared external weight broadcasts over the batch
    w0 = w[0]
    torch.testing.assert_close(tp(x1, x2, w0), ref(x1, x2, w0.expand_as(w)), atol=1e-12, rtol=0)


def test_tensor_product_irreps():
    assert o3.tensor_product_irreps("2x1o", "1x1o + 1x0e") == o3.Irreps("2x0e+2x1o+2x1e+2x2e")
    full = o3.FullTensorProduct("2x0e+1x2o", "3x1o", filter_ir_out=["1o", "2e", "3e"])
    assert o3.tensor_product_irreps("2x0e+1x2o", "3x1o", ["1o", "2e", "3e"]) == full.irreps_out


# --------------------------------------------------------------------------- equivariance
def _products() -> list[tuple[str, o3.TensorProduct]]:
    return [
        ("full", o3.FullTensorProduct("1x0e+1x1o+1x2e", "1x1o+1x2o")),
        (
            "fc",
            o3.FullyConnectedTensorProduct("2x0e+2x1o+1x2e", "1x0e+1x1o+1x2e", "3x0e+2x1o+2x1e"),
        ),
        ("channelwise", o3.ChannelwiseTensorProduct("2x0e+2x1o+2x2e", "1x0e+1x1o+1x2e")),
        ("elementwise", o3.ElementwiseTensorProduct("2x1o+1x2e", "3x1e")),
        ("square", o3.TensorSquare("1x0e+2x1o")),
    ]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equivariance_all_products(dtype):
    g = torch.Generator().manual_seed(1)
    for name, tp in _products():
        tp = tp.to(dtype)
        if name == "square":
            x = torch.randn(4, tp.irreps_in.dim, dtype=dtype, generator=g)
            assert_equivariant(
                tp, irreps_in=[tp.irreps_in], irreps_out=[tp.irreps_out], args_in=[x]
            )
            continue
        x1 = torch.randn(4, tp.irreps_in1.dim, dtype=dtype, generator=g)
        x2 = torch.randn(4, tp.irreps_in2.dim, dtype=dtype, generator=g)
        if tp.internal_weights or tp.weight_numel == 0:
            args, specs = [x1, x2], [tp.irreps_in1, tp.irreps_in2]
        else:
            w = torch.randn(4, tp.weight_numel, dtype=dtype, generator=g)
            args, specs = [x1, x2, w], [tp.irreps_in1, tp.irreps_in2, None]
        errs = assert_equivariant(tp, irreps_in=specs, irreps_out=[tp.irreps_out], args_in=args)
        assert set(errs) >= {"proper rotation", "improper rotation"}, name


# --------------------------------------------------------------------------- normalization
@pytest.mark.parametrize("name", ["full", "channelwise", "elementwise"])
def test_unit_variance_at_init(name):
    torch.manual_seed(0)
    tp = dict(_products())[name].to(F64)
    n = 4000
    x1 = torch.randn(n, tp.irreps_in1.dim, dtype=F64)
    x2 = torch.randn(n, tp.irreps_in2.dim, dtype=F64)
    args = [x1, x2]
    if not tp.internal_weights and tp.weight_numel:
        args.append(torch.randn(n, tp.weight_numel, dtype=F64))
    out = tp(*args)
    second_moment = out.pow(2).mean(0)  # per component
    assert second_moment.mean().item() == pytest.approx(1.0, abs=0.08)
    assert second_moment.min().item() > 0.6 and second_moment.max().item() < 1.6


def test_unit_variance_averaged_over_weights():
    """Over random internal weights (the initialisation), E[out^2] = 1 per component."""
    moments = []
    for seed in range(25):
        torch.manual_seed(seed)
        tp = o3.FullyConnectedTensorProduct("4x0e+3x1o", "2x0e+1x1o", "2x0e+2x1o+1x1e").to(F64)
        x1 = torch.randn(200, 13, dtype=F64)
        x2 = torch.randn(200, 5, dtype=F64)
        moments.append(tp(x1, x2).pow(2).mean().item())
    assert sum(moments) / len(moments) == pytest.approx(1.0, abs=0.1)


# --------------------------------------------------------------------------- algebra, gradients
def test_bilinearity():
    tp = o3.FullyConnectedTensorProduct("2x0e+1x1o+1x2e", "1x1o+1x2e", "2x1o+1x2e+1x0e").to(F64)
    x1, x2 = _inputs(tp)
    y1, y2 = _inputs(tp, seed=5)
    a, b = 0.7, -1.3
    torch.testing.assert_close(tp(a * x1 + b * y1, x2), a * tp(x1, x2) + b * tp(y1, x2))
    torch.testing.assert_close(tp(x1, a * x2 + b * y2), a * tp(x1, x2) + b * tp(x1, y2))


def test_gradcheck_and_double_backward():
    paths = [
        o3.Path(0, 1, 0, "uvw", True),
        o3.Path(1, 1, 1, "uvu", True),
        o3.Path(1, 0, 2, "uuu", True),
        o3.Path(1, 1, 3, "uvuv", True),
    ]
    tp = o3.TensorProduct(
        "2x0e+2x1o", "2x0e+1x1o", "2x1o+2x0e+2x1o+2x2e", paths, internal_weights=False
    ).to(F64)
    g = torch.Generator().manual_seed(3)
    x1 = torch.randn(3, tp.irreps_in1.dim, dtype=F64, generator=g, requires_grad=True)
    x2 = torch.randn(3, tp.irreps_in2.dim, dtype=F64, generator=g, requires_grad=True)
    w = torch.randn(3, tp.weight_numel, dtype=F64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(tp, (x1, x2, w))
    assert torch.autograd.gradgradcheck(tp, (x1, x2, w))


def test_force_like_second_derivative():
    """Loss of a gradient (forces) differentiates through the product w.r.t. weights."""
    tp = o3.ChannelwiseTensorProduct("3x0e+3x1o", "1x0e+1x1o+1x2e", ["0e"], internal_weights=True)
    tp = tp.to(F64)
    vec = torch.randn(5, 3, dtype=F64, requires_grad=True)
    sh = o3.spherical_harmonics([0, 1, 2], vec, normalize=True, normalization="component")
    x1 = torch.randn(5, 12, dtype=F64)
    energy = tp(x1, sh).sum()
    (forces,) = torch.autograd.grad(energy, vec, create_graph=True)
    forces.pow(2).sum().backward()
    assert tp.weight.grad is not None and tp.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------- compile, pickle
def test_compile_equals_eager_with_grads():
    """One small product that exercises every kernel (uvw, uvu, uuu, uvuv)."""
    torch._dynamo.reset()
    paths = [
        o3.Path(0, 1, 0, "uvw", True),
        o3.Path(1, 1, 1, "uvu", True),
        o3.Path(1, 0, 2, "uuu", True),
        o3.Path(1, 1, 3, "uvuv", True),
    ]
    tp = o3.TensorProduct("2x0e+2x1o", "2x0e+1x1o", "2x1o+2x0e+2x1o+2x2e", paths)
    x1 = torch.randn(7, tp.irreps_in1.dim, requires_grad=True)
    x2 = torch.randn(7, tp.irreps_in2.dim)
    eager = tp(x1, x2)
    (g_eager,) = torch.autograd.grad(eager.pow(2).sum(), x1)
    out = torch.compile(tp, fullgraph=True)(x1, x2)
    (g_comp,) = torch.autograd.grad(out.pow(2).sum(), x1)
    torch.testing.assert_close(out, eager, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_comp, g_eager, atol=1e-5, rtol=1e-5)


def test_pickle_state_dict_and_dtype_round_trip():
    tp = o3.FullyConnectedTensorProduct("2x0e+1x1o", "1x1o", "1x0e+2x1o")
    x1, x2 = _inputs(tp)
    x1, x2 = x1.float(), x2.float()
    clone = pickle.loads(pickle.dumps(tp))
    torch.testing.assert_close(clone(x1, x2), tp(x1, x2))
    other = o3.FullyConnectedTensorProduct("2x0e+1x1o", "1x1o", "1x0e+2x1o")
    buf = io.BytesIO()
    torch.save(tp.state_dict(), buf)
    buf.seek(0)
    other.load_state_dict(torch.load(buf))
    assert list(tp.state_dict()) == ["weight"]  # constants are not state
    torch.testing.assert_close(other(x1, x2), tp(x1, x2))
    # float32 -> float64 keeps the Clebsch-Gordan constants exact (re-rounded from float64)
    tp64 = tp.to(F64)
    const = [b for b in tp64.buffers()]
    assert all(b.dtype == F64 for b in const)
    assert_equivariant(
        tp64,
        irreps_in=[tp64.irreps_in1, tp64.irreps_in2],
        irreps_out=[tp64.irreps_out],
        args_in=[x1.double(), x2.double()],
    )


# --------------------------------------------------------------------------- edge cases, errors
def test_empty_and_zero_multiplicity():
    tp = o3.FullyConnectedTensorProduct("", "1x0e", "2x0e")
    out = tp(torch.randn(4, 0), torch.randn(4, 1))
    assert out.shape == (4, 2) and out.abs().sum() == 0
    tp = o3.FullyConnectedTensorProduct("0x0e+2x1o", "0x1o+1x0e", "3x1o+0x0e")
    x1, x2 = torch.randn(5, 6), torch.randn(5, 1)
    assert tp(x1, x2).shape == (5, 9)
    tp = o3.FullTensorProduct("1x0e", "1x0e", filter_ir_out=["1o"])
    assert tp.irreps_out == o3.Irreps("") and tp(torch.randn(3, 1), torch.randn(3, 1)).shape == (
        3,
        0,
    )
    tp = o3.ChannelwiseTensorProduct("2x1o", "1x1o", ["1e"])
    assert tp(torch.randn(0, 6), torch.randn(0, 3), torch.randn(0, 2)).shape == (0, 6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: o3.FullyConnectedTensorProduct(
            "2x0e+2x1o+1x2e", "2x0e+2x1o+1x2e", "2x0e+2x1o+2x2e"
        ),
        lambda: o3.FullTensorProduct("2x0e+2x1o", "1x1o+1x2e"),
        lambda: o3.ElementwiseTensorProduct("2x0e+2x1o", "2x1o+2x2e"),
        _uvw_orders_tp,  # per-sample weights
    ],
)
def test_empty_batch_forward_and_backward(make):
    """A batch of zero rows (a graph without edges) gives a [0, dim_out] output and
    [0, dim] gradients; shared weights get zero gradients."""
    tp = make().to(F64)
    x1 = torch.randn(0, tp.irreps_in1.dim, dtype=F64, requires_grad=True)
    x2 = torch.randn(0, tp.irreps_in2.dim, dtype=F64, requires_grad=True)
    args = [x1, x2]
    if not tp.internal_weights and tp.weight_numel > 0:
        args.append(torch.randn(0, tp.weight_numel, dtype=F64, requires_grad=True))
    out = tp(*args)
    assert out.shape == (0, tp.irreps_out.dim)
    out.sum().backward()
    assert [a.grad.shape for a in args] == [a.shape for a in args]
    for p in tp.parameters():
        assert p.grad is None or p.grad.abs().sum() == 0


def test_broadcasting_leading_dims():
    tp = o3.ChannelwiseTensorProduct("2x0e+1x1o", "1x0e+1x1o", ["0e", "1o"])
    x1 = torch.randn(4, 1, 5)
    x2 = torch.randn(3, 4)
    w = torch.randn(4, 3, tp.weight_numel)
    out = tp(x1, x2, w)
    assert out.shape == (4, 3, tp.irreps_out.dim)
    torch.testing.assert_close(out[2, 1], tp(x1[2, 0], x2[1], w[2, 1]))


def test_errors():
    with pytest.raises(ValueError, match="mode"):
        o3.Path(0, 0, 0, "uvx", True)
    with pytest.raises(ValueError, match="non-negative"):
        o3.Path(-1, 0, 0, "uvw", True)
    with pytest.raises(ValueError, match="parity"):
        o3.TensorProduct("1x1o", "1x1o", "1x1o", [o3.Path(0, 0, 0, "uvw", True)])
    with pytest.raises(ValueError, match="parity"):
        o3.TensorProduct("1x0e", "1x1o", "1x2o", [o3.Path(0, 0, 0, "uvw", True)])
    with pytest.raises(ValueError, match="mul_out == mul1"):
        o3.TensorProduct("2x0e", "1x0e", "3x0e", [o3.Path(0, 0, 0, "uvu", True)])
    with pytest.raises(ValueError, match="out of range"):
        o3.TensorProduct("2x0e", "1x0e", "3x0e", [o3.Path(0, 1, 0, "uvw", True)])
    with pytest.raises(ValueError, match="irrep_normalization"):
        o3.FullyConnectedTensorProduct("1x0e", "1x0e", "1x0e", irrep_normalization="bad")
    tp = o3.ChannelwiseTensorProduct("2x0e+1x1o", "1x0e+1x1o", ["0e", "1o"])
    with pytest.raises(ValueError, match=r"x1 has shape \(4, 6\)"):
        tp(torch.randn(4, 6), torch.randn(4, 4), torch.randn(4, tp.weight_numel))
    with pytest.raises(ValueError, match=r"x2 has shape"):
        tp(torch.randn(4, 5), torch.randn(4, 3), torch.randn(4, tp.weight_numel))
    with pytest.raises(ValueError, match="external weights"):
        tp(torch.randn(4, 5), torch.randn(4, 4))
    with pytest.raises(ValueError, match="weight has shape"):
        tp(torch.randn(4, 5), torch.randn(4, 4), torch.randn(4, 3))
    with pytest.raises(ValueError, match="broadcast"):
        tp(torch.randn(4, 5), torch.randn(3, 4), torch.randn(4, tp.weight_numel))
    fc = o3.FullyConnectedTensorProduct("1x0e", "1x0e", "1x0e")
    with pytest.raises(ValueError, match="internal weights"):
        fc(torch.randn(2, 1), torch.randn(2, 1), torch.randn(1))
    with pytest.raises(ValueError, match="same number of channels"):
        o3.ElementwiseTensorProduct("2x0e", "3x0e")


@pytest.mark.parametrize("shared", [False, True])
def test_convolution_fast_path_gradients(shared):
    """The eager convolution kernel (uvu, mul2 = 1): gradients, second derivatives, and
    agreement with the functional version, including two paths into one output block and
    an output block that no path reaches."""
    paths = [
        o3.Path(0, 1, 1, "uvu", True),
        o3.Path(1, 0, 1, "uvu", True),
        o3.Path(1, 1, 0, "uvu", True),
        o3.Path(1, 2, 3, "uvu", True),
    ]
    tp = o3.TensorProduct(
        "2x0e+2x1o", "1x0e+1x1o+1x2e", "2x0e+2x1o+2x1e+2x2o", paths, internal_weights=False
    ).to(F64)
    assert tp._plan.convolution and not tp._plan.uvu.covered
    g = torch.Generator().manual_seed(4)
    x1 = torch.randn(2, tp.irreps_in1.dim, dtype=F64, generator=g, requires_grad=True)
    x2 = torch.randn(2, tp.irreps_in2.dim, dtype=F64, generator=g, requires_grad=True)
    shape = (tp.weight_numel,) if shared else (2, tp.weight_numel)
    w = torch.randn(*shape, dtype=F64, generator=g, requires_grad=True)
    ref = tp._functional(x1, x2, w)
    torch.testing.assert_close(tp(x1, x2, w), ref, atol=1e-12, rtol=0)
    assert torch.autograd.gradcheck(tp, (x1, x2, w))

    # second derivatives (create_graph=True differentiates the functional version)
    def second(f):
        (gx1,) = torch.autograd.grad(f(x1, x2, w).pow(2).sum(), x1, create_graph=True)
        return torch.autograd.grad(gx1.pow(2).sum(), (x1, x2, w))

    functional = tp._functional
    for fast, ref in zip(second(tp), second(functional)):
        torch.testing.assert_close(fast, ref, atol=1e-10, rtol=0)


@pytest.mark.parametrize("per_sample", [False, True])
def test_uvw_contraction_orders_match_e3nn(per_sample):
    """uvw paths contract the input with the smallest dimension (d1, d2 or d3) with the weights
    first; all three orders mixed, scalar and vector blocks. An unweighted path equals a
    weighted one with unit weights."""
    paths = _UVW_ORDER_PATHS
    tp = _uvw_orders_tp()
    ref = _e3nn_tp(tp, shared_weights=not per_sample, internal_weights=False)
    x1, x2 = _inputs(tp)
    shape = (x1.shape[0], tp.weight_numel) if per_sample else (tp.weight_numel,)
    w = torch.randn(*shape, dtype=F64, requires_grad=True)
    torch.testing.assert_close(tp(x1, x2, w), ref(x1, x2, w), atol=1e-12, rtol=0)
    g = torch.autograd.grad(tp(x1, x2, w).square().sum(), w)[0]
    g_ref = torch.autograd.grad(ref(x1, x2, w).square().sum(), w)[0]
    torch.testing.assert_close(g, g_ref, atol=1e-10, rtol=0)

    unweighted = [o3.Path(0, 0, 0, "uvw", False) if i == 1 else p for i, p in enumerate(paths)]
    tpu = o3.TensorProduct(
        "2x0e+3x1o+2x2e", "2x0e+2x1o", "3x0e+2x1o+2x2e+2x2o", unweighted, internal_weights=False
    ).to(F64)
    n0, n1 = tp._plan.weights.offsets[1], tp._plan.weights.offsets[2]  # the unit weights of path 1
    w1 = w.detach().clone()
    w1[..., n0:n1] = 1.0
    wu = torch.cat([w1[..., :n0], w1[..., n1:]], dim=-1)
    torch.testing.assert_close(tpu(x1, x2, wu), tp(x1, x2, w1), atol=1e-12, rtol=0)


@pytest.mark.parametrize("per_sample", [False, True])
def test_uvw_contraction_orders_gradcheck_and_double_backward(per_sample):
    """First and second derivatives of every uvw contraction order, including the general
    order whose backward forms its intermediate again instead of keeping it."""
    tp = _uvw_orders_tp()
    x1, x2 = _inputs(tp, n=3)
    shape = (3, tp.weight_numel) if per_sample else (tp.weight_numel,)
    w = torch.randn(*shape, dtype=F64)
    args = tuple(t.clone().requires_grad_(True) for t in (x1, x2, w))
    assert torch.autograd.gradcheck(tp, args)
    assert torch.autograd.gradgradcheck(tp, args)


def test_uvw_compile_equals_eager_with_grads():
    torch._dynamo.reset()
    tp = _uvw_orders_tp().float()
    x1, x2 = (t.float().requires_grad_(True) for t in _inputs(tp, n=5))
    w = torch.randn(tp.weight_numel, requires_grad=True)
    eager = tp(x1, x2, w)
    g_eager = torch.autograd.grad(eager.pow(2).sum(), (x1, x2, w))
    out = torch.compile(tp, fullgraph=True)(x1, x2, w)
    g_comp = torch.autograd.grad(out.pow(2).sum(), (x1, x2, w))
    torch.testing.assert_close(out, eager, atol=1e-5, rtol=1e-5)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_fully_connected_keeps_no_outer_intermediate_for_backward():
    """What autograd keeps for the backward of a fully connected product on
    32x0e+32x1o+32x2e: the general-order paths keep only their small inputs. Had they kept
    their [Z, d3 V, U] intermediates, those alone would outweigh everything kept now."""
    irreps = "32x0e+32x1o+32x2e"
    tp = o3.FullyConnectedTensorProduct(irreps, irreps, irreps)
    n = 256
    x1 = torch.randn(n, tp.irreps_in1.dim, requires_grad=True)
    x2 = torch.randn(n, tp.irreps_in2.dim, requires_grad=True)
    kept: dict[int, torch.Tensor] = {}  # by storage; the tensors stay alive (no reused address)
    weight = tp.weight.untyped_storage().data_ptr()

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.untyped_storage().data_ptr() != weight:
            kept[t.untyped_storage().data_ptr()] = t
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = tp(x1, x2)
    kept_bytes = sum(t.untyped_storage().nbytes() for t in kept.values())
    general = [g for g in tp._plan.uvw if g.kind == "out"]
    assert len(general) == 6  # 0e/1o/2e x same -> 0e, 1o x 2e -> 1o, 2e x 1o -> 1o, 2e x 2e -> 2e
    # one [n, d3 * V, U] float32 intermediate per general group, had it been kept
    t_bytes = sum(n * tp.irreps_out[g.c].ir.dim * 32 * 32 * 4 * len(g.paths) for g in general)
    assert kept_bytes < t_bytes
    out.sum().backward()
    assert x1.grad is not None and tp.weight.grad is not None


def test_torch_export_of_a_fully_connected_product():
    """torch.export traces the compiled branch (uvw paths inside an activation checkpoint):
    the exported program equals eager."""
    tp = _uvw_orders_tp().float()
    x1, x2 = (t.float() for t in _inputs(tp, n=5))
    w = torch.randn(tp.weight_numel)
    program = torch.export.export(tp, (x1, x2, w))
    torch.testing.assert_close(program.module()(x1, x2, w), tp(x1, x2, w), atol=1e-5, rtol=1e-5)


def test_mixed_dtypes_are_a_clear_type_error():
    """Issue 12: mixed dtypes gave torch's "expected m1 and m2 to have the same dtype"."""
    tp = o3.FullyConnectedTensorProduct("2x0e+1x1o", "1x0e+1x1o", "2x0e+1x1o")
    x1, x2 = torch.randn(3, 5), torch.randn(3, 4)
    with pytest.raises(TypeError, match="x1 torch.float32, x2 torch.float64"):
        tp(x1, x2.double())
    with pytest.raises(TypeError, match="the module torch.float32"):
        tp(x1.double(), x2.double())
    assert tp.double()(x1.double(), x2.double()).dtype == torch.float64
