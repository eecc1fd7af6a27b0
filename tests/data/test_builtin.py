"""The built-in Cu-Au EMT set: generation, physical labels, caching, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("ase")
pytest.importorskip("vesin")
from ase.calculators.emt import EMT  # noqa: E402

import equidyn.data.builtin as builtin  # noqa: E402
from equidyn.data import builtin_dataset, builtin_dataset_path, collate, graph_to_atoms  # noqa: E402
from equidyn.graph import apply_strain  # noqa: E402

TINY = dict(n_structures=6, frames_per_trajectory=3, steps_between_frames=2, equilibration_steps=2)


def test_generates_caches_and_reloads_identically(tmp_path, monkeypatch):
    graphs = builtin_dataset(seed=1, r_max=4.0, cache_dir=tmp_path, **TINY)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("cuau-emt-") and files[0].suffix == ".npz"
    assert len(graphs) == 6
    for g in graphs:
        assert g.pbc.all() and g.energy.shape == (1,) and g.stress.shape == (1, 3, 3)
        assert 30 <= g.num_nodes <= 32 and set(g.atomic_numbers.tolist()) <= {29, 79}
        assert torch.equal(g.species, (g.atomic_numbers == 79).long())
        assert g.forces.shape == (g.num_nodes, 3) and torch.isfinite(g.forces).all()
        assert g.num_edges > 0 and g.r_max == 4.0
    # trajectories differ and frames within one trajectory differ
    assert len({round(g.energy.item(), 8) for g in graphs}) == 6

    # the second call reads the cache: generation must not run again
    def fail(params):
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(builtin, "_generate_cuau_emt", fail)
    again = builtin_dataset(seed=1, r_max=4.0, cache_dir=tmp_path, **TINY)
    for g, h in zip(graphs, again):
        for name in ("pos", "cell", "energy", "forces", "stress", "edge_index", "edge_shift"):
            assert torch.equal(getattr(g, name), getattr(h, name)), name
    # the environment variable sets the default cache; other parameters give another file
    monkeypatch.setenv("EQUIDYN_CACHE", str(tmp_path))
    assert builtin_dataset_path(seed=1, **TINY) == files[0]
    with pytest.raises(AssertionError, match="regenerated"):
        builtin_dataset_path(seed=2, **TINY)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_reproducible_by_seed_and_labels_are_emt(tmp_path):
    a = builtin_dataset(seed=3, cache_dir=tmp_path / "a", **TINY)
    b = builtin_dataset(seed=3, cache_dir=tmp_path / "b", **TINY)
    c = builtin_dataset(seed=4, cache_dir=tmp_path / "c", **TINY)
    assert all(torch.equal(x.pos, y.pos) and torch.equal(x.energy, y.energy) for x, y in zip(a, b))
    assert not torch.equal(a[0].energy, c[0].energy)
    # labels are EMT's energy (eV), forces (eV/Å) and stress (eV/Å³) of the stored geometry
    g = a[4]
    atoms = graph_to_atoms(g)[0]
    atoms.calc = EMT()
    assert abs(atoms.get_potential_energy() - g.energy.item()) < 1e-9
    assert np.allclose(atoms.get_forces(), g.forces.numpy(), atol=1e-9)
    assert np.allclose(atoms.get_stress(voigt=False), g.stress[0].numpy(), atol=1e-10)

    # stress = (1/V) dE/d(strain) under equidyn's apply_strain (finite differences of EMT)
    def emt_energy(eps):
        p, c = apply_strain(g.pos, g.cell[0], eps)
        atoms.set_cell(c.numpy(), scale_atoms=False)
        atoms.positions = p.numpy()
        return atoms.get_potential_energy()

    h = 1e-5
    d = torch.zeros(3, 3, dtype=torch.float64)
    d[0, 0] = h
    fd = (emt_energy(d) - emt_energy(-d)) / (2 * h) / g.volume().item()
    assert abs(fd - g.stress[0, 0, 0].item()) < 1e-6 * max(1.0, abs(fd))
    # temperatures: the kinetic energy is not stored, but a batch collates
    assert collate(a).num_graphs == 6


def test_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match="unknown built-in data set 'qm9'"):
        builtin_dataset("qm9", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="n_structures"):
        builtin_dataset(n_structures=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="temperatures"):
        builtin_dataset(n_structures=2, temperatures=[300, -5], cache_dir=tmp_path)
    with pytest.raises(ValueError, match="seed"):
        builtin_dataset(n_structures=2, seed=-1, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
