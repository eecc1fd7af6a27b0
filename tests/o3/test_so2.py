"""Tests of equidyn.o3.so2: edge frames, the SO(2) convolution = tensor product identity,
equivariance with reflections (also for m_max < L), finite gradients on and along the axis and
for zero-length edges, normalization and errors."""

from __future__ import annotations

import pytest
import torch

from equidyn import o3
from equidyn.testing import assert_equivariant, default_tolerance

F64 = torch.float64


def _special_vectors(dtype=F64) -> torch.Tensor:
    """Edges on +y and -y (the poles of this frame construction), on +z and -z (the poles of
    z-polar constructions), along x, a near-pole direction on each side, one random direction."""
    return torch.tensor(
        [[0.0, 1.3, 0.0], [0.0, -0.7, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.4],
         [1e-9, 1.0, -1e-9], [1e-9, -1.0, 2e-9], [0.3, -0.4, 1.2]],
        dtype=dtype,
    )  # fmt: skip


def _sum_over_l2(conv: o3.SO2Convolution, tp: o3.ChannelwiseTensorProduct, out_tp):
    """S tp(...): the product's blocks summed per (input block, output irrep)."""
    index = {blk: o for o, blk in enumerate(conv.blocks)}
    S = out_tp.new_zeros(out_tp.shape[0], conv.irreps_out.dim)
    sl_c, sl_t = conv.irreps_out.slices(), tp.irreps_out.slices()
    for p in tp.paths:
        S[:, sl_c[index[(p.in1, tp.irreps_out[p.out].ir)]]] += out_tp[:, sl_t[p.out]]
    return S


# --------------------------------------------------------------------------------- edge frames


def test_edge_frame_is_a_rotation_taking_e_y_to_the_edge():
    vec = torch.cat([_special_vectors(), torch.randn(50, 3, dtype=F64)])
    R = o3.edge_frame(vec)
    eye = torch.eye(3, dtype=F64).expand_as(R)
    torch.testing.assert_close(R.transpose(-1, -2) @ R, eye, atol=1e-14, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(len(vec), dtype=F64))
    torch.testing.assert_close(R[:, :, 1], vec / vec.norm(dim=-1, keepdim=True), atol=1e-15, rtol=0)


def test_edge_frame_of_a_zero_vector_is_the_identity_with_finite_gradients():
    vec = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    R = o3.edge_frame(vec)
    torch.testing.assert_close(R, torch.eye(3, dtype=F64).expand(2, 3, 3))
    (g,) = torch.autograd.grad(R.sum(), vec)
    assert torch.isfinite(g).all()


def test_edge_wigner_D_is_the_wigner_D_of_the_frame():
    vec = torch.cat([_special_vectors(), torch.randn(20, 3, dtype=F64)])
    R = o3.edge_frame(vec)
    D = o3.edge_wigner_D(vec, 4)
    for l in range(5):
        torch.testing.assert_close(D[l], o3.wigner_D(l, R), atol=1e-13, rtol=0)
    # the edge direction becomes e_y: Y(r) rotated into the frame is Y(e_y)
    sh = o3.Irreps.spherical_harmonics(4)
    Y = o3.spherical_harmonics(sh, vec, normalize=True, normalization="component")
    Yf = o3.rotate_to_edge_frame(Y, sh, D)
    e_y = torch.tensor([[0.0, 1.0, 0.0]], dtype=F64)
    Y_pole = o3.spherical_harmonics(sh, e_y, normalize=True, normalization="component")
    torch.testing.assert_close(Yf, Y_pole.expand_as(Yf), atol=1e-12, rtol=0)


def test_rotation_round_trip_and_bad_wigner():
    irreps = o3.Irreps("2x0e + 1x1e + 3x2o + 1x3o")
    vec, x = torch.randn(6, 3, dtype=F64), torch.randn(6, irreps.dim, dtype=F64)
    D = o3.edge_wigner_D(vec, 3)
    back = o3.rotate_from_edge_frame(o3.rotate_to_edge_frame(x, irreps, D), irreps, D)
    torch.testing.assert_close(back, x, atol=1e-13, rtol=0)
    with pytest.raises(ValueError, match=r"up to l = 3.*edge_wigner_D\(vec, 3\)"):
        o3.rotate_to_edge_frame(x, irreps, D[:3])
    with pytest.raises(ValueError, match="last dimension 27"):
        o3.rotate_to_edge_frame(x[:, :5], irreps, D)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        o3.edge_frame(torch.randn(4, 2))
    with pytest.raises(ValueError, match="l_max must be an int >= 0"):
        o3.edge_wigner_D(vec, -1)


