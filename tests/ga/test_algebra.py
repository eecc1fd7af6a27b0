"""The G(3,0,1) algebra against the ``kingdon`` package (a test-only oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equidyn import o3
from equidyn.ga import blades, embedding, products, versors

kingdon = pytest.importorskip("kingdon")

ALG = kingdon.Algebra(3, 0, 1)  # e0 null, e1 e2 e3 positive: the same generators
KEYS = tuple(sum(1 << g for g in b) for b in blades.BLADES)  # our blade order as bitmasks


def to_kingdon(x: torch.Tensor):
    return ALG.multivector(values=x.T.numpy(), keys=KEYS)  # values [16, batch]


def from_kingdon(mv, batch: int) -> torch.Tensor:
    out = np.zeros((16, batch))
    for k, v in zip(mv.keys(), mv.values()):
        out[KEYS.index(k)] = v
    return torch.from_numpy(out).T


@pytest.fixture
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(20, 16, generator=g, dtype=torch.float64) for _ in range(2))


def test_blade_order_is_clifford_order():
    assert blades.BLADE_NAMES == (
        "1", "e0", "e1", "e2", "e3", "e01", "e02", "e03", "e12", "e13", "e23",
        "e012", "e013", "e023", "e123", "e0123",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (products.geometric_product, "gp"),
        (products.outer_product, "op"),
        (products.inner_product, "ip"),
        (products.join, "rp"),
    ],
)
def test_products_match_kingdon(pair, ours, theirs):
    x, y = pair
    expected = from_kingdon(getattr(ALG, theirs)(to_kingdon(x), to_kingdon(y)), len(x))
    torch.testing.assert_close(ours(x, y), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (products.reverse, "reverse"),
        (products.grade_involution, "involute"),
        (products.dual, "dual"),
    ],
)
def test_unary_maps_match_kingdon(pair, ours, theirs):
    x = pair[0]
    expected = from_kingdon(getattr(to_kingdon(x), theirs)(), len(x))
    torch.testing.assert_close(ours(x), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("k", range(5))
def test_grade_projection_matches_kingdon(pair, k):
    x = pair[0]
    expected = from_kingdon(to_kingdon(x).grade(k), len(x))
    torch.testing.assert_close(products.grade_project(x, k), expected, atol=1e-12, rtol=0)


def test_undual_inverts_dual(pair):
    x = pair[0]
    torch.testing.assert_close(products.undual(products.dual(x)), x, atol=0, rtol=0)


def test_invariant_inner_is_scalar_part_of_reverse_product(pair):
    x, y = pair
    e0_free = torch.tensor([0 not in b for b in blades.BLADES], dtype=torch.float64)
    xe, ye = x * e0_free, y * e0_free
    expected = products.geometric_product(products.reverse(xe), ye)[..., 0]
    torch.testing.assert_close(products.invariant_inner(x, y), expected, atol=1e-12, rtol=0)


def test_bad_shapes_and_grades():
    with pytest.raises(ValueError, match=r"\(\.\.\., 16\)"):
        products.geometric_product(torch.zeros(3, 15), torch.zeros(3, 16))
    with pytest.raises(ValueError, match="grade must be"):
        products.grade_project(torch.zeros(16), 5)
    with pytest.raises(ValueError, match="not invertible"):
        versors.versor_inverse(torch.eye(16)[1])  # e0 is null
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        embedding.embed_point(torch.zeros(4))


def _float64(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_versors_act_on_points_as_euclidean_motions():
    p, t = _float64(7, 3), _float64(7, 3, seed=2)
    q = o3.rand_quaternion(7, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    P = embedding.embed_point(p)
    moved = embedding.extract_point(versors.sandwich(embedding.embed_translation(t), P))
    torch.testing.assert_close(moved, p + t, atol=1e-12, rtol=0)
    rotated = embedding.extract_point(versors.sandwich(embedding.embed_rotation(q), P))
    R = o3.quaternion_to_matrix(q)
    torch.testing.assert_close(rotated, torch.einsum("bij,bj->bi", R, p), atol=1e-12, rtol=0)
    n = torch.nn.functional.normalize(_float64(7, 3, seed=4), dim=-1)
    d = _float64(7, 1, seed=5)
    reflected = embedding.extract_point(versors.sandwich(embedding.embed_plane(n, d), P))
    expected = p - 2 * ((p * n).sum(-1, keepdim=True) - d) * n
    torch.testing.assert_close(reflected, expected, atol=1e-12, rtol=0)
    # directions rotate and ignore translations
    v = embedding.embed_direction(p)
    torch.testing.assert_close(
        versors.sandwich(embedding.embed_translation(t), v), v, atol=1e-12, rtol=0
    )


def test_round_trips_of_embeddings():
    p, q = _float64(5, 3), o3.rand_quaternion(5, dtype=torch.float64)
    s, off = _float64(5, 1), _float64(5, 1, seed=3)
    torch.testing.assert_close(embedding.extract_point(embedding.embed_point(p)), p)
    torch.testing.assert_close(embedding.extract_direction(embedding.embed_direction(p)), p)
    torch.testing.assert_close(embedding.extract_scalar(embedding.embed_scalar(s)), s)
    torch.testing.assert_close(embedding.extract_rotation(embedding.embed_rotation(q)), q)
    torch.testing.assert_close(embedding.extract_translation(embedding.embed_translation(p)), p)
    n, d = embedding.extract_plane(embedding.embed_plane(p, off))
    torch.testing.assert_close((n, d), (p, off))
    # a point on the plane n·y = d: their outer product vanishes (incidence)
    on_plane = p + (off - (p * p).sum(-1, keepdim=True)) / (p * p).sum(-1, keepdim=True) * p
    meet = products.outer_product(embedding.embed_plane(p, off), embedding.embed_point(on_plane))
    torch.testing.assert_close(meet, torch.zeros_like(meet), atol=1e-12, rtol=0)


def test_products_compile_and_match_eager(pair):
    x, y = pair
    fn = torch.compile(
        lambda a, b: products.join(products.geometric_product(a, b), b), fullgraph=True
    )
    torch.testing.assert_close(fn(x, y), products.join(products.geometric_product(x, y), y))
