"""Reading labelled structures through ASE: round trips, keys, units, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("ase")
pytest.importorskip("vesin")
import ase  # noqa: E402
import ase.io  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402

from equidyn.data import (  # noqa: E402
    atoms_to_graph,
    collate,
    read_structures,
    type_map_numbers,
    write_structures,
)

RNG = np.random.default_rng(0)


def labelled(n_atoms, symbols="CuAu", periodic=True, seed=0):
    rng = np.random.default_rng(seed)
    cell = np.diag([4.0, 4.2, 3.9]) + rng.uniform(-0.3, 0.3, (3, 3)) if periodic else None
    numbers = rng.choice([ase.Atoms(symbols).numbers[0], ase.Atoms(symbols).numbers[-1]], n_atoms)
    atoms = ase.Atoms(
        numbers=numbers, positions=rng.uniform(0, 4, (n_atoms, 3)), cell=cell, pbc=periodic
    )
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=float(rng.normal()),
        forces=rng.normal(size=(n_atoms, 3)),
        stress=rng.normal(size=6) * 1e-2,
    )
    return atoms


def test_extxyz_round_trip(tmp_path):
    frames = [labelled(5, seed=1), labelled(3, seed=2), labelled(4, "CO", periodic=False, seed=3)]
    path = tmp_path / "set.xyz"
    ase.io.write(path, frames, format="extxyz")
    graphs = read_structures(path, r_max=3.0)
    assert len(graphs) == 3
    for atoms, g in zip(frames, graphs):
        assert g.pos.dtype == torch.float64
        assert np.allclose(g.pos.numpy(), atoms.positions, atol=1e-7)
        assert g.atomic_numbers.tolist() == atoms.numbers.tolist()
        assert np.allclose(g.cell[0].numpy(), atoms.cell[:], atol=1e-7)
        assert g.pbc[0].tolist() == atoms.pbc.tolist()
        assert abs(g.energy.item() - atoms.get_potential_energy()) < 1e-7
        assert np.allclose(g.forces.numpy(), atoms.get_forces(), atol=1e-7)
        assert np.allclose(g.stress[0].numpy(), atoms.get_stress(voigt=False), atol=1e-7)
        assert g.r_max == 3.0 and float(g.edge_vectors().norm(dim=1).max()) < 3.0
    # equidyn's own writer, then reading back, gives the same graphs
    out = tmp_path / "again.xyz"
    write_structures([collate(graphs[:2]), graphs[2]], out)
    again = read_structures(out, r_max=3.0, dtype=torch.float32)
    for g, h in zip(graphs, again):
        assert h.pos.dtype == torch.float32
        assert torch.equal(g.edge_index, h.edge_index) and torch.equal(g.edge_shift, h.edge_shift)
        assert torch.allclose(g.stress.float(), h.stress, atol=1e-6)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_custom_keys_type_map_and_no_edges(tmp_path):
    atoms = ase.Atoms("H2O", positions=[[0, 0, 0], [0, 0, 0.96], [0.93, 0, -0.24]])
    atoms.info["REF_energy"] = -14.2
    atoms.arrays["REF_forces"] = RNG.normal(size=(3, 3))
    atoms.info["virial_free"] = 1.0
    path = tmp_path / "water.extxyz"
    ase.io.write(path, [atoms, atoms])
    gs = read_structures(
        path, r_max=None, energy_key="REF_energy", forces_key="REF_forces", type_map=["O", "H"]
    )
    assert gs[0].energy.item() == -14.2 and gs[0].stress is None and gs[0].num_edges == 0
    assert gs[0].r_max is None
    assert gs[0].species.tolist() == [1, 1, 0]
    assert np.allclose(gs[1].forces.numpy(), atoms.arrays["REF_forces"])
    # edges added later
    assert gs[0].with_edges(1.2).num_edges == 4
    one = read_structures(path, r_max=1.2, index=1, energy_key="REF_energy", forces_key=None)
    assert len(one) == 1 and one[0].forces is None
    assert type_map_numbers(["O", 1]) == [8, 1]


def test_atoms_to_graph_stress_voigt_mapping():
    atoms = labelled(2)
    voigt = atoms.get_stress()  # xx yy zz yz xz xy
    g = atoms_to_graph(atoms, r_max=2.0)
    s = g.stress[0].numpy()
    assert np.allclose([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]], voigt)
    assert np.allclose(s, s.T)


def _write(path, frames):
    ase.io.write(path, frames, format="extxyz")
    return path


def test_errors_name_file_and_structure(tmp_path):
    good, other = labelled(3, seed=4), labelled(3, "CuAg", seed=5)
    path = _write(tmp_path / "mixed.xyz", [good, other])
    with pytest.raises(
        ValueError, match=r"mixed\.xyz, structure 1: species \['Ag'\] not in the type map"
    ):
        read_structures(path, 3.0, type_map=["Cu", "Au"])

    path = _write(tmp_path / "nokey.xyz", [good, good])
    with pytest.raises(
        ValueError, match=r"nokey\.xyz, structure 0: no energy under key 'REF_energy'"
    ):
        read_structures(path, 3.0, energy_key="REF_energy")
    with pytest.raises(ValueError, match=r"structure 0: no forces under key 'F'"):
        read_structures(path, 3.0, forces_key="F")

    bad = labelled(3, seed=6)
    bad.positions[2, 1] = np.nan
    path = _write(tmp_path / "nan.xyz", [good, bad])
    with pytest.raises(
        ValueError, match=r"nan\.xyz, structure 1: position of atom 2 is not finite"
    ):
        read_structures(path, 3.0)

    empty = tmp_path / "empty.xyz"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.xyz: the file is empty"):
        read_structures(empty, 3.0)
    garbage = tmp_path / "garbage.xyz"
    garbage.write_text("this is not\nan xyz file\n")
    with pytest.raises(ValueError, match=r"garbage\.xyz"):
        read_structures(garbage, 3.0)
    with pytest.raises(FileNotFoundError, match="missing"):
        read_structures(tmp_path / "missing.xyz", 3.0)

    wrong_shape = labelled(3, seed=7)
    wrong_shape.info["E2"] = [1.0, 2.0]
    with pytest.raises(ValueError, match="expected a scalar"):
        atoms_to_graph(wrong_shape, 3.0, energy_key="E2")
    wrong_shape.info["E3"] = "high"
    with pytest.raises(ValueError, match="not numeric: 'high'"):
        atoms_to_graph(wrong_shape, 3.0, energy_key="E3")
    with pytest.raises(ValueError, match="unknown chemical symbol 'Xx'"):
        type_map_numbers(["Cu", "Xx"])
    with pytest.raises(ValueError, match="duplicate"):
        type_map_numbers(["Cu", 29])


def test_other_ase_format_trajectory(tmp_path):
    frames = [labelled(4, seed=8), labelled(6, seed=9)]
    path = tmp_path / "run.traj"
    ase.io.write(path, frames)
    graphs = read_structures(path, r_max=2.5, type_map=["Cu", "Au"])
    for atoms, g in zip(frames, graphs):
        assert np.allclose(g.forces.numpy(), atoms.get_forces())
        assert np.allclose(g.stress[0].numpy(), atoms.get_stress(voigt=False))
        assert g.energy.item() == atoms.get_potential_energy()
