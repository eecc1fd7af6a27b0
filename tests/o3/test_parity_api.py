"""Unit tests (no e3nn needed) of the e3nn-style entry points: wigner_D from angles,
D_from_angles / D_from_quaternion / D_from_axis_angle with the parity factor k."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from equidyn import o3

F64 = torch.float64


def _angles(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(n, generator=g, dtype=F64) * 4 * math.pi - 2 * math.pi for _ in "abc")


# --------------------------------------------------------------------------- wigner_D dispatch
@pytest.mark.parametrize("l", range(5))
def test_wigner_D_angles_equals_matrix_form(l):
    a, b, c = _angles(8, l)
    R = o3.angles_to_matrix(a, b, c)
    torch.testing.assert_close(o3.wigner_D(l, a, b, c), o3.wigner_D(l, R), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        o3.wigner_D(l, a, b, c), o3.wigner_D_from_angles(l, a, b, c), atol=0, rtol=0
    )


def test_wigner_D_angles_accepts_numbers_and_broadcasts():
    D = o3.wigner_D(2, 0.1, torch.tensor([0.2, 0.3], dtype=F64), 0.4)
    assert D.shape == (2, 5, 5) and D.dtype == F64
    assert o3.wigner_D(1, 0.0, 0.0, 0.0).shape == (3, 3)


@pytest.mark.parametrize("args", [(), (0.1, 0.2), (0.1, 0.2, 0.3, 0.4)])
def test_wigner_D_wrong_number_of_arguments(args):
    with pytest.raises(TypeError, match="wigner_D takes"):
        o3.wigner_D(1, *args)


def test_wigner_D_wrong_types():
    with pytest.raises(TypeError, match="R must be a tensor"):
        o3.wigner_D(1, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(TypeError, match="beta must be a tensor"):
        o3.wigner_D(1, 0.1, "x", 0.2)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 3),
    st.lists(st.floats(-7, 7, allow_nan=False), min_size=6, max_size=6),
)
def test_wigner_D_angles_group_law_against_matrix_exp(l, angles):
    """D(a1, b1, c1) D(a2, b2, c2) = D(R1 R2), the reference D = exp(a Jy) exp(b Jx) exp(c Jy)
    from matrix_exp (its rounding is ~6e-12 at l = 2, hence 1e-10)."""
    t = torch.tensor(angles, dtype=F64)
    J = o3.so3_generators(l, dtype=F64)

    def ref(a, b, c):
        return (
            torch.linalg.matrix_exp(a * J[1])
            @ torch.linalg.matrix_exp(b * J[0])
            @ torch.linalg.matrix_exp(c * J[1])
        )

    D1, D2 = o3.wigner_D(l, *t[:3]), o3.wigner_D(l, *t[3:])
    torch.testing.assert_close(D1, ref(*t[:3]), atol=1e-10, rtol=0)
    R = o3.angles_to_matrix(*t[:3]) @ o3.angles_to_matrix(*t[3:])
    torch.testing.assert_close(D1 @ D2, o3.wigner_D(l, R), atol=1e-10, rtol=0)


# --------------------------------------------------------------------------- D_from_*
IRREPS = "2x0e + 1x0o + 1x1o + 1x1e + 2x2e + 1x3o"


def test_irrep_D_from_angles_parity_factor():
    a, b, c = _angles(6, 1)
    k = torch.tensor([0, 1, 2, 3, 0, 1])
    R = o3.angles_to_matrix(a, b, c)
    sign = ((-1.0) ** k).to(F64)
    for ir in o3.Irreps(IRREPS):
        ir = ir.ir
        D = ir.D_from_angles(a, b, c, k)
        expected = (
            o3.wigner_D(ir.l, R) * (sign if ir.p == -1 else torch.ones_like(sign))[:, None, None]
        )
        torch.testing.assert_close(D, expected, atol=1e-12, rtol=0)
        # the same element as a matrix (-1)^k R
        torch.testing.assert_close(D, ir.D_from_matrix(sign[:, None, None] * R), atol=1e-12, rtol=0)
    torch.testing.assert_close(
        o3.Irrep("1o").D_from_angles(a, b, c), R, atol=1e-12, rtol=0
    )  # k=None means 0


def test_irreps_D_from_angles_is_block_diagonal_and_matches_matrix():
    a, b, c = _angles(5, 2)
    k = torch.tensor([1, 0, 1, 1, 0])
    irreps = o3.Irreps(IRREPS)
    sign = ((-1.0) ** k).to(F64)[:, None, None]
    D = irreps.D_from_angles(a, b, c, k)
    assert D.shape == (5, irreps.dim, irreps.dim)
    torch.testing.assert_close(
        D, irreps.D_from_matrix(sign * o3.angles_to_matrix(a, b, c)), atol=1e-12, rtol=0
    )
    assert irreps.D_from_angles(0.1, 0.2, 0.3, k=1).shape == (irreps.dim, irreps.dim)


def test_D_from_quaternion_and_axis_angle():
    g = torch.Generator().manual_seed(3)
    q = o3.rand_quaternion(4, generator=g, dtype=F64)
    axis, angle = o3.rand_axis_angle(4, generator=g, dtype=F64)
    irreps = o3.Irreps(IRREPS)
    k = torch.tensor([0, 1, 1, 0])
    sign = ((-1.0) ** k).to(F64)[:, None, None]
    torch.testing.assert_close(
        irreps.D_from_quaternion(q, k),
        irreps.D_from_matrix(sign * o3.quaternion_to_matrix(q)),
        atol=1e-12,
        rtol=0,
    )
    torch.testing.assert_close(
        irreps.D_from_axis_angle(axis, angle),
        irreps.D_from_matrix(o3.axis_angle_to_matrix(axis, angle)),
        atol=1e-12,
        rtol=0,
    )
    ir = o3.Irrep("2o")
    torch.testing.assert_close(
        ir.D_from_quaternion(q, k),
        ir.D_from_matrix(sign * o3.quaternion_to_matrix(q)),
        atol=1e-12,
        rtol=0,
    )
    torch.testing.assert_close(
        ir.D_from_axis_angle(axis, angle),
        o3.wigner_D(2, o3.axis_angle_to_matrix(axis, angle)),
        atol=1e-12,
        rtol=0,
    )


def test_D_from_angles_bad_k():
    with pytest.raises(TypeError, match="k must be"):
        o3.Irrep("1o").D_from_angles(0.1, 0.2, 0.3, k="odd")


# --------------------------------------------------------------------------- Norm
def test_norm_values_irreps_and_gradient_at_zero():
    norm = o3.Norm("2x0e + 1x1o + 1x1o + 1x2e")
    assert norm.irreps_in == o3.Irreps("2x0e+2x1o+1x2e")
    assert norm.irreps_out == o3.Irreps("5x0e")
    x = torch.tensor([-1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    x.requires_grad_(True)
    out = norm(x)
    torch.testing.assert_close(out, torch.tensor([1.0, 2.0, 5.0, 0.0, 5**0.5]))
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad[4:7] == 0).all()
    sq = o3.Norm("2x0e + 2x1o + 1x2e", squared=True)(x.detach())
    torch.testing.assert_close(sq, out.detach() ** 2)


def test_norm_is_invariant_and_checks_input():
    irreps = o3.Irreps("3x1o + 2x2e + 1x0o")
    g = torch.Generator().manual_seed(0)
    x = irreps.randn(4, -1, generator=g, dtype=F64)
    R = -o3.rand_matrix(4, generator=g, dtype=F64)
    D = irreps.D_from_matrix(R)
    norm = o3.Norm(irreps)
    torch.testing.assert_close(norm(torch.einsum("zij,zj->zi", D, x)), norm(x))
    with pytest.raises(ValueError, match="expected"):
        norm(torch.zeros(4, 3))
    with pytest.raises(TypeError, match="squared"):
        o3.Norm(irreps, squared=1)


def test_norm_compiles():
    norm = o3.Norm("2x0e + 1x1o")
    x = torch.randn(3, 5)
    torch.testing.assert_close(torch.compile(norm, fullgraph=True)(x), norm(x))


# --------------------------------------------------------------------------- ReducedTensorProducts
def _tensor_D(rtp, R):
    """The action of R on every index, ``(..., D, D)`` with D = prod of the index dims."""
    Ds = [irs.D_from_matrix(R) for irs in rtp.irreps_in]
    out = Ds[0]
    for D in Ds[1:]:
        out = torch.einsum("zab,zcd->zacbd", out, D).flatten(1, 2).flatten(2, 3)
    return out


@pytest.mark.parametrize(
    ("formula", "irreps", "expected"),
    [
        ("ij=ji", {"i": "1o"}, "0e+2e"),
        ("ij=-ji", {"i": "1o"}, "1e"),
        ("ij", {"i": "1o", "j": "1o"}, "0e+1e+2e"),
        ("ijk=jik=ikj", {"i": "1o"}, "1o+3o"),
        ("ijk=-jik=-ikj", {"i": "1o"}, "0o"),
        ("ijkl=jikl=klij", {"i": "1o"}, "2x0e+2x2e+4e"),
        ("ijkl=jikl=ikjl=ijlk", {"i": "1e"}, "0e+2e+4e"),
        ("ijk", {"i": "2x0e+1o", "j": "1e", "k": "0o+1o"}, None),
        ("ij=ji", {"j": "2x1o+0e"}, "4x0e+2x1o+1x1e+3x2e"),
    ],
)
def test_reduced_tensor_products_properties(formula, irreps, expected):
    rtp = o3.ReducedTensorProducts(formula, **irreps).to(F64)
    if expected is not None:
        assert rtp.irreps_out == o3.Irreps(expected)
    Q = rtp.change_of_basis.flatten(1)  # [out, D]
    assert Q.shape[0] == rtp.irreps_out.dim
    torch.testing.assert_close(Q @ Q.T, torch.eye(Q.shape[0], dtype=F64), atol=1e-12, rtol=0)
    # the rows span exactly the tensors with the symmetries (dimension count and invariance)
    indices, gens = o3.reduced_tensor_products.parse_formula(formula)
    group = o3.reduced_tensor_products.symmetry_group(len(indices), gens)
    T = rtp.change_of_basis
    for s, p in group:
        torch.testing.assert_close(s * T.permute(0, *(1 + q for q in p)), T, atol=1e-12, rtol=0)
    P = sum(
        s
        * torch.eye(Q.shape[1], dtype=F64)
        .reshape(-1, *T.shape[1:])
        .permute(0, *(1 + q for q in p))
        .flatten(1)
        for s, p in group
    ) / len(group)
    assert round(float(P.trace())) == Q.shape[0]
    # equivariance, reflections included
    g = torch.Generator().manual_seed(1)
    R = (
        o3.rand_matrix(3, generator=g, dtype=F64)
        * torch.tensor([1.0, -1.0, 1.0], dtype=F64)[:, None, None]
    )
    lhs = Q @ _tensor_D(rtp, R)
    rhs = rtp.irreps_out.D_from_matrix(R) @ Q
    torch.testing.assert_close(lhs, rhs, atol=1e-12, rtol=0)


def test_reduced_tensor_products_forward_is_the_contraction():
    rtp = o3.ReducedTensorProducts("ijk=jik", i="1o+0e", k="2e").to(F64)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(2, 5, 4, generator=g, dtype=F64)
    z = torch.randn(5, generator=g, dtype=F64)  # broadcast against the batch
    ref = torch.einsum("wabc,na,nb,c->nw", rtp.change_of_basis, x, y, z)
    torch.testing.assert_close(rtp(x, y, z), ref, atol=1e-12, rtol=0)
    assert rtp(x[0], y[0], z).shape == (rtp.irreps_out.dim,)


def test_reduced_tensor_products_filters_and_dtype():
    rtp = o3.ReducedTensorProducts("ij", i="1o", j="1o", filter_ir_out=["0e", "2e"])
    assert rtp.irreps_out == o3.Irreps("0e+2e")
    rtp = o3.ReducedTensorProducts("ijk", i="1o", j="1o", k="1o", filter_ir_mid=["1e", "1o"])
    assert rtp.irreps_out == o3.Irreps("1x1o")  # the filter applies to the last coupling too
    full = o3.ReducedTensorProducts("ij=ji", i="1o")
    exact = full.to(F64).change_of_basis.clone()
    torch.testing.assert_close(full.float().double().change_of_basis, exact, atol=0, rtol=0)


def test_reduced_tensor_products_only_zero():
    rtp = o3.ReducedTensorProducts("ij=-ij", i="1o", j="1o")
    assert rtp.irreps_out == o3.Irreps("") and rtp.change_of_basis.shape == (0, 3, 3)


@pytest.mark.parametrize(
    ("formula", "kw", "match"),
    [
        ("ij=ji", {}, "no irreps for index"),
        ("ij=ji", {"i": "1o", "j": "1e"}, "different irreps"),
        ("ij=jk", {"i": "1o"}, "permutation"),
        ("ii", {"i": "1o"}, "distinct letters"),
        ("ij", {"i": "1o", "j": "1o", "k": "1o"}, "not an index"),
        ("-ij=ji", {"i": "1o"}, "without a sign"),
    ],
)
def test_reduced_tensor_products_errors(formula, kw, match):
    with pytest.raises(ValueError, match=match):
        o3.ReducedTensorProducts(formula, **kw)


def test_reduced_tensor_products_wrong_inputs():
    rtp = o3.ReducedTensorProducts("ij=ji", i="1o")
    with pytest.raises(TypeError, match="2 tensors"):
        rtp(torch.zeros(3))
    with pytest.raises(ValueError, match="expected"):
        rtp(torch.zeros(3), torch.zeros(4))


# --------------------------------------------------------------------------- CartesianTensor
def test_cartesian_tensor_irreps_and_round_trip():
    assert o3.CartesianTensor("ij=ji") == o3.Irreps("1x0e+1x2e")
    assert o3.CartesianTensor("ij") == o3.Irreps("0e+1e+2e")  # 3 x 3 = 1 + 3 + 5
    assert o3.CartesianTensor("ij=-ji") == o3.Irreps("1e")
    g = torch.Generator().manual_seed(3)
    t = torch.randn(4, 3, 3, generator=g, dtype=F64)
    for f, proj in (("ij", t), ("ij=ji", (t + t.transpose(1, 2)) / 2)):
        ct = o3.CartesianTensor(f)
        y = ct.from_cartesian(t)
        assert y.shape == (4, ct.dim)
        torch.testing.assert_close(ct.to_cartesian(y), proj, atol=1e-12, rtol=0)
        torch.testing.assert_close(ct.from_cartesian(ct.to_cartesian(y)), y, atol=1e-12, rtol=0)
    # the scalar of a stress tensor is its trace / sqrt(3) (pressure up to a factor)
    ct = o3.CartesianTensor("ij=ji")
    torch.testing.assert_close(
        ct.from_cartesian(t)[:, 0], t.diagonal(dim1=1, dim2=2).sum(-1) / 3**0.5
    )


def test_cartesian_tensor_equivariance_and_vectors():
    ct = o3.CartesianTensor("ijk=jik")
    g = torch.Generator().manual_seed(4)
    t = torch.randn(2, 3, 3, 3, generator=g, dtype=F64)
    R = -o3.rand_matrix(2, generator=g, dtype=F64)
    rt = torch.einsum("zia,zjb,zkc,zabc->zijk", R, R, R, t)
    D = ct.D_from_matrix(R)
    torch.testing.assert_close(
        ct.from_cartesian(rt),
        torch.einsum("zij,zj->zi", D, ct.from_cartesian(t)),
        atol=1e-12,
        rtol=0,
    )
    x, y, z = torch.randn(3, 2, 3, generator=g, dtype=F64)
    outer = torch.einsum("zi,zj,zk->zijk", x, y, z)
    torch.testing.assert_close(
        ct.from_vectors(x, y, z), ct.from_cartesian(outer), atol=1e-12, rtol=0
    )


def test_cartesian_tensor_pickles_and_checks_shape():
    import pickle

    ct = pickle.loads(pickle.dumps(o3.CartesianTensor("ij=ji")))
    assert isinstance(ct, o3.CartesianTensor) and ct.formula == "ij=ji" and ct.indices == "ij"
    with pytest.raises(ValueError, match="expected"):
        ct.from_cartesian(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="expected"):
        ct.to_cartesian(torch.zeros(5))


# --------------------------------------------------------------------------- TensorProduct paths
def test_path_from_e3nn_and_checks():
    assert o3.Path.from_e3nn((0, 1, 2, "uvv", False)) == o3.Path(0, 1, 2, "uvv", False, 1.0)
    assert o3.Path.from_e3nn([0, 1, 2, "uuw", True, 2]).path_weight == 2.0
    p = o3.Path(0, 0, 0)
    assert o3.Path.from_e3nn(p) is p
    with pytest.raises(TypeError, match="instruction"):
        o3.Path.from_e3nn((0, 1, 2))
    with pytest.raises(ValueError, match="path_weight"):
        o3.Path(0, 0, 0, "uvw", True, -1.0)
    with pytest.raises(ValueError, match="needs weights"):
        o3.Path(0, 0, 0, "u<vw", False)


def test_tensor_product_needs_paths_or_instructions():
    with pytest.raises(TypeError, match="needs the paths"):
        o3.TensorProduct("1o", "1o", "0e")
    with pytest.raises(TypeError, match="not both"):
        o3.TensorProduct("1o", "1o", "0e", [(0, 0, 0, "uuu", False)], instructions=[])


@pytest.mark.parametrize(
    ("irreps", "path", "match"),
    [
        (("2x1o", "3x1o", "2x0e"), (0, 0, 0, "uvv", True), "mul_out == mul2"),
        (("2x1o", "3x1o", "2x0e"), (0, 0, 0, "uuw", True), "mul1 == mul2"),
        (("2x1o", "2x1o", "2x0e"), (0, 0, 0, "uuw", False), "mul_out == 1"),
        (("3x1o", "3x1o", "2x0e"), (0, 0, 0, "uvu<v", True), r"mul1 \* \(mul1 - 1\)"),
    ],
)
def test_new_modes_check_multiplicities(irreps, path, match):
    with pytest.raises(ValueError, match=match):
        o3.TensorProduct(*irreps, [path], internal_weights=False)


@pytest.mark.parametrize(
    "path",
    [
        (0, 0, 0, "uvv", True),
        (0, 0, 1, "uuw", True),
        (0, 0, 2, "u<vw", True),
        (0, 0, 3, "uvu<v", True),
        (0, 0, 3, "uvu<v", False),
    ],
)
def test_new_modes_are_equivariant_and_compile(path):
    from equidyn.testing import assert_equivariant

    tp = o3.TensorProduct("3x1o", "3x1o", "3x0e+2x1e+4x2e+3x2e", [path], internal_weights=False)
    tp = tp.to(F64)
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(4, 9, generator=g, dtype=F64)
    x2 = torch.randn(4, 9, generator=g, dtype=F64)
    w = torch.randn(4, tp.weight_numel, generator=g, dtype=F64)
    assert_equivariant(
        tp,
        irreps_in=[tp.irreps_in1, tp.irreps_in2, None],
        irreps_out=[tp.irreps_out],
        args_in=[x1, x2, w],
    )
    torch.testing.assert_close(torch.compile(tp, fullgraph=True)(x1, x2, w), tp(x1, x2, w))


def test_u_less_v_modes_use_the_pairs():
    """uvu<v on x (x) x: channel q = (u, v), u < v, is the product of channels u and v."""
    tp = o3.TensorProduct("3x0e", "3x0e", "3x0e", [(0, 0, 0, "uvu<v", False)])
    x = torch.tensor([[2.0, 3.0, 5.0]])
    torch.testing.assert_close(tp(x, x), torch.tensor([[6.0, 10.0, 15.0]]))


def test_tensor_square_weighted_form():
    sq = o3.TensorSquare("2x0e + 1x1o + 1x1o", "2x0e + 1x1e + 1x2e")
    assert sq.irreps_in == o3.Irreps("2x0e+2x1o") and sq.internal_weights
    x = sq.irreps_in.randn(200, -1, generator=torch.Generator().manual_seed(0))
    assert sq(x).shape == (200, sq.irreps_out.dim)
    ext = o3.TensorSquare("2x1o", "1x0e", internal_weights=False)
    assert ext(torch.randn(5, 6), torch.randn(5, ext.weight_numel)).shape == (5, 1)
    with pytest.raises(ValueError, match="not both"):
        o3.TensorSquare("1o", "0e", filter_ir_out=["0e"])
    with pytest.raises(ValueError, match="no weights"):
        o3.TensorSquare("1o", internal_weights=True)
