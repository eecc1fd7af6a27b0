"""Edge chunking of the convolutions (``set_edge_chunk``): same energies, forces, stress and
training gradients as the whole edge set at once, for NequIP and MACE, in float64."""

from __future__ import annotations

import pytest
import torch

from equidyn.graph.batch import radius_graph
from equidyn.models import MACE, NequIP, set_edge_chunk
from equidyn.models.blocks import RadialWeightedConvolution
from equidyn.models.potential import Potential


def _potential(name: str) -> Potential:
    torch.manual_seed(0)
    if name == "NequIP":
        model = NequIP(num_species=2, r_max=3.5, l_max=2, num_features=4, num_layers=2,
                       radial_hidden=8, avg_num_neighbors=12.0)  # fmt: skip
    else:
        model = MACE(num_species=2, r_max=3.5, hidden_irreps="4x0e+4x1o", l_max=2,
                     correlation=2, radial_mlp=[8])  # fmt: skip
    return Potential(model, [29, 79], [-3.5, -3.8], scale=0.1).double()


def _graph():
    g = torch.Generator().manual_seed(1)
    a = 3.6
    base = torch.tensor([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]) * a
    cells = torch.tensor([[i, j, k] for i in range(2) for j in range(2) for k in range(2)]) * a
    pos = (cells[:, None] + base[None]).reshape(-1, 3).double()
    pos = pos + 0.1 * torch.randn(pos.shape, generator=g, dtype=torch.float64)
    numbers = [29, 79] * (len(pos) // 2)
    return radius_graph(pos, numbers, 3.5, cell=torch.eye(3) * 2 * a, pbc=True)


@pytest.mark.parametrize("name", ["NequIP", "MACE"])
def test_chunked_convolutions_give_the_same_energy_forces_and_stress(name: str) -> None:
    pot, graph = _potential(name), _graph()
    assert graph.num_edges > 400  # several chunks of 97
    whole = pot(graph, compute_forces=True, compute_stress=True)
    assert set_edge_chunk(pot, 97) >= 2  # every interaction layer's convolution
    chunked = pot(graph, compute_forces=True, compute_stress=True)
    for key in ("energy", "forces", "stress"):
        torch.testing.assert_close(chunked[key], whole[key], rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # inference without autograd: plain chunks, no recomputation
        e = pot(graph, compute_forces=False)["energy"]
    torch.testing.assert_close(e, whole["energy"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["NequIP", "MACE"])
def test_chunked_convolutions_give_the_same_training_gradients(name: str) -> None:
    """A force loss differentiates through the forces (double backward) of every chunk."""
    graph = _graph()

    def grads(chunk: int | None) -> list[torch.Tensor]:
        pot = _potential(name)
        set_edge_chunk(pot, chunk)
        out = pot(graph, compute_forces=True, create_graph=True)
        loss = out["energy"].square().sum() + out["forces"].square().sum()
        return torch.autograd.grad(loss, [p for p in pot.parameters() if p.requires_grad],
                                   allow_unused=True)  # fmt: skip

    for a, b in zip(grads(None), grads(113), strict=True):
        if a is None:
            assert b is None
        else:
            torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)


def test_set_edge_chunk_rejects_bad_sizes_and_can_be_undone() -> None:
    conv = RadialWeightedConvolution("2x0e", "1x0e + 1x1o", ["0e", "1o"], [4, 8])
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(ValueError, match="edges per chunk"):
            set_edge_chunk(conv, bad)  # type: ignore[arg-type]
    assert set_edge_chunk(conv, 10) == 1 and conv.edge_chunk == 10
    assert set_edge_chunk(conv, None) == 1 and conv.edge_chunk is None
