"""e3nn 0.6 as an oracle: code that ports by changing the import gives the same numbers.

Covers wigner_D(l, alpha, beta, gamma), D_from_angles / D_from_quaternion / D_from_axis_angle,
Norm, ReducedTensorProducts, CartesianTensor, TensorSquare(irreps_out=...), TensorProduct
with e3nn instruction tuples, from_e3nn and loading e3nn state dicts."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn import o3

e3o = pytest.importorskip("e3nn.o3")

F64 = torch.float64


def _in_f64(make):
    """Build an e3nn object with float64 constants (e3nn rounds them to the default dtype)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    try:
        return make()
    finally:
        torch.set_default_dtype(old)


def _angles(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(n, generator=g, dtype=F64) * 4 * math.pi - 2 * math.pi for _ in "abc")


# --------------------------------------------------------------------------- Wigner D
@pytest.mark.parametrize("l", range(5))
def test_wigner_D_from_angles_matches_e3nn(l):
    a, b, c = _angles(16, l)
    ref = _in_f64(lambda: e3o.wigner_D(l, a, b, c))
    torch.testing.assert_close(o3.wigner_D(l, a, b, c), ref, atol=1e-10, rtol=0)


IRREPS = "2x0e + 1x0o + 1x1o + 1x1e + 2x2e + 1x2o + 1x3o"


def test_D_from_angles_with_parity_matches_e3nn():
    a, b, c = _angles(8, 7)
    k = torch.tensor([0, 1, 2, 3, 1, 0, 1, 1], dtype=F64)
    ours = o3.Irreps(IRREPS).D_from_angles(a, b, c, k)
    ref = _in_f64(lambda: e3o.Irreps(IRREPS).D_from_angles(a, b, c, k))
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=0)
    for _, ir in o3.Irreps(IRREPS):
        ref = _in_f64(lambda ir=ir: e3o.Irrep(str(ir)).D_from_angles(a, b, c, k))
        torch.testing.assert_close(ir.D_from_angles(a, b, c, k), ref, atol=1e-10, rtol=0)


def test_D_from_quaternion_and_axis_angle_match_e3nn():
    g = torch.Generator().manual_seed(5)
    q = torch.randn(6, 4, generator=g, dtype=F64)
    q = q / q.norm(dim=-1, keepdim=True)
    k = torch.tensor([0, 1, 1, 0, 1, 2], dtype=F64)
    axis = torch.randn(6, 3, generator=g, dtype=F64)
    angle = torch.randn(6, generator=g, dtype=F64) * 3
    ours, ref = o3.Irreps(IRREPS), e3o.Irreps(IRREPS)
    torch.testing.assert_close(
        ours.D_from_quaternion(q, k),
        _in_f64(lambda: ref.D_from_quaternion(q, k)),
        atol=1e-10,
        rtol=0,
    )
    torch.testing.assert_close(
        ours.D_from_axis_angle(axis, angle),
        _in_f64(lambda: ref.D_from_axis_angle(axis, angle)),
        atol=1e-10,
        rtol=0,
    )
    ir, e_ir = o3.Irrep("3o"), e3o.Irrep("3o")
    torch.testing.assert_close(
        ir.D_from_quaternion(q, k),
        _in_f64(lambda: e_ir.D_from_quaternion(q, k)),
        atol=1e-10,
        rtol=0,
    )
    torch.testing.assert_close(
        ir.D_from_axis_angle(axis, angle),
        _in_f64(lambda: e_ir.D_from_axis_angle(axis, angle)),
        atol=1e-10,
        rtol=0,
    )


