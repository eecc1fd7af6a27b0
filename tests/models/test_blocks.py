"""The shared building blocks (src/equidyn/models/blocks.py): equivariance, sums, saved keys."""

from __future__ import annotations

import pickle

import pytest
import torch

from equidyn.models.blocks import (
    EdgeEmbedding,
    RadialWeightedConvolution,
    SavedKeyPrefixes,
    gate_irreps,
)
from equidyn.nn import BesselBasis, GaussianBasis, PolynomialCutoff
from equidyn.o3 import Irreps
from equidyn.testing import assert_equivariant

IRREPS = "3x0e + 2x1o + 1x2e"
SH = "1x0e + 1x1o + 1x2e"


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_convolution_edge_messages_equivariant(dtype, tol):
    conv = RadialWeightedConvolution(IRREPS, SH, ["0e", "1o", "2e"], [4, 8], num_filters=2)
    conv = conv.to(dtype)
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(6, d, dtype=dtype, generator=g) for d in (14, 9, 4)]
    for k in range(2):
        assert_equivariant(
            lambda h, y, rad, k=k: conv.edge_messages(h, y, rad)[k],
            irreps_in=[IRREPS, SH, "4x0e"],
            irreps_out=[conv.irreps_out],
            args_in=args,
            atol=tol,
        )


def _graph(n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    pos = torch.randn(n, 3, dtype=dtype, generator=g)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    return pos, torch.stack([i[keep], j[keep]])


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_embedding_and_convolution_on_a_graph_e3_equivariant(dtype, tol):
    emb = EdgeEmbedding(2, BesselBasis(4.0, 5), PolynomialCutoff(4.0, 6)).to(dtype)
    conv = RadialWeightedConvolution(IRREPS, emb.irreps_sh, ["0e", "1o", "2e"], [5, 8]).to(dtype)
    pos, edge_index = _graph(5, dtype)
    x = torch.randn(5, Irreps(IRREPS).dim, dtype=dtype)

    def fn(pos, x):
        sh, radial = emb(pos[edge_index[1]] - pos[edge_index[0]])
        return conv(x, edge_index, sh, radial, 0.5)

    assert_equivariant(
        fn,
        irreps_in=["cartesian_points", IRREPS],
        irreps_out=[conv.irreps_out],
        args_in=[pos, x],
        translations=True,
        atol=tol,
    )


def test_convolution_sums_the_edge_messages_and_permutes_with_nodes():
    torch.manual_seed(0)
    emb = EdgeEmbedding(1, GaussianBasis(0.0, 3.0, 4)).double()
    conv = RadialWeightedConvolution("2x0e + 1x1o", emb.irreps_sh, ["0e", "1o"], [4]).double()
    pos, edge_index = _graph(4, torch.float64)
    x = torch.randn(4, 5, dtype=torch.float64)
    sh, radial = emb(pos[edge_index[1]] - pos[edge_index[0]])
    out = conv(x, edge_index, sh, radial, 0.25)
    messages = conv.edge_messages(x[edge_index[1]], sh, radial)
    by_hand = torch.stack([messages[edge_index[0] == i].sum(0) for i in range(4)]) * 0.25
    torch.testing.assert_close(out, by_hand, rtol=0, atol=1e-12)
    perm = torch.tensor([2, 0, 3, 1])  # node k of the permuted graph is node perm[k]
    inv = torch.argsort(perm)
    out_p = conv(x[perm], inv[edge_index], sh, radial, 0.25)
    torch.testing.assert_close(out_p, out[perm], rtol=0, atol=1e-12)


def test_convolution_without_edges_gives_zeros():
    conv = RadialWeightedConvolution("2x0e", "1x0e + 1x1o", ["0e", "1o"], [3])
    out = conv(torch.randn(3, 2), torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 4), None)
    assert out.shape == (3, conv.irreps_out.dim) and not out.any()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_filters"):
        RadialWeightedConvolution("2x0e", "1x0e", ["0e"], [3], num_filters=0)
    with pytest.raises(ValueError, match="l_max"):
        EdgeEmbedding(-1, GaussianBasis(0.0, 1.0, 3))
    conv = RadialWeightedConvolution("2x0e", "1x0e", ["0e"], [3], num_filters=2)
    with pytest.raises(ValueError, match="one filter"):
        conv(torch.randn(2, 2), torch.tensor([[0], [1]]), torch.ones(1, 1), torch.ones(1, 3))


def test_edge_embedding_values():
    emb = EdgeEmbedding(1, BesselBasis(3.0, 4), PolynomialCutoff(3.0, 6)).double()
    vec = torch.tensor([[0.0, 0.0, 1.5], [3.0, 0.0, 0.0]], dtype=torch.float64)
    sh, radial = emb(vec)
    torch.testing.assert_close(sh[0], torch.tensor([1.0, 0.0, 0.0, 3**0.5], dtype=sh.dtype))
    r = torch.tensor([1.5], dtype=torch.float64)
    expected = emb.basis(r) * emb.cutoff(r)[:, None]
    torch.testing.assert_close(radial[:1], expected, rtol=0, atol=1e-14)
    assert radial[1].abs().max() < 1e-12  # the cutoff vanishes at r_max


def test_gate_irreps_odd_scalars():
    expected = (Irreps("4x0e"), Irreps("3x0e"), Irreps("2x0o+1x1o"))
    assert gate_irreps("4x0e + 2x0o + 1x1o") == expected
    scalars, gates, gated = gate_irreps("4x0e + 2x0o + 1x1o", gate_odd_scalars=False)
    assert (scalars, gates, gated) == (Irreps("4x0e+2x0o"), Irreps("1x0e"), Irreps("1x1o"))
    assert gate_irreps("3x0e") == (Irreps("3x0e"), Irreps(), Irreps())


class _Old(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.radial = torch.nn.Linear(2, 3)
        self.out = torch.nn.Linear(3, 1)


class _New(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Module()
        self.conv.radial = torch.nn.Linear(2, 3)
        self.out = torch.nn.Linear(3, 1)
        SavedKeyPrefixes({"conv.radial.": "radial."}).attach(self)


def test_saved_key_prefixes_round_trip_nested_and_pickle():
    old, new = _Old(), _New()
    assert list(new.state_dict()) == list(old.state_dict())  # same keys, same order
    new.load_state_dict(old.state_dict(), strict=True)
    torch.testing.assert_close(new.conv.radial.weight, old.radial.weight)
    outer = torch.nn.Sequential(_New())  # the hooks see the prefix of a nested module
    assert sorted(outer.state_dict()) == ["0.out.bias", "0.out.weight", "0.radial.bias",
                                          "0.radial.weight"]  # fmt: skip
    outer.load_state_dict(torch.nn.Sequential(_Old()).state_dict(), strict=True)
    clone = pickle.loads(pickle.dumps(new))
    assert list(clone.state_dict()) == list(old.state_dict())
    with pytest.raises(RuntimeError, match="Missing"):
        new.load_state_dict({"out.weight": old.out.weight, "out.bias": old.out.bias})
