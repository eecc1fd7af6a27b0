"""ASE calculator and MD driver, on a tiny pair potential (fast) and a saved model file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ase = pytest.importorskip("ase")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from pair_model import PairModel  # noqa: E402

from equidyn.calculators import EquidynCalculator  # noqa: E402
from equidyn.calculators.md import builtin_structure, main, run_md  # noqa: E402
from equidyn.models.potential import Potential, save_model  # noqa: E402


@pytest.fixture
def potential():
    torch.manual_seed(0)
    return Potential(PairModel(r_max=3.5), [29, 79], [-1.0, -2.0], scale=0.5)


def test_calculator_matches_potential(potential):
    atoms = builtin_structure("builtin:cuau")
    atoms.calc = EquidynCalculator(potential)
    e, f, s = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    pot = potential.double()
    out = pot.compute(torch.tensor(atoms.numbers), torch.tensor(atoms.positions),
                      torch.tensor(np.asarray(atoms.cell)), True, compute_stress=True)  # fmt: skip
    assert abs(e - out["energy"].item()) < 1e-10
    np.testing.assert_allclose(f, out["forces"].detach().numpy(), atol=1e-10)
    st = out["stress"][0].detach().numpy()
    np.testing.assert_allclose(
        s, [st[0, 0], st[1, 1], st[2, 2], st[1, 2], st[0, 2], st[0, 1]], atol=1e-12
    )
    # ASE's own finite-difference stress agrees
    with pytest.warns(FutureWarning):
        numerical = atoms.calc.calculate_numerical_stress(atoms, d=1e-5)
    np.testing.assert_allclose(s, numerical, atol=1e-7)
    assert abs(atoms.get_potential_energies().sum() - e) < 1e-10


def test_calculator_molecule_and_errors(potential):
    atoms = ase.Atoms("CuAu", positions=[[0, 0, 0], [2.4, 0, 0]])
    atoms.calc = EquidynCalculator(potential)
    f = atoms.get_forces()
    assert np.abs(f.sum(0)).max() < 1e-10 and np.abs(f).max() > 0
    with pytest.raises(ase.calculators.calculator.PropertyNotImplementedError):
        atoms.get_stress()
    bad = ase.Atoms("CuAg", positions=[[0, 0, 0], [2.4, 0, 0]])
    bad.calc = EquidynCalculator(potential)
    with pytest.raises(ValueError, match=r"CuAg.*Ag \(Z=47\)"):
        bad.get_potential_energy()
    nan = atoms.copy()
    nan.positions[1, 0] = np.nan
    nan.calc = EquidynCalculator(potential)
    with pytest.raises(ValueError, match="finite"):
        nan.get_potential_energy()


def test_nve_conserves_energy_and_langevin_runs(potential, tmp_path):
    atoms = builtin_structure("builtin:cuau")
    res = run_md(potential, atoms, steps=40, dt_fs=1.0, ensemble="nve", temperature_K=300,
                 out=tmp_path / "nve.traj", log_every=10, verbose=False)  # fmt: skip
    assert len(res["etot"]) == 5
    assert res["max_deviation_mev_per_atom"] < 1.0  # smooth potential, 1 fs steps
    assert abs(res["ekin"][-1] - res["ekin"][0]) > 0  # the atoms moved
    frames = ase.io.read(tmp_path / "nve.traj", index=":")
    assert len(frames) == 5
    res = run_md(potential, atoms, steps=10, dt_fs=2.0, ensemble="langevin", out=tmp_path / "l.xyz",
                 log_every=5, verbose=False)  # fmt: skip
    assert len(ase.io.read(tmp_path / "l.xyz", index=":")) == 3


def test_md_command(potential, tmp_path, capsys):
    save_model(potential, tmp_path / "model.pt")
    out = tmp_path / "md.traj"
    assert main([str(tmp_path / "model.pt"), "--steps", "6", "--dt", "1", "--log-every", "3",
                 "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "Etot/eV" in text and "NVE energy drift" in text and out.is_file()
    assert main([str(tmp_path / "model.pt"), "--structure", "builtin:nope"]) == 1
    assert "unknown built-in structure" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--ensemble", "langevin", "--temperature", "-300"], "temperature must be"),
        (["--ensemble", "langevin", "--temperature", "nan"], "temperature must be"),
        (["--friction", "-1"], "friction must be"),
        (["--dt", "inf"], "dt must be"),
        (["--out", "t.foo"], "unknown format"),
    ],
)
def test_md_command_refuses_bad_settings_before_running(
    potential, tmp_path, capsys, flags, message
):
    """Issue 12: a negative or NaN temperature ran with NaN velocities, an unknown trajectory
    suffix was written silently; both now fail before the first step, naming the value."""
    save_model(potential, tmp_path / "model.pt")
    argv = [str(tmp_path / "model.pt"), "--steps", "2"] + flags
    if "--out" in flags:
        argv[argv.index("t.foo")] = str(tmp_path / "t.foo")
    assert main(argv) == 1
    err = capsys.readouterr()
    assert message in err.err and "Etot/eV" not in err.out
    assert not (tmp_path / "t.foo").exists()


def _tiny_nequip():
    from equidyn.models import NequIP

    torch.manual_seed(0)
    model = NequIP(num_species=2, r_max=3.5, l_max=1, num_features=4, num_layers=2,
                   radial_hidden=8, avg_num_neighbors=12.0)  # fmt: skip
    return Potential(model, [29, 79], [-3.5, -3.8], scale=0.1)


def test_skin_gives_the_fresh_list_results_over_nve_with_wrapping():
    """Issue 19: an NVE trajectory (float64, hot, small skin) that crosses several rebuilds,
    with the atoms wrapped into the cell every 4 steps: at every step the skin calculator's
    energy and forces equal those of a fresh search bit for bit."""
    from ase import units
    from ase.md.velocitydistribution import Stationary
    from ase.md.verlet import VelocityVerlet

    potential = _tiny_nequip()
    atoms = builtin_structure("builtin:cuau")
    atoms.set_velocities(np.random.default_rng(0).normal(0.0, 0.1, (len(atoms), 3)))
    Stationary(atoms)
    calc = EquidynCalculator(potential, skin=0.15)
    fresh = EquidynCalculator(potential, skin=0.0)
    atoms.calc = calc
    dyn = VelocityVerlet(atoms, 2.0 * units.fs)
    checked, jumps = [], []

    def compare() -> None:
        step = dyn.get_number_of_steps()
        if step % 4 == 3:
            before = atoms.get_positions()
            atoms.wrap()
            jumps.append(float(np.abs(atoms.get_positions() - before).max()))
        forces = atoms.get_forces()
        probe = calc.atoms.copy()  # (ASE skips a recalculation for moves below 1e-15 Å)
        probe.calc = fresh
        np.testing.assert_array_equal(forces, probe.get_forces())
        assert atoms.get_potential_energy() == probe.get_potential_energy()
        checked.append(step)

    dyn.attach(compare, interval=1)
    dyn.run(24)
    assert len(checked) == 25 and max(jumps) > 5.0  # some atoms did jump by a cell vector
    assert 3 <= calc.neighbors.n_builds < 20, calc.neighbors.n_builds
    assert fresh.neighbors.n_builds > calc.neighbors.n_builds
    assert np.abs(atoms.get_positions() - atoms.get_positions(wrap=True)).max() < 1e-9


def test_md_skin_option_and_counts(potential, tmp_path, capsys):
    save_model(potential, tmp_path / "model.pt")
    argv = [str(tmp_path / "model.pt"), "--steps", "6", "--dt", "1", "--log-every", "3",
            "--out", str(tmp_path / "md.traj")]  # fmt: skip
    assert main(argv + ["--skin", "0.5"]) == 0
    assert "neighbour list (skin 0.5 Å): 1 searches" in capsys.readouterr().out
    assert main(argv + ["--skin", "-1"]) == 1
    assert "skin must be a finite number >= 0" in capsys.readouterr().err
    with_skin = run_md(potential, builtin_structure("builtin:cuau"), steps=10, skin=1.0,
                       verbose=False)  # fmt: skip
    without = run_md(potential, builtin_structure("builtin:cuau"), steps=10, skin=0.0,
                     verbose=False)  # fmt: skip
    assert with_skin["neighbor_builds"] == 1 and without["neighbor_builds"] == 11
    np.testing.assert_array_equal(with_skin["etot"], without["etot"])


def test_md_edge_chunk_gives_the_same_trajectory(potential, tmp_path, capsys):
    nequip = _tiny_nequip()
    atoms = builtin_structure("builtin:cuau")
    whole = run_md(nequip, atoms, steps=5, verbose=False)
    chunked = run_md(nequip, atoms, steps=5, verbose=False, edge_chunk=64)
    assert all(c.edge_chunk is None for c in nequip.modules() if hasattr(c, "edge_chunk"))
    np.testing.assert_allclose(chunked["etot"], whole["etot"], rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="no convolutions that can be chunked"):
        run_md(potential, atoms, steps=1, verbose=False, edge_chunk=64)
    save_model(nequip, tmp_path / "model.pt")
    argv = [str(tmp_path / "model.pt"), "--steps", "2", "--out", str(tmp_path / "md.traj")]
    assert main(argv + ["--edge-chunk", "0"]) == 1
    assert "edges per chunk must be a positive int" in capsys.readouterr().err
