r"""Molecular dynamics with a trained potential: ``equidyn md MODEL ...``.

NVE runs integrate Newton's equations with velocity Verlet (ASE's ``VelocityVerlet``);
Langevin runs add friction :math:`\gamma` and a random force at temperature :math:`T`
(ASE's ``Langevin``). Initial velocities are Maxwell–Boltzmann at ``temperature`` (seeded),
with zero total momentum. Every ``log_every`` steps the potential, kinetic and total energy
and the temperature are printed and a frame is written to the trajectory (``.traj``, or
``.xyz``/``.extxyz`` for extended XYZ).

The NVE energy drift is the slope of a least-squares line through the total energy per atom
against time, in meV/atom/ps: a good potential and time step keep it near zero.

Built-in structures: ``builtin:cuau`` (a 32-atom random Cu–Au fcc cell like the built-in data
set) and ``builtin:cu256`` (the 256-atom Cu fcc cell, 4×4×4 cubic, a = 3.6 Å, rattled
0.05 Å, of the benchmarks).

>>> atoms = builtin_structure("builtin:cu256")
>>> len(atoms), atoms.pbc.all()
(256, np.True_)
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["builtin_structure", "run_md", "main", "energy_drift"]


def builtin_structure(name: str, seed: int = 0):
    """An ``ase.Atoms`` for ``builtin:cuau`` or ``builtin:cu256`` (see the module docstring)."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    if name == "builtin:cu256":
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((4, 4, 4))
        atoms.rattle(0.05, seed=seed)
        return atoms
    if name == "builtin:cuau":
        atoms = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((2, 2, 2))
        numbers = np.where(rng.random(len(atoms)) < 0.3, 79, 29)
        atoms.set_atomic_numbers(numbers)
        atoms.rattle(0.05, seed=seed)
        return atoms
    raise ValueError(f"unknown built-in structure {name!r}; expected builtin:cuau or builtin:cu256")


def energy_drift(times_fs: np.ndarray, total_per_atom_ev: np.ndarray) -> float:
    """Slope of the best straight line through :math:`E_{tot}/N` (eV) against time (fs),
    in meV/atom/ps.

    >>> round(energy_drift(np.array([0.0, 1000.0]), np.array([0.0, 0.002])), 6)
    2.0
    """
    if len(times_fs) < 2:
        return 0.0
    slope = np.polyfit(np.asarray(times_fs, float), np.asarray(total_per_atom_ev, float), 1)[0]
    return float(slope * 1000.0 * 1000.0)  # eV/fs -> meV/ps


#: trajectory formats ``run_md`` writes: ASE's binary trajectory, or extended XYZ
TRAJECTORY_SUFFIXES = (".traj", ".xyz", ".extxyz")