# --------------------------------------------------------------------------- Norm
@pytest.mark.parametrize("squared", [False, True])
def test_norm_matches_e3nn(squared):
    irreps = "2x0e + 1x1o + 1x1o + 3x2e + 1x0o + 2x3o"
    ours, ref = o3.Norm(irreps, squared=squared), e3o.Norm(irreps, squared=squared)
    assert str(ours.irreps_out) == str(ref.irreps_out)
    assert str(ours.irreps_in) == str(ref.irreps_in)
    x = o3.Irreps(irreps).randn(5, -1, dtype=F64)
    torch.testing.assert_close(ours(x), _in_f64(lambda: ref.double())(x), atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- reduced products
RTP_CASES = [
    ("ij=ji", {"i": "1o"}),
    ("ij=-ji", {"i": "1o"}),
    ("ij", {"i": "1o", "j": "1o"}),
    ("ijk=jik=ikj", {"i": "1o"}),
    ("ijk=jki", {"i": "1o"}),
    ("ijkl=jikl=klij", {"i": "1o"}),
    ("ijkl=jikl=ikjl=ijlk", {"i": "1e"}),
    ("ijk", {"i": "2x0e+1o", "j": "1e", "k": "0o+1o"}),
    ("ij=ji", {"i": "2x1o+0e"}),
]


@pytest.mark.parametrize(("formula", "irreps"), RTP_CASES)
def test_reduced_tensor_products_match_e3nn(formula, irreps):
    ours = o3.ReducedTensorProducts(formula, **irreps).to(F64)
    ref = _in_f64(lambda: e3o.ReducedTensorProducts(formula, **irreps))
    assert str(ours.irreps_out) == str(ref.irreps_out)
    assert [str(i) for i in ours.irreps_in] == [str(i) for i in ref.irreps_in]
    Q, Qe = ours.change_of_basis.flatten(1), ref.change_of_basis.flatten(1)
    # the same subspace in every irrep block (free up to an orthogonal mixing of copies)...
    for sl in ours.irreps_out.slices():
        Pq, Pe = Q[sl].T @ Q[sl], Qe[sl].T @ Qe[sl]
        torch.testing.assert_close(Pq, Pe, atol=1e-10, rtol=0)
    # ...and in fact the same basis: the construction fixes the copies and their signs
    torch.testing.assert_close(Q, Qe, atol=1e-10, rtol=0)
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(4, irs.dim, generator=g, dtype=F64) for irs in ours.irreps_in]
    torch.testing.assert_close(ours(*xs), ref(*xs), atol=1e-10, rtol=0)


@pytest.mark.parametrize(
    "formula", ["ij=ji", "ij", "ij=-ji", "ijk=-jik=-ikj", "ijk=jik", "ijkl=jikl=klij"]
)
def test_cartesian_tensor_matches_e3nn(formula):
    e3io = pytest.importorskip("e3nn.io")
    ours, ref = o3.CartesianTensor(formula), _in_f64(lambda: e3io.CartesianTensor(formula))
    assert str(ours) == str(ref)
    g = torch.Generator().manual_seed(1)
    t = torch.randn(3, *(3,) * len(ours.indices), generator=g, dtype=F64)
    y = ours.from_cartesian(t)
    torch.testing.assert_close(y, _in_f64(lambda: ref.from_cartesian(t)), atol=1e-10, rtol=0)
    torch.testing.assert_close(
        ours.to_cartesian(y), _in_f64(lambda: ref.to_cartesian(y)), atol=1e-10, rtol=0
    )


# --------------------------------------------------------------------------- instruction tuples
I1, I2 = "3x0e+2x1o+2x2e", "2x0e+3x1o+1x2e"
IO = "3x0e+3x1o+2x1e+2x2e+3x0e+2x1o"


def _instructions(mode: str, weighted: bool) -> list[tuple]:
    """Every allowed instruction of ``mode`` between I1, I2 and IO, with distinct path weights."""
    i1, i2, io = o3.Irreps(I1), o3.Irreps(I2), o3.Irreps(IO)
    out = []
    for a, (m1, ir1) in enumerate(i1):
        for b, (m2, ir2) in enumerate(i2):
            for c, (m3, ir3) in enumerate(io):
                if ir3 not in ir1 * ir2:
                    continue
                ok = {
                    "uvw": True,
                    "uvu": m3 == m1,
                    "uvv": m3 == m2,
                    "uuw": m1 == m2 and (weighted or m3 == 1),
                    "uuu": m1 == m2 == m3,
                    "uvuv": m3 == m1 * m2,
                    "u<vw": m1 == m2,
                    "uvu<v": m1 == m2 and m3 == m1 * (m1 - 1) // 2,
                }[mode]
                if ok:
                    out.append((a, b, c, mode, weighted, 0.3 + 0.2 * len(out)))
    return out


@pytest.mark.parametrize(
    ("mode", "weighted"),
    [
        ("uvw", True),
        ("uvu", True),
        ("uvu", False),
        ("uvv", True),
        ("uvv", False),
        ("uuw", True),
        ("uuu", True),
        ("uuu", False),
        ("uvuv", False),
        ("u<vw", True),
        ("uvu<v", True),
    ],
)
@pytest.mark.parametrize("path_normalization", ["element", "path"])
@pytest.mark.parametrize("path_weights", [False, True])
def test_tensor_product_instruction_tuples_match_e3nn(
    mode, weighted, path_normalization, path_weights
):
    ins = _instructions(mode, weighted)
    if not path_weights:
        ins = [t[:5] for t in ins]
    assert ins
    kw = dict(path_normalization=path_normalization, internal_weights=False, shared_weights=False)
    ref = _in_f64(lambda: e3o.TensorProduct(I1, I2, IO, ins, **kw))
    ours = o3.TensorProduct(I1, I2, IO, ins, **kw).to(F64)  # e3nn's positional call
    assert ours.weight_numel == ref.weight_numel
    alias = o3.TensorProduct(I1, I2, IO, instructions=ins, **kw).to(F64)
    assert alias.paths == ours.paths
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(5, ours.irreps_in1.dim, generator=g, dtype=F64)
    x2 = torch.randn(5, ours.irreps_in2.dim, generator=g, dtype=F64)
    w = torch.randn(5, ours.weight_numel, generator=g, dtype=F64)
    torch.testing.assert_close(ours(x1, x2, w), ref(x1, x2, w), atol=1e-12, rtol=0)


