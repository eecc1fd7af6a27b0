"""ESCN: the potential battery (natural and full parity, m_max < l_max and = l_max), forces
for edges along the frame's poles, and model specifics."""

from __future__ import annotations

import pytest
import torch
from battery import PotentialBattery, random_cluster

from equidyn.graph.batch import AtomicGraph, radius_graph
from equidyn.models import ESCN, Potential, load_model, save_model
from equidyn.models.registry import build_model


def small_escn(**kw) -> ESCN:
    args = dict(num_species=2, r_max=3.5, l_max=2, m_max=1, num_features=4, num_layers=2,
                radial_hidden=8, avg_num_neighbors=6.0)  # fmt: skip
    args.update(kw)
    return ESCN(**args)


class TestESCNTruncated(PotentialBattery):
    def make_potential(self) -> Potential:
        return Potential(small_escn(), [29, 79], [-1.0, -2.0], scale=0.8)


class TestESCNFullParityExact(PotentialBattery):
    def make_potential(self) -> Potential:
        model = small_escn(l_max=3, m_max=None, parity=True, num_features=2)
        return Potential(model, [29, 79], [-1.0, -2.0], scale=0.8)


def test_forces_for_bonds_along_the_poles_match_finite_differences():
    """Atoms stacked along y (and one bond along -y): the frames' poles; forces are finite and
    equal to a central difference of the energy."""
    pos = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.9, 0.0], [0.0, -2.1, 0.0], [1.8, 0.3, 0.2]],
                       dtype=torch.float64)  # fmt: skip
    pot = Potential(small_escn(l_max=3, m_max=2), [29, 79]).to(torch.float64)
    numbers = torch.tensor([29, 79, 29, 79])

    def energy(p):
        return pot(radius_graph(p, numbers, r_max=3.5), compute_forces=False)["energy"].sum()

    out = pot(radius_graph(pos, numbers, r_max=3.5))
    assert torch.isfinite(out["forces"]).all()
    h = 1e-5
    for a in range(4):
        for c in range(3):
            d = torch.zeros_like(pos)
            d[a, c] = h
            fd = -(energy(pos + d) - energy(pos - d)) / (2 * h)
            torch.testing.assert_close(out["forces"][a, c], fd, atol=1e-7, rtol=1e-6)


def test_m_max_below_l_max_has_fewer_weights_and_save_round_trip(tmp_path):
    full = small_escn(l_max=3, m_max=None)
    cut = small_escn(l_max=3, m_max=1)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(cut) < count(full)
    pot = Potential(cut, [29, 79], [-1.0, -2.0])
    save_model(pot, tmp_path / "escn.pt")
    loaded = load_model(tmp_path / "escn.pt")
    pos, numbers = random_cluster(5)
    g = radius_graph(pos.float(), numbers, r_max=3.5)
    torch.testing.assert_close(loaded(g)["energy"], pot(g)["energy"])
    assert build_model("ESCN", cut.config()).config() == cut.config()


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"m_max must be an int in 0 \.\. l_max = 2"):
        ESCN(l_max=2, m_max=3)
    with pytest.raises(ValueError, match="num_features"):
        ESCN(num_features=0)


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    pot = Potential(small_escn(), [29, 79])
    graphs: list[AtomicGraph] = []
    for seed in range(4):
        pos, numbers = random_cluster(5, seed=seed)
        g = radius_graph(pos.float(), numbers, r_max=3.5)
        graphs.append(g)
    target = torch.tensor([-1.0, 0.5, 2.0, -0.3])
    opt = torch.optim.Adam(pot.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        e = torch.stack([pot(g, compute_forces=False)["energy"].sum() for g in graphs])
        loss = ((e - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_compiled_matches_eager_aot():
    """torch.compile(fullgraph=True) traces ESCN: energy and its gradient (the forces)."""
    torch.manual_seed(0)
    model = small_escn().double()
    pos, numbers = random_cluster(6, seed=2)
    g = radius_graph(pos, numbers, r_max=3.5)
    species = (g.atomic_numbers == 79).long()
    vec = (pos[g.edge_index[1]] - pos[g.edge_index[0]]).detach()

    def energy_and_grad(m):
        edge_vec = vec.clone().requires_grad_(True)
        energy = m(species, g.edge_index, edge_vec).sum()
        return energy.detach(), torch.autograd.grad(energy, edge_vec)[0]

    eager = energy_and_grad(model)
    compiled = energy_and_grad(torch.compile(model, fullgraph=True, backend="aot_eager"))
    torch.testing.assert_close(compiled, eager)
