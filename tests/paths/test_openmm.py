"""Alanine dipeptide through OpenMM: the molecule, the potential's derivatives against
OpenMM and finite differences, the end states, and the Doob loss on it."""

from __future__ import annotations

import math

import pytest
import torch

openmm = pytest.importorskip("openmm")

from equidyn.paths import (  # noqa: E402
    GaussianPathMarginal,
    OverdampedLangevin,
    doob_lagrangian,
    two_way_shooting,
)
from equidyn.paths.openmm import (  # noqa: E402
    KT_300K,
    OpenMMPotential,
    alanine_dipeptide,
    dihedral,
    dihedrals,
    kabsch_align,
)

F64 = torch.float64


@pytest.fixture(scope="module")
def mol():
    return alanine_dipeptide()


@pytest.fixture(scope="module")
def pot(mol):
    return mol.potential()


def _jiggle(x: torch.Tensor, scale: float = 2e-3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return x + scale * torch.randn(x.shape, generator=g, dtype=x.dtype)


def test_molecule_has_22_atoms_in_ace_ala_nme_with_amber_names(mol):
    assert mol.num_atoms == 22 and mol.topology.getNumAtoms() == 22
    assert [r.name for r in mol.topology.residues()] == ["ACE", "ALA", "NME"]
    assert mol.system.getNumParticles() == 22 and mol.system.getNumConstraints() == 0
    names = set(mol.names)
    for name in ("ACE:CH3", "ACE:HH31", "ALA:CA", "ALA:CB", "ALA:HB3", "NME:CH3", "NME:HH33"):
        assert name in names
    elements = [a.element.symbol for a in mol.topology.atoms()]
    assert sorted(set(elements)) == ["C", "H", "N", "O"] and elements.count("H") == 12
    assert mol.c7eq.shape == mol.c7ax.shape == (66,) and mol.c7eq.dtype == F64
    assert float(mol.masses.sum()) == pytest.approx(144.17, abs=0.05)  # C6H12N2O2


def test_energies_match_openmm_directly(mol, pot):
    x = torch.stack([mol.c7eq, _jiggle(mol.c7ax)])
    ctx = openmm.Context(
        mol.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
    )
    kj = openmm.unit.kilojoule_per_mole
    for xi, ei in zip(x, pot(x)):
        ctx.setPositions(xi.view(22, 3).numpy())
        ref = ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(kj)
        assert float(ei) == pytest.approx(ref, rel=1e-12, abs=1e-9)
    assert pot(x.view(2, 1, 66)).shape == (2, 1)
    assert pot(x.float()).dtype == torch.float32


def test_gradient_is_minus_the_forces_and_matches_finite_differences(mol, pot):
    x = _jiggle(mol.c7eq).requires_grad_()
    (grad,) = torch.autograd.grad(pot(x), x)
    assert torch.equal(grad, -pot.forces(x.detach()))
    v = torch.randn(66, dtype=F64, generator=torch.Generator().manual_seed(1))
    h = 1e-6
    with torch.no_grad():
        fd = (pot(x + h * v) - pot(x - h * v)) / (2 * h)
    assert float(grad @ v) == pytest.approx(float(fd), rel=1e-6)


def test_hessian_vector_product_matches_finite_differences_of_the_gradient(mol, pot):
    """The double backward (central differences of forces at eps = 1e-5 nm) against a
    central difference of the autograd gradient at a 10x larger step: agree to 1e-5
    relative; and it is symmetric, w.Hv = v.Hw."""
    x = _jiggle(mol.c7eq, seed=2).requires_grad_()
    g = torch.Generator().manual_seed(3)
    v, w = torch.randn(2, 66, dtype=F64, generator=g)
    (grad,) = torch.autograd.grad(pot(x), x, create_graph=True)
    calls = pot.force_calls
    (hv,) = torch.autograd.grad(grad @ v, x, retain_graph=True)
    assert pot.force_calls - calls == 2
    (hw,) = torch.autograd.grad(grad @ w, x)
    step = 1e-4
    plus, minus = (-pot.forces(x.detach() + s * step * v / v.norm()) for s in (1, -1))
    fd = (plus - minus) / (2 * step) * v.norm()
    assert float((hv - fd).norm() / fd.norm()) < 1e-5
    assert float(w @ hv) == pytest.approx(float(v @ hw), rel=1e-6)


def test_end_states_are_local_minima_near_c7eq_and_c7ax(mol, pot):
    phi, psi = (torch.rad2deg(a) for a in dihedrals(torch.stack([mol.c7eq, mol.c7ax]), mol))
    # the targets (-83, 75) and (70, -70); ff14SB's own minima in vacuum are at (-75, 54)
    # and (61, -41), within 30 degrees of them
    for got, want in zip((phi[0], psi[0], phi[1], psi[1]), (-83, 75, 70, -70)):
        assert abs(float(got) - want) < 30
    assert float(phi[0]) == pytest.approx(-75.0, abs=1.0)
    assert float(psi[0]) == pytest.approx(54.0, abs=1.0)
    forces = pot.forces(torch.stack([mol.c7eq, mol.c7ax]))
    assert float(forces.norm(dim=-1).max()) < 0.1  # kJ/mol/nm, against ~1e4 at 300 K
    assert mol.energy_c7eq < mol.energy_c7ax  # C7eq is the lower one for L-alanine
    assert mol.energy_c7ax - mol.energy_c7eq == pytest.approx(6.24, abs=0.1)
    # the aligned end states: C7ax was moved onto C7eq, not deformed
    assert float(pot(mol.c7ax)) == pytest.approx(mol.energy_c7ax, abs=1e-8)


def test_dihedrals_accept_topology_indices_and_shapes_and_reject_bad_input(mol):
    x = torch.stack([mol.c7eq, mol.c7ax])
    by_mol = dihedrals(x, mol)
    by_top = dihedrals(x, mol.topology)
    by_idx = dihedrals(x.view(2, 22, 3), (mol.phi_atoms, mol.psi_atoms))
    for a, b, c in zip(by_mol, by_top, by_idx):
        assert torch.equal(a, b) and torch.allclose(a, c)
    with pytest.raises(ValueError, match="4 atoms"):
        dihedrals(x, ((0, 1, 2), (0, 1, 2, 3)))
    with pytest.raises(ValueError, match="out of range"):
        dihedral(x, (0, 1, 2, 40))
    with pytest.raises(ValueError, match=r"\(\.\.\., 66\)"):
        OpenMMPotential(mol.system)(torch.zeros(3, 65, dtype=F64))
    with pytest.raises(ValueError, match="fd_step"):
        OpenMMPotential(mol.system, fd_step=0.0)
    with pytest.raises(ValueError, match="platform 'Nope'"):
        OpenMMPotential(mol.system, platform="Nope")
    # rotating the molecule leaves the dihedrals and kabsch_align undoes it
    q = torch.linalg.qr(torch.randn(3, 3, dtype=F64, generator=torch.Generator().manual_seed(0)))[0]
    q = q * torch.linalg.det(q)
    rotated = (mol.c7eq.view(22, 3) @ q.T).reshape(66)
    assert float(dihedrals(rotated, mol)[0]) == pytest.approx(float(by_mol[0][0]), abs=1e-10)
    assert torch.allclose(kabsch_align(rotated, mol.c7eq), mol.c7eq, atol=1e-10)


def test_doob_loss_on_alanine_is_finite_and_trains_through_the_hessian(mol, pot):
    dyn = OverdampedLangevin(pot, kT=KT_300K, gamma=2000.0)
    q = GaussianPathMarginal(mol.c7eq, mol.c7ax, duration=4.0, diffusion=dyn.diffusion)
    with torch.no_grad():  # narrower than the bridge, as in the benchmark
        q.net[-1].bias.view(1, 67)[:, 66] = math.log(0.1)
    calls = pot.force_calls
    loss = doob_lagrangian(q, dyn, batch_size=4, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert bool(torch.isfinite(loss)) and dyn.evaluations == 4
    assert pot.force_calls - calls == 4 * 3  # one call per sample, two per Hessian product
    grads = [p.grad for p in q.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert any(float(g.abs().max()) > 0 for g in grads if g is not None)


def test_shooting_with_dihedral_basins_runs_on_alanine(mol, pot):
    dyn = OverdampedLangevin(pot, kT=KT_300K, gamma=2000.0)
    line = torch.stack([mol.c7eq + (mol.c7ax - mol.c7eq) * s for s in torch.linspace(0, 1, 21)])
    out = two_way_shooting(
        dyn,
        line,
        n_shots=2,
        dt=1e-3,
        basin_radius=math.radians(40),
        collective_variable=lambda x: torch.stack(dihedrals(x, mol), -1),
    )
    assert out["evaluations"] == 2 * 20 == dyn.evaluations
    assert len(out["accepted"]) == 2


def test_c7ax_methyl_hydrogens_are_labelled_like_c7eq(mol, pot):
    """Relabelling equivalent hydrogens keeps the energy; after it no hydrogen of C7ax is
    more than 0.1 nm from its namesake in C7ax's aligned neighbour C7eq."""
    d = (mol.c7eq - mol.c7ax).view(22, 3).norm(dim=-1)
    hydrogens = [
        i
        for i, n in enumerate(mol.names)
        if n.split(":")[1] in ("HH31", "HH32", "HH33", "HB1", "HB2", "HB3")
    ]
    assert len(hydrogens) == 9 and float(d[hydrogens].max()) < 0.1
    swapped = mol.c7ax.view(22, 3).clone()
    swapped[hydrogens[:3]] = swapped[[hydrogens[1], hydrogens[2], hydrogens[0]]]
    assert float(pot(swapped.reshape(66))) == pytest.approx(mol.energy_c7ax, abs=1e-8)


def test_a_missing_openmm_is_named_with_its_pip_install(monkeypatch):
    import sys

    for name in ("openmm", "openmm.app", "openmm.unit"):
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
    with pytest.raises(ImportError, match="pip install openmm"):
        alanine_dipeptide()