# ------------------------------------------------------------- the identity with the TP


@pytest.mark.parametrize(
    "irreps, L",
    [
        ("3x0e + 3x1o + 3x2e + 3x3o", 3),  # conv-L's natural parities
        ("2x0e + 2x0o + 2x1o + 2x1e + 2x2e + 2x2o", 2),  # both parities: A- and B-type pairs
        ("2x0e + 2x1o + 2x2e", 4),  # harmonics of higher order than the features
        ("1x0e + 1x1o + 1x2e + 1x3o + 1x4e + 1x5o", 5),
    ],
)
def test_so2_convolution_equals_the_channelwise_tensor_product(irreps, L):
    irreps = o3.Irreps(irreps)
    sh = o3.Irreps.spherical_harmonics(L)
    filt = sorted({ir for _, ir in irreps} | {o3.Irrep("1e"), o3.Irrep("2o")})
    tp = o3.ChannelwiseTensorProduct(irreps, sh, filt).to(F64)
    conv = o3.SO2Convolution(irreps, filt, m_max=max(L, irreps.lmax)).to(F64)
    gen = torch.Generator().manual_seed(1)
    vec = torch.cat([_special_vectors(), torch.randn(9, 3, dtype=F64, generator=gen)])
    x = torch.randn(len(vec), irreps.dim, dtype=F64, generator=gen)
    w = torch.randn(len(vec), tp.weight_numel, dtype=F64, generator=gen)
    Y = o3.spherical_harmonics(sh, vec, normalize=True, normalization="component")
    expected = _sum_over_l2(conv, tp, tp(x, Y, w))
    T = conv.weights_from_tensor_product(tp)
    got = conv(x, vec, w @ T)
    assert expected.abs().max() > 1.0
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_the_weight_map_is_injective_and_sparse():
    """Every product weight reaches its own SO(2) coefficients: distinct product weights give
    distinct convolutions (T has full row rank), and T only couples equal channels."""
    irreps = o3.Irreps("2x0e + 2x1o + 2x2e")
    sh = o3.Irreps.spherical_harmonics(2)
    tp = o3.ChannelwiseTensorProduct(irreps, sh, ["0e", "1o", "2e"])
    conv = o3.SO2Convolution(irreps, ["0e", "1o", "2e"])
    T = conv.weights_from_tensor_product(tp)
    assert torch.linalg.matrix_rank(T) == tp.weight_numel
    assert conv.weight_numel >= tp.weight_numel


def test_weight_map_errors():
    irreps = o3.Irreps("2x0e + 2x1o + 2x2e")
    tp = o3.ChannelwiseTensorProduct(irreps, o3.Irreps.spherical_harmonics(2), ["0e", "1o", "2e"])
    with pytest.raises(ValueError, match="needs m_max >= 2"):
        o3.SO2Convolution(irreps, ["0e", "1o", "2e"], m_max=1).weights_from_tensor_product(tp)
    with pytest.raises(ValueError, match="does not make"):
        o3.SO2Convolution(irreps, ["0e", "1o"]).weights_from_tensor_product(tp)
    with pytest.raises(ValueError, match="tp.irreps_in1"):
        o3.SO2Convolution("2x0e", ["0e"]).weights_from_tensor_product(tp)


