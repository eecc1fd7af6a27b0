"""AtomicGraph construction, batching == individual graphs, .to(), compile of a toy energy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equidyn.graph import (
    AtomicGraph,
    apply_strain,
    batch_graphs,
    edge_vectors,
    radius_graph,
    scatter_sum,
    species_index,
)

pytest.importorskip("vesin")

RNG = np.random.default_rng(3)
CELL = np.array([[3.0, 0.0, 0.0], [0.9, 2.7, 0.0], [0.3, -0.5, 2.9]])


def structures():
    mol = radius_graph(RNG.normal(size=(5, 3)), [1, 6, 8, 1, 1], 2.5, energy=-1.0)
    bulk = radius_graph(
        RNG.uniform(0, 1, (4, 3)) @ CELL, [29, 29, 79, 29], 3.2, CELL, True, energy=2.0
    )
    slab = radius_graph(
        RNG.uniform(0, 2, (3, 3)),
        [79, 79, 29],
        2.9,
        np.diag([2.0, 2.2, 0.0]),
        [True, True, False],
        energy=0.5,
    )
    # all graphs of one batch must share r_max: rebuild with 3.0
    return [g.with_edges(3.0) for g in (mol, bulk, slab)]


def pair_energy(pos, cell, edge_index, edge_shift, batch, num_graphs):
    vec = edge_vectors(pos, edge_index, edge_shift, cell, batch)  # [n_edges, 3]
    e_edge = torch.exp(-(vec**2).sum(-1))  # [n_edges]
    e_atom = scatter_sum(e_edge, edge_index[0], pos.shape[0])  # [n_atoms]
    return scatter_sum(e_atom, batch, num_graphs)  # [n_graphs]


def energy_forces_stress(g: AtomicGraph):
    pos = g.pos.clone().requires_grad_(True)
    strain = torch.zeros_like(g.cell, requires_grad=True)
    p, c = apply_strain(pos, g.cell, strain, g.batch)
    e = pair_energy(p, c, g.edge_index, g.edge_shift, g.batch, g.num_graphs)
    dpos, dstrain = torch.autograd.grad(e.sum(), [pos, strain])
    vol = g.volume()
    stress = dstrain / torch.where(vol > 0, vol, torch.ones_like(vol))[:, None, None]
    return e.detach(), -dpos, stress


def test_batch_equals_individual_graphs():
    gs = structures()
    b = batch_graphs(gs)
    assert b.num_graphs == 3 and b.num_nodes == 12
    assert b.num_edges == sum(g.num_edges for g in gs)
    assert b.ptr.tolist() == [0, 5, 9, 12] and b.batch.tolist() == [0] * 5 + [1] * 4 + [2] * 3
    assert b.num_atoms.tolist() == [5, 4, 3]
    assert torch.equal(b.energy, torch.tensor([-1.0, 2.0, 0.5], dtype=torch.float64))
    assert torch.allclose(b.edge_vectors(), torch.cat([g.edge_vectors() for g in gs]))
    eb, fb, sb = energy_forces_stress(b)
    parts = [energy_forces_stress(g) for g in gs]
    assert torch.allclose(eb, torch.cat([p[0] for p in parts]))
    assert torch.allclose(fb, torch.cat([p[1] for p in parts]))
    assert torch.allclose(sb, torch.cat([p[2] for p in parts]))
    # the bulk stress equals the finite-difference strain derivative of the energy
    bulk = gs[1]
    h = 1e-5
    d = torch.zeros(1, 3, 3, dtype=torch.float64)
    d[0, 0, 1] = d[0, 1, 0] = h

    def e_at(eps):
        p, c = apply_strain(bulk.pos, bulk.cell, eps, bulk.batch)
        return pair_energy(p, c, bulk.edge_index, bulk.edge_shift, bulk.batch, 1)

    fd = (e_at(d) - e_at(-d)) / (2 * h) / 2 / bulk.volume()  # d moves two symmetric entries
    assert torch.allclose(parts[1][2][0, 0, 1], fd[0], rtol=1e-6, atol=1e-10)
    # unbatch is the inverse
    for g, u in zip(gs, b.unbatch()):
        for name in (
            "pos",
            "atomic_numbers",
            "edge_index",
            "edge_shift",
            "cell",
            "pbc",
            "batch",
            "ptr",
            "energy",
        ):
            assert torch.equal(getattr(g, name), getattr(u, name)), name
    # batching batches
    bb = batch_graphs([batch_graphs(gs[:2]), gs[2]])
    assert torch.equal(bb.edge_index, b.edge_index) and torch.equal(bb.ptr, b.ptr)


def test_labels_kept_only_when_all_have_them():
    gs = structures()
    gs[0] = AtomicGraph(**{**gs[0].__dict__, "energy": None})
    assert batch_graphs(gs).energy is None


def test_to_dtype_and_device():
    g = batch_graphs(structures())
    g32 = g.to(dtype=torch.float32)
    assert g32.pos.dtype == g32.cell.dtype == g32.energy.dtype == torch.float32
    assert g32.edge_index.dtype == g32.edge_shift.dtype == g32.batch.dtype == torch.int64
    assert g.pos.dtype == torch.float64  # a copy, not in place
    assert torch.allclose(g32.edge_vectors().double(), g.edge_vectors(), atol=1e-5)
    with pytest.raises(TypeError, match="floating"):
        g.to(dtype=torch.int32)


def test_stress_voigt_and_species():
    g = radius_graph(
        torch.zeros(1, 3), [29], 2.0, torch.eye(3) * 3, True, stress=[1, 2, 3, 4, 5, 6]
    )
    assert g.stress[0].tolist() == [[1, 6, 5], [6, 2, 4], [5, 4, 3]]
    z = torch.tensor([79, 29, 1])
    assert species_index(z, [1, 29, 79]).tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match=r"\[79\]"):
        species_index(z, [1, 29])


def test_bad_batches_and_graphs():
    gs = structures()
    with pytest.raises(ValueError, match="r_max"):
        batch_graphs([gs[0], gs[1].with_edges(2.0)])
    with pytest.raises(TypeError, match="dtype"):
        batch_graphs([gs[0], gs[1].to(dtype=torch.float32)])
    with pytest.raises(ValueError, match="empty"):
        batch_graphs([])
    with pytest.raises(TypeError, match="AtomicGraph"):
        batch_graphs([gs[0], "x"])
    with pytest.raises(ValueError, match="atomic numbers"):
        radius_graph(torch.zeros(2, 3), [1], 1.0)
    with pytest.raises(ValueError, match="1..118"):
        radius_graph(torch.zeros(1, 3), [0], 1.0)
    with pytest.raises(ValueError, match="forces"):
        radius_graph(torch.zeros(1, 3), [1], 1.0, forces=torch.zeros(2, 3))


@pytest.mark.parametrize(
    "backend",
    # aot_eager traces the whole graph (dynamo, fullgraph) and its autograd in seconds;
    # inductor adds code generation (minutes on 2 loaded cores): slow, same tracing path.
    ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)],
)
def test_compile_fullgraph_matches_eager(backend):
    torch._dynamo.reset()
    b = batch_graphs(structures()).to(dtype=torch.float32)
    args = (b.cell, b.edge_index, b.edge_shift, b.batch, b.num_graphs)

    def energy_and_forces(pos):
        return pair_energy(pos, *args)

    compiled = torch.compile(energy_and_forces, fullgraph=True, backend=backend)
    pos_c = b.pos.clone().requires_grad_(True)
    pos_e = b.pos.clone().requires_grad_(True)
    e_c, e_e = compiled(pos_c), energy_and_forces(pos_e)
    assert torch.allclose(e_c, e_e, atol=1e-5)
    (f_c,) = torch.autograd.grad(e_c.sum(), pos_c)
    (f_e,) = torch.autograd.grad(e_e.sum(), pos_e)
    assert torch.allclose(f_c, f_e, atol=1e-5)


def test_with_edges_on_a_batch_and_field_checks():
    gs = structures()
    b = batch_graphs(gs)
    rebuilt = b.with_edges(2.5)
    expected = batch_graphs([g.with_edges(2.5) for g in gs])
    assert torch.equal(rebuilt.edge_index, expected.edge_index)
    assert torch.equal(rebuilt.edge_shift, expected.edge_shift) and rebuilt.r_max == 2.5
    fields = dict(b.__dict__)
    with pytest.raises(ValueError, match=r"AtomicGraph.forces must have shape \[12, 3\]"):
        AtomicGraph(**{**fields, "forces": torch.zeros(11, 3)})
    with pytest.raises(ValueError, match=r"AtomicGraph.cell"):
        AtomicGraph(**{**fields, "cell": torch.zeros(3, 3)})
    with pytest.raises(TypeError, match="int64"):
        AtomicGraph(**{**fields, "edge_index": b.edge_index.int()})
    with pytest.raises(TypeError, match="Tensor"):
        AtomicGraph(**{**fields, "pos": b.pos.numpy()})