def _check_md_settings(
    steps: int,
    dt_fs: float,
    ensemble: str,
    temperature_K: float,
    friction_per_fs: float,
    out: str | Path | None,
    log_every: int,
    dtype: str,
    skin: float = 1.0,
) -> None:
    """``ValueError`` naming the first bad setting of :func:`run_md` (before anything runs)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    if not (math.isfinite(dt_fs) and dt_fs > 0):
        raise ValueError(f"dt must be a finite number > 0 (fs), got {dt_fs}")
    if not (math.isfinite(temperature_K) and temperature_K >= 0):
        raise ValueError(f"temperature must be a finite number >= 0 (K), got {temperature_K}")
    if not (math.isfinite(friction_per_fs) and friction_per_fs >= 0):
        raise ValueError(f"friction must be a finite number >= 0 (1/fs), got {friction_per_fs}")
    if out is not None and Path(out).suffix not in TRAJECTORY_SUFFIXES:
        raise ValueError(
            f"trajectory file {str(out)!r} has an unknown format: expected a name ending in "
            f"one of {list(TRAJECTORY_SUFFIXES)}"
        )
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if ensemble not in ("nve", "langevin"):
        raise ValueError(f"ensemble must be 'nve' or 'langevin', got {ensemble!r}")
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    if not (math.isfinite(skin) and skin >= 0):
        raise ValueError(f"skin must be a finite number >= 0 (Å), got {skin}")


def run_md(
    model: Any,
    atoms: Any,
    steps: int,
    dt_fs: float = 2.0,
    ensemble: str = "nve",
    temperature_K: float = 300.0,
    friction_per_fs: float = 0.01,
    out: str | Path | None = None,
    log_every: int = 10,
    seed: int = 0,
    dtype: str = "float64",
    verbose: bool = True,
    skin: float = 1.0,
    edge_chunk: int | None = None,
) -> dict[str, Any]:
    """Run MD and return ``{"times_fs", "epot", "ekin", "etot", "temperature", "drift", ...}``.

    Args:
        model: a :class:`~equidyn.models.potential.Potential` or a model file path.
        atoms: the starting ``ase.Atoms`` (not modified).
        steps: number of MD steps.
        dt_fs: time step (fs).
        ensemble: ``"nve"`` or ``"langevin"``.
        temperature_K: initial (and, for Langevin, bath) temperature.
        friction_per_fs: Langevin friction :math:`\\gamma` (1/fs).
        out: trajectory file (``.traj``, ``.xyz`` or ``.extxyz``), or ``None``.
        log_every: steps between printed lines and trajectory frames.
        seed: seed of the initial velocities and the Langevin noise.
        dtype: ``"float64"`` or ``"float32"`` evaluation.
        verbose: print the log lines.
        skin: Verlet skin of the neighbour list (Å; 0: a new search every step). The
            result's ``neighbor_builds``, ``neighbor_seconds`` and ``model_seconds`` say how
            often the list was rebuilt and where the time went.
        edge_chunk: edges per chunk of the model's convolutions
            (:func:`~equidyn.models.set_edge_chunk`; ``None``: all at once): about half the
            memory per step on large systems, the same forces up to summation order.
    """
    import torch
    from ase import units
    from ase.md import velocitydistribution as vd
    from ase.md.langevin import Langevin
    from ase.md.verlet import VelocityVerlet

    from equidyn.calculators.calculator import EquidynCalculator

    _check_md_settings(
        steps, dt_fs, ensemble, temperature_K, friction_per_fs, out, log_every, dtype, skin
    )
    atoms = atoms.copy()
    torch_dtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    if edge_chunk is not None and isinstance(model, torch.nn.Module):
        model = copy.deepcopy(model)  # the chunk size is set on this run's copy only
    calc = EquidynCalculator(model, dtype=torch_dtype, skin=skin)
    if edge_chunk is not None:
        from equidyn.models import set_edge_chunk

        if set_edge_chunk(calc.potential, edge_chunk) == 0:
            raise ValueError("edge_chunk: this model has no convolutions that can be chunked")
    atoms.calc = calc
    rng = np.random.RandomState(seed)
    thermalize = getattr(vd, "thermalize_momenta", None) or vd.MaxwellBoltzmannDistribution
    thermalize(atoms, temperature_K=temperature_K, rng=rng)
    vd.Stationary(atoms)
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, dt_fs * units.fs)
    else:
        dyn = Langevin(
            atoms, dt_fs * units.fs, temperature_K=temperature_K,
            friction=friction_per_fs / units.fs, rng=rng, fixcm=False,
        )  # fmt: skip
    writer = None
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix in (".xyz", ".extxyz"):
            from ase.io import write

            if out.exists():
                out.unlink()
            writer = lambda a: write(out, a, format="extxyz", append=True)  # noqa: E731
        else:
            from ase.io.trajectory import Trajectory

            traj = Trajectory(str(out), "w", atoms)
            writer = lambda a: traj.write(a)  # noqa: E731
    n = len(atoms)
    record: dict[str, list[float]] = {
        k: [] for k in ("times_fs", "epot", "ekin", "etot", "temperature")
    }
    say = print if verbose else (lambda *a, **k: None)
    say(f"{'step':>8} {'time/fs':>9} {'Epot/eV':>13} {'Ekin/eV':>11} {'Etot/eV':>13} {'T/K':>8}")

    def log() -> None:
        epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
        t = dyn.get_number_of_steps() * dt_fs
        temp = ekin / (1.5 * units.kB * n)
        for k, v in zip(record, (t, epot, ekin, epot + ekin, temp)):
            record[k].append(float(v))
        step = dyn.get_number_of_steps()
        say(f"{step:>8d} {t:>9.1f} {epot:>13.5f} {ekin:>11.5f} {epot + ekin:>13.5f} {temp:>8.1f}")
        if writer is not None:
            writer(atoms)

    start = time.perf_counter()
    dyn.attach(log, interval=log_every)  # also called at step 0
    dyn.run(steps)
    if steps % log_every:
        log()
    wall = time.perf_counter() - start
    etot = np.array(record["etot"]) / n
    drift = energy_drift(np.array(record["times_fs"]), etot)
    result: dict[str, Any] = {k: np.array(v) for k, v in record.items()}
    result.update(
        drift_mev_per_atom_per_ps=drift,
        max_deviation_mev_per_atom=float(1000 * np.abs(etot - etot[0]).max()),
        wall_s=wall,
        steps=steps,
        n_atoms=n,
        atoms=atoms,
        skin=skin,
        neighbor_builds=calc.neighbors.n_builds,
        neighbor_seconds=calc.neighbors.build_seconds + calc.neighbors.filter_seconds,
        model_seconds=calc.model_seconds,
    )
    if ensemble == "nve":
        say(
            f"NVE energy drift {drift:+.4f} meV/atom/ps; max |Etot - Etot(0)| "
            f"{result['max_deviation_mev_per_atom']:.4f} meV/atom"
        )
    rate = steps * n / max(wall, 1e-9)
    say(f"{steps} steps of {n} atoms in {wall:.1f} s ({rate:.0f} atom-steps/s)")
    say(
        f"neighbour list (skin {skin:g} Å): {calc.neighbors.n_builds} searches, "
        f"{result['neighbor_seconds']:.2f} s; model {calc.model_seconds:.2f} s"
    )
    if out is not None:
        say(f"trajectory: {out}")
    return result


def main(argv: list[str]) -> int:
    """``equidyn md MODEL --structure FILE|builtin:cuau --steps N --dt FS ...``."""
    parser = argparse.ArgumentParser(prog="equidyn md", description="Run MD with a saved model.")
    parser.add_argument("model", help="model file (model.pt from equidyn train)")
    parser.add_argument(
        "--structure",
        default="builtin:cuau",
        help="file ASE can read (last frame) or builtin:cuau / builtin:cu256",
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--dt", type=float, default=2.0, help="time step in fs")
    parser.add_argument("--ensemble", choices=["nve", "langevin"], default="nve")
    parser.add_argument("--temperature", type=float, default=300.0, help="K")
    parser.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    parser.add_argument("--out", default="md.traj", help="trajectory file (.traj, .xyz, .extxyz)")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--float32", action="store_true", help="evaluate the model in float32")
    parser.add_argument(
        "--skin",
        type=float,
        default=1.0,
        help="Verlet skin of the neighbour list in Å: searched again only when an atom moved "
        "more than skin/2 (0: every step)",
    )
    parser.add_argument(
        "--edge-chunk",
        type=int,
        default=None,
        help="edges per chunk of the model's convolutions (about half the memory on large "
        "systems; default: all at once)",
    )
    args = parser.parse_args(argv)
    try:
        if args.structure.startswith("builtin:"):
            atoms = builtin_structure(args.structure, seed=args.seed)
        else:
            from ase.io import read

            if not Path(args.structure).is_file():
                raise FileNotFoundError(f"no structure file at {args.structure!r}")
            atoms = read(args.structure, index=-1)
        run_md(
            args.model, atoms, args.steps, args.dt, args.ensemble, args.temperature,
            args.friction, args.out, args.log_every, args.seed,
            "float32" if args.float32 else "float64", skin=args.skin, edge_chunk=args.edge_chunk,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        print(f"equidyn md: error: {e}", file=sys.stderr)
        return 1
    return 0