def test_path_weight_scales_the_path_by_its_square_root():
    base = o3.TensorProduct(
        "2x1o", "1x1o", "2x0e", [(0, 0, 0, "uvu", True)], internal_weights=False
    )
    scaled = o3.TensorProduct(
        "2x1o", "1x1o", "2x0e", [(0, 0, 0, "uvu", True, 4.0)], internal_weights=False
    )
    x1, x2, w = torch.randn(3, 6), torch.randn(3, 3), torch.randn(3, 2)
    torch.testing.assert_close(scaled(x1, x2, w), 2 * base(x1, x2, w))


# --------------------------------------------------------------------------- TensorSquare
@pytest.mark.parametrize(
    ("irreps_in", "irreps_out"),
    [
        ("2x0e+1x1o", "3x0e+1x2e"),
        ("3x0e+2x1o+1x1e+2x2e", "2x0e+3x1o+2x1e+2x2e+1x3o+1x0o"),
        ("1x1o+1x1o", "2x0e+1x1e"),  # simplified to 2x1o
    ],
)
@pytest.mark.parametrize("irrep_normalization", ["component", "norm", "none"])
def test_tensor_square_with_irreps_out_matches_e3nn(irreps_in, irreps_out, irrep_normalization):
    ref = _in_f64(
        lambda: e3o.TensorSquare(irreps_in, irreps_out, irrep_normalization=irrep_normalization)
    )
    ours = o3.TensorSquare(irreps_in, irreps_out, irrep_normalization=irrep_normalization)
    ours = ours.to(F64)
    assert str(ours.irreps_in) == str(ref.irreps_in)
    assert str(ours.irreps_out) == str(ref.irreps_out)
    assert ours.weight_numel == ref.weight_numel
    with torch.no_grad():
        ours.weight.copy_(ref.weight)
    x = ours.irreps_in.randn(6, -1, dtype=F64)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- from_e3nn, state dicts
def _e3nn_modules():
    return [
        e3o.FullyConnectedTensorProduct("3x0e+2x1o+1x2e", "2x0e+1x1o", "2x0e+3x1o+1x2e"),
        e3o.FullyConnectedTensorProduct(
            "3x0e+2x1o", "2x0e+1x1o", "2x0e+3x1o", irrep_normalization="norm",
            path_normalization="path",
        ),
        e3o.FullyConnectedTensorProduct("3x0e+2x1o", "2x0e+1x1o", "2x0e+3x1o", in1_var=[1.0, 2.0]),
        e3o.TensorProduct(
            "3x0e+2x1o", "2x0e+1x1o", "3x0e+2x1o",
            [(0, 0, 0, "uvu", True), (1, 1, 0, "uvw", True, 0.3), (1, 0, 1, "uvu", True)],
            shared_weights=False, internal_weights=False,
        ),
        e3o.FullTensorProduct("2x0e+1x1o", "1x1o+1x2e"),
        e3o.ElementwiseTensorProduct("2x0e+3x1o", "4x1o+1x2e"),
        e3o.TensorSquare("2x0e+2x1o", "3x0e+1x1e+2x2e"),
        e3o.TensorSquare("2x0e+2x1o"),
        e3o.TensorSquare("3x1o", filter_ir_out=["0e", "2e"]),
        e3o.Linear("2x0e+1x1o+3x0e", "3x0e+1x1o"),
        e3o.Linear("2x0e+1x1o", "3x0e+1x1o+2x0e", biases=True),
        e3o.Linear("2x0e+1x1o", "3x0e+1x1o", internal_weights=False, shared_weights=False),
    ]  # fmt: skip