# ----------------------------------------------------------------------------- equivariance


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("m_max", [0, 1, 3])
def test_so2_convolution_is_equivariant_with_reflections(dtype, m_max):
    irreps = o3.Irreps("2x0e + 2x1o + 2x1e + 2x2e + 1x3o")
    conv = o3.SO2Convolution(irreps, ["0e", "0o", "1o", "1e", "2e", "3o"], m_max=m_max).to(dtype)
    gen = torch.Generator().manual_seed(2)
    vec = torch.randn(8, 3, dtype=dtype, generator=gen)
    x = torch.randn(8, irreps.dim, dtype=dtype, generator=gen)
    w = torch.randn(8, conv.weight_numel, dtype=dtype, generator=gen)
    errors = assert_equivariant(
        conv, [irreps, "1o", None], [conv.irreps_out], args_in=[x, vec, w], n_samples=3,
        atol=default_tolerance(dtype),
    )  # fmt: skip
    assert set(errors) == {"proper rotation", "improper rotation"}


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("m_max", [0, 2, 4])
def test_so2_linear_between_frames_is_equivariant_with_reflections(dtype, m_max):
    """D SO2Linear(s(|r|) D^T x) for every m_max <= L: the truncation stays exact."""
    irreps_in = o3.Irreps("3x0e + 2x0o + 3x1o + 2x1e + 2x2e + 2x3o + 1x4e")
    irreps_out = o3.Irreps("2x0e + 2x1o + 1x1e + 2x2e + 1x2o + 1x4e")
    lin = o3.SO2Linear(irreps_in, irreps_out, m_max=m_max).to(dtype)
    radial = torch.nn.Linear(1, lin.num_scales).to(dtype)

    def fn(x, vec):
        D = o3.edge_wigner_D(vec, 4)
        scale = radial(vec.norm(dim=-1, keepdim=True))
        y = lin(o3.rotate_to_edge_frame(x, irreps_in, D), scale)
        return o3.rotate_from_edge_frame(y, irreps_out, D)

    gen = torch.Generator().manual_seed(3)
    vec = torch.cat([_special_vectors(dtype), torch.randn(5, 3, dtype=dtype, generator=gen)])
    x = torch.randn(len(vec), irreps_in.dim, dtype=dtype, generator=gen)
    assert_equivariant(fn, [irreps_in, "1o"], [irreps_out], args_in=[x, vec], n_samples=3,
                       atol=default_tolerance(dtype))  # fmt: skip


def test_a_map_that_breaks_the_so2_form_is_caught():
    """Sanity of the check above: a frame map coupling +m with +m and -m with -m by
    different coefficients is not equivariant, and the test battery sees it."""
    irreps = o3.Irreps("1x1o")

    def broken(x, vec):
        D = o3.edge_wigner_D(vec, 1)
        xf = o3.rotate_to_edge_frame(x, irreps, D) * torch.tensor([1.0, 1.0, 2.0], dtype=F64)
        return o3.rotate_from_edge_frame(xf, irreps, D)

    with pytest.raises(AssertionError):
        assert_equivariant(broken, [irreps, "1o"], [irreps])


# -------------------------------------------------------------------- gradients, edge cases


@pytest.mark.parametrize("module", ["conv", "linear"])
def test_finite_forces_and_double_backward_on_the_axis_and_at_zero_length(module):
    irreps = o3.Irreps("2x0e + 2x1o + 2x2e")
    vec = torch.cat([_special_vectors(), torch.zeros(1, 3, dtype=F64)]).requires_grad_(True)
    x = torch.randn(len(vec), irreps.dim, dtype=F64)
    if module == "conv":
        conv = o3.SO2Convolution(irreps, ["0e", "1o", "2e"]).to(F64)
        w = torch.randn(len(vec), conv.weight_numel, dtype=F64)
        out = conv(x, vec, w)
    else:
        lin = o3.SO2Linear(irreps, irreps, m_max=1).to(F64)
        D = o3.edge_wigner_D(vec, 2)
        out = o3.rotate_from_edge_frame(lin(o3.rotate_to_edge_frame(x, irreps, D)), irreps, D)
    energy = (out**2).sum()
    (g,) = torch.autograd.grad(energy, vec, create_graph=True)
    assert torch.isfinite(out).all() and torch.isfinite(g).all()
    (gg,) = torch.autograd.grad(g.square().sum(), vec)
    assert torch.isfinite(gg).all()


