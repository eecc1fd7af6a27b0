"""Pin(3,0,1) equivariance of the GATr layers, and completeness of the linear basis maps."""

from __future__ import annotations

import pytest
import torch

from equidyn import ga, o3
from equidyn.testing import default_tolerance


def group_elements(dtype: torch.dtype, seed: int = 0) -> dict[str, torch.Tensor]:
    """Versors ``(16,)``: a rotation, a translation, a reflection in an offset plane and a
    composite odd element (all three)."""
    g = torch.Generator().manual_seed(seed)
    q = o3.rand_quaternion(dtype=torch.float64, generator=g)
    t = torch.randn(3, generator=g, dtype=torch.float64)
    n = torch.nn.functional.normalize(torch.randn(3, generator=g, dtype=torch.float64), dim=0)
    rot, trans = ga.embed_rotation(q), ga.embed_translation(t)
    refl = ga.embed_plane(n, torch.randn(1, generator=g, dtype=torch.float64))
    both = ga.geometric_product(ga.geometric_product(refl, trans), rot)
    elements = {"rotation": rot, "translation": trans, "reflection": refl, "composite": both}
    return {k: v.to(dtype) for k, v in elements.items()}


def act(u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x @ ga.versor_matrix(u).T


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max().detach() / b.abs().max().detach().clamp_min(1e-30))


def test_basis_maps_span_exactly_the_equivariant_maps():
    # M commutes with every ρ_g  <=>  (ρ_g ⊗ I − I ⊗ ρ_gᵀ) vec(M) = 0 (row-major vec)
    eye = torch.eye(16, dtype=torch.float64)
    rows = []
    for seed in range(3):
        for u in group_elements(torch.float64, seed).values():
            rho = ga.versor_matrix(u)
            rows.append(torch.kron(rho, eye) - torch.kron(eye, rho.T.contiguous()))
    constraints = torch.cat(rows)  # [n_constraints, 256]
    sv = torch.linalg.svdvals(constraints)
    null_dim = int((sv < 1e-9 * sv[0]).sum())
    assert null_dim == 9
    maps = ga.basis_maps().reshape(9, 256)
    assert (constraints @ maps.T).abs().max() < 1e-12  # each basis map is equivariant
    assert torch.linalg.matrix_rank(maps) == 9  # and they are independent: they span it


def test_join_needs_the_reference_pseudoscalar():
    g = torch.Generator().manual_seed(1)
    x, y = (torch.randn(16, generator=g, dtype=torch.float64) for _ in range(2))
    ref = torch.randn(16, generator=g, dtype=torch.float64)
    u = group_elements(torch.float64)["reflection"]
    plain = ga.join(act(u, x), act(u, y))
    assert relative_error(plain, act(u, ga.join(x, y))) > 1e-3  # off by the reflection's sign
    equi = ga.equi_join(act(u, x), act(u, y), act(u, ref))
    assert relative_error(equi, act(u, ga.equi_join(x, y, ref))) < 1e-12


def _layers(dtype: torch.dtype) -> dict[str, tuple[torch.nn.Module, bool]]:
    """name -> (layer, takes a reference multivector)."""
    torch.manual_seed(0)
    attention = ga.GeometricAttention(3, 2, n_heads=2, head_channels=2, head_scalars=2)
    net = ga.GATrNet(
        3, 2, in_scalars=2, out_scalars=3, channels=4, scalars=4, n_blocks=2, n_heads=2
    )
    layers = {
        "linear": (ga.EquiLinear(3, 4, in_scalars=2, out_scalars=3), False),
        "bilinear": (ga.GeometricBilinear(3, 4, in_scalars=2, out_scalars=3), True),
        "gate": (ga.GatedGELU(), False),
        "norm": (ga.EquiLayerNorm(), False),
        "attention": (attention, False),
        "block": (ga.GATrBlock(3, 2, n_heads=2), False),
        "net": (net, False),
    }
    return {k: (m.to(dtype), r) for k, (m, r) in layers.items()}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    "name", ["linear", "bilinear", "gate", "norm", "attention", "block", "net"]
)
def test_layer_is_pin_and_permutation_equivariant(name, dtype):
    layer, with_ref = _layers(dtype)[name]
    g = torch.Generator().manual_seed(2)
    mv = torch.randn(2, 5, 3, 16, generator=g, dtype=torch.float64).to(dtype)
    s = torch.randn(2, 5, 2, generator=g, dtype=torch.float64).to(dtype)
    ref = torch.randn(2, 1, 1, 16, generator=g, dtype=torch.float64).to(dtype)

    def run(mv_in, s_in, ref_in):
        return layer(mv_in, s_in, ref_in) if with_ref else layer(mv_in, s_in)

    out_mv, out_s = run(mv, s, ref)
    tol = default_tolerance(dtype)
    for kind, u in group_elements(dtype).items():
        t_mv, t_s = run(act(u, mv), s, act(u, ref))
        assert relative_error(t_mv, act(u, out_mv)) < tol, kind
        if out_s is not None:
            assert relative_error(t_s, out_s) < tol, kind
    perm = torch.randperm(5, generator=g)
    p_mv, p_s = run(mv[:, perm], s[:, perm], ref)
    assert relative_error(p_mv, out_mv[:, perm]) < tol
    if out_s is not None:
        assert relative_error(p_s, out_s[:, perm]) < tol


def test_attention_sees_distances_between_points():
    # Points only: values are linear in the positions, and the invariant inner product of two
    # points is a constant, so without the distance term the weights would not change when the
    # configuration is scaled by 2 and the output's ideal part would scale exactly by 2.
    torch.manual_seed(0)
    attn = ga.GeometricAttention(1, 0, n_heads=1, head_channels=1, head_scalars=0).double()
    pts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]], dtype=torch.float64)
    a, _ = attn(ga.embed_point(pts)[None, :, None])  # [1, 3, 1, 16]
    b, _ = attn(ga.embed_point(2 * pts)[None, :, None])
    assert relative_error(b[..., 11:14], 2 * a[..., 11:14]) > 1e-3


def test_linear_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 16\)"):
        ga.EquiLinear(3, 2)(torch.zeros(4, 2, 16))
    with pytest.raises(ValueError, match="in_channels"):
        ga.EquiLinear(0, 2)


@pytest.mark.slow  # ~35 s of compilation; the products' compile test is in the fast suite
def test_net_compiles_and_matches_eager():
    torch.manual_seed(0)
    net = ga.GATrNet(2, 1, in_scalars=1, channels=4, scalars=4, n_blocks=1, n_heads=2)
    mv, s = torch.randn(2, 4, 2, 16), torch.randn(2, 4, 1)
    compiled = torch.compile(net, fullgraph=True)
    torch.testing.assert_close(compiled(mv, s)[0], net(mv, s)[0], atol=1e-5, rtol=1e-5)