def _args(m, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    if hasattr(m, "irreps_in1") and type(m).__name__ != "TensorSquare":
        args = [
            torch.randn(n, m.irreps_in1.dim, generator=g),
            torch.randn(n, m.irreps_in2.dim, generator=g),
        ]
    else:
        args = [torch.randn(n, m.irreps_in.dim, generator=g)]
    if not m.internal_weights and m.weight_numel > 0:
        args.append(torch.randn(n, m.weight_numel, generator=g))
    return [a.to(torch.get_default_dtype()) for a in args]


@pytest.mark.parametrize("index", range(12))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_from_e3nn_and_load_state_dict_give_equal_outputs(index, dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        m = _e3nn_modules()[index]
        with torch.no_grad():
            if isinstance(getattr(m, "bias", None), torch.nn.Parameter):
                m.bias.normal_()  # e3nn starts biases at zero
        args = _args(m)
        ref = m(*args)
        ours = o3.from_e3nn(m)
        assert ours.irreps_out == o3.Irreps(str(m.irreps_out))
        tol = 1e-12 if dtype == torch.float64 else 2e-6
        torch.testing.assert_close(ours(*args), ref, atol=tol, rtol=0)
        # loading e3nn's state dict (buffers output_mask, generated constants, empty weight)
        fresh = o3.from_e3nn(m)
        with torch.no_grad():
            for p in fresh.parameters():
                p.normal_()
        fresh.load_state_dict(m.state_dict(), strict=True)
        torch.testing.assert_close(fresh(*args), ref, atol=tol, rtol=0)
    finally:
        torch.set_default_dtype(old)


def test_load_e3nn_state_dict_into_named_modules():
    ref = e3o.FullyConnectedTensorProduct("4x0e+2x1o", "1x0e+1x1o", "3x0e+2x1o")
    ours = o3.FullyConnectedTensorProduct("4x0e+2x1o", "1x0e+1x1o", "3x0e+2x1o")
    ours.load_state_dict(ref.state_dict(), strict=True)
    x1, x2 = torch.randn(5, 10), torch.randn(5, 4)
    torch.testing.assert_close(ours(x1, x2), ref(x1, x2), atol=2e-6, rtol=0)
    lin_ref = e3o.Linear("2x0e+1x1o", "3x0e+2x1o", biases=True)
    with torch.no_grad():
        lin_ref.bias.normal_()
    lin = o3.Linear("2x0e+1x1o", "3x0e+2x1o", biases=True)
    lin.load_state_dict(lin_ref.state_dict(), strict=True)
    x = torch.randn(5, 5)
    torch.testing.assert_close(lin(x), lin_ref(x), atol=2e-6, rtol=0)
    conv_ref = e3o.TensorProduct(
        "4x0e+4x1o", "1x0e+1x1o", "4x0e+4x1o",
        [(0, 0, 0, "uvu", True), (1, 1, 0, "uvu", True), (1, 0, 1, "uvu", True)],
        shared_weights=False, internal_weights=False,
    )  # fmt: skip
    conv = o3.TensorProduct(
        "4x0e+4x1o", "1x0e+1x1o", "4x0e+4x1o",
        [(0, 0, 0, "uvu", True), (1, 1, 0, "uvu", True), (1, 0, 1, "uvu", True)],
        shared_weights=False, internal_weights=False,
    )  # fmt: skip
    conv.load_state_dict(conv_ref.state_dict(), strict=True)  # only buffers: nothing to load


def test_load_state_dict_still_strict_about_real_keys():
    ref = e3o.FullyConnectedTensorProduct("2x0e", "1x0e", "2x0e")
    ours = o3.FullyConnectedTensorProduct("2x0e", "1x0e", "2x0e")
    sd = dict(ref.state_dict())
    sd["something_else"] = torch.zeros(1)
    with pytest.raises(RuntimeError, match="something_else"):
        ours.load_state_dict(sd, strict=True)
    sd = dict(ref.state_dict())
    sd["weight"] = torch.zeros(3)
    with pytest.raises(RuntimeError, match="size mismatch"):
        ours.load_state_dict(sd, strict=True)
    del sd["weight"]
    with pytest.raises(RuntimeError, match="weight"):
        ours.load_state_dict(sd, strict=True)


def test_from_e3nn_unsupported_linear_options():
    with pytest.raises(ValueError, match="biases on output blocks"):
        o3.from_e3nn(e3o.Linear("2x0e", "2x0e+3x0e", biases=[True, False]))
    with pytest.raises(ValueError, match="custom instructions"):
        o3.from_e3nn(e3o.Linear("2x0e", "2x0e+3x0e", instructions=[(0, 1)]))
    with pytest.raises(ValueError, match="path_normalization"):
        o3.from_e3nn(e3o.Linear("2x0e+3x0e", "2x0e", path_normalization="path"))
    with pytest.raises(TypeError, match="from_e3nn converts"):
        o3.from_e3nn(torch.nn.Linear(2, 2))