def test_gradient_matches_finite_differences_next_to_the_poles():
    """The frame's branch switch at r_y = 0 and the poles are invisible in the output: the
    autograd gradient equals a central difference there."""
    irreps = o3.Irreps("1x0e + 1x1o + 1x2e + 1x3o")
    conv = o3.SO2Convolution(irreps, ["0e", "1o", "2e", "3o"]).to(F64)
    x = torch.randn(1, irreps.dim, dtype=F64)
    w = torch.randn(1, conv.weight_numel, dtype=F64)
    for v in ([0.0, 1.0, 0.0], [0.0, -1.0, 0.0], [0.6, 0.0, 0.8], [0.3, 1e-12, -0.2]):
        vec = torch.tensor([v], dtype=F64, requires_grad=True)
        f = lambda r: (conv(x, r, w) ** 2).sum()  # noqa: E731
        (g,) = torch.autograd.grad(f(vec), vec)
        h = 1e-6
        fd = torch.stack(
            [
                (f(vec.detach() + h * e) - f(vec.detach() - h * e)) / (2 * h)
                for e in torch.eye(3, dtype=F64)
            ]
        )
        torch.testing.assert_close(g[0], fd, atol=1e-6, rtol=1e-6)


def test_so2_linear_keeps_unit_variance_and_drops_high_m():
    irreps = o3.Irreps("16x0e + 16x1o + 16x2e")
    lin = o3.SO2Linear(irreps, irreps, m_max=1)
    y = lin(torch.randn(4000, irreps.dim))
    # components with |m| <= 1 carry unit variance, the |m| = 2 ones of l = 2 are dropped
    blocks = y[:, 64:].unflatten(-1, (16, 5))
    assert blocks[..., [0, 4]].abs().max() == 0
    assert 0.8 < y[:, :16].var().item() < 1.25
    assert 0.8 < blocks[..., 1:4].var().item() < 1.25


def test_parameter_counts_and_compile():
    conv = o3.SO2Convolution("4x0e + 4x1o", ["0e", "1o", "1e"])
    # (0e->0e: a0), (0e->1o: a0), (1o->0e: a0), (1o->1o: a0, a1), (1o->1e: b1); 4 channels
    assert conv.weight_numel == 4 * (1 + 1 + 1 + 2 + 1)
    assert str(conv.irreps_out) == "4x0e+4x0e+4x1o+4x1o+4x1e"
    lin = o3.SO2Linear("4x0e + 4x1o", "4x0e + 4x1o + 2x1e", m_max=1)
    # m=0: (8 in) x (8 out) A-type; m=1: 1o->1o A 4x4, 1o->1e B 4x2
    assert sum(p.numel() for p in lin.parameters()) == 8 * 8 + 16 + 8
    vec, x = torch.randn(5, 3), torch.randn(5, 16)
    D = o3.edge_wigner_D(vec, 1)
    eager = lin(o3.rotate_to_edge_frame(x, "4x0e + 4x1o", D))
    compiled = torch.compile(lin, fullgraph=True)(o3.rotate_to_edge_frame(x, "4x0e + 4x1o", D))
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)


def test_bad_input_errors():
    conv = o3.SO2Convolution("2x0e + 2x1o", ["0e", "1o"])
    x, vec = torch.randn(3, 8), torch.randn(3, 3)
    with pytest.raises(ValueError, match="weight must have last dimension"):
        conv(x, vec, torch.randn(3, 2))
    with pytest.raises(ValueError, match="external weights: pass weight"):
        conv(x, vec)
    with pytest.raises(ValueError, match="needs edge_vec or wigner"):
        conv(x, weight=torch.randn(3, conv.weight_numel))
    with pytest.raises(ValueError, match="m_max must be an int >= 0"):
        o3.SO2Linear("2x0e", "2x0e", m_max=-1)
    with pytest.raises(ValueError, match="x must have last dimension 8"):
        o3.SO2Linear("2x0e + 2x1o", "2x0e")(torch.randn(3, 7))
    shared = o3.SO2Convolution("2x0e + 2x1o", ["0e", "1o"], internal_weights=True)
    assert shared(x, vec).shape == (3, shared.irreps_out.dim)
