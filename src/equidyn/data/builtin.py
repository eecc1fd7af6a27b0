r"""Built-in data sets generated on first use (no download), cached atomically on disk.

``"cuau-emt"``: periodic Cu–Au alloy cells labelled by ASE's EMT potential.
Each trajectory starts from an fcc supercell (``supercell``³ conventional cells, 32 sites for
the default 2) with a random Au fraction :math:`x \sim U(0, 1)` (each site Au with probability
:math:`x`), a Vegard lattice constant :math:`a = (1-x_\mathrm{Au})\,3.61 + x_\mathrm{Au}\,4.08`
Å, 0 to ``max_vacancies`` random vacancies and a random symmetric strain
:math:`\varepsilon_{\alpha\beta} \sim U(-s, s)` (``max_strain`` = 2 %) applied to cell and
atoms. It runs Langevin dynamics (BAOAB splitting, time step ``timestep_fs``, friction
``friction_per_fs``) at a temperature cycling through ``temperatures``, started with
Maxwell–Boltzmann velocities at twice that temperature (equipartition halves it);
after ``equilibration_steps`` one frame is kept every ``steps_between_frames`` steps,
``frames_per_trajectory`` frames per trajectory, until ``n_structures`` frames exist.
Labels: energy (eV), forces (eV/Å), stress (eV/Å³, ASE sign), positions wrapped into the cell.

Everything is drawn from ``numpy.random.default_rng(seed)``, so a seed gives the same set on
every machine. The set is stored as ``<cache>/cuau-emt-<hash>.npz`` where the hash covers
every generation parameter; the file is written to a temporary name and moved in place with
``os.replace`` (readers never see a partial file). Cache directory: the ``cache_dir``
argument, else ``$EQUIDYN_CACHE``, else ``~/.cache/equidyn``.

>>> import tempfile
>>> graphs = builtin_dataset(n_structures=2, seed=0, r_max=4.0, cache_dir=tempfile.mkdtemp(),
...                          frames_per_trajectory=2, equilibration_steps=1)
>>> len(graphs), graphs[0].pbc.tolist(), graphs[0].stress.shape
(2, [[True, True, True]], torch.Size([1, 3, 3]))
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from equidyn._cache import default_cache_dir
from equidyn.graph import AtomicGraph, radius_graph

__all__ = ["builtin_dataset", "builtin_dataset_path", "default_cache_dir", "BUILTIN_DATASETS"]

BUILTIN_DATASETS = ("cuau-emt",)
_GENERATOR_VERSION = 1
_CUAU_TYPE_MAP = (29, 79)


def _generate_cuau_emt(p: dict) -> dict[str, np.ndarray]:
    """Run the generation described in the module docstring; returns concatenated arrays."""
    import ase
    from ase import units
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.geometry import wrap_positions

    rng = np.random.default_rng(p["seed"])
    dt = p["timestep_fs"] * units.fs
    gamma = p["friction_per_fs"] / units.fs
    c1 = np.exp(-gamma * dt)
    c2 = np.sqrt(1.0 - c1**2)
    out: dict[str, list] = {k: [] for k in ("n_atoms", "numbers", "pos", "cell", "e", "f", "s")}
    n_done, traj = 0, 0
    while n_done < p["n_structures"]:
        temperature = p["temperatures"][traj % len(p["temperatures"])]
        traj += 1
        template = bulk("Cu", "fcc", a=1.0, cubic=True).repeat(p["supercell"])
        n_sites = len(template)
        x = rng.uniform()
        numbers = np.where(rng.uniform(size=n_sites) < x, 79, 29)
        x_au = float(np.mean(numbers == 79))
        a = (1.0 - x_au) * 3.61 + x_au * 4.08
        keep = np.sort(
            rng.permutation(n_sites)[: n_sites - rng.integers(0, p["max_vacancies"] + 1)]
        )
        eps = rng.uniform(-p["max_strain"], p["max_strain"], size=(3, 3))
        deform = np.eye(3) + 0.5 * (eps + eps.T)
        cell = a * template.cell[:] @ deform
        x_pos = (a * template.positions[keep]) @ deform  # [n, 3] Å
        atoms = ase.Atoms(numbers=numbers[keep], positions=x_pos, cell=cell, pbc=True)
        atoms.calc = EMT()
        mass = atoms.get_masses()[:, None]  # [n, 1] amu
        kt = units.kB * temperature
        v = rng.normal(size=x_pos.shape) * np.sqrt(2.0 * kt / mass)
        v -= (mass * v).sum(0) / mass.sum()
        forces = atoms.get_forces()
        n_steps = p["equilibration_steps"] + p["frames_per_trajectory"] * p["steps_between_frames"]
        for step in range(1, n_steps + 1):
            v += 0.5 * dt * forces / mass  # B
            x_pos = x_pos + 0.5 * dt * v  # A
            v = c1 * v + c2 * np.sqrt(kt / mass) * rng.normal(size=v.shape)  # O
            x_pos = x_pos + 0.5 * dt * v  # A
            atoms.positions = x_pos
            forces = atoms.get_forces()
            v += 0.5 * dt * forces / mass  # B
            after = step - p["equilibration_steps"]
            if after > 0 and after % p["steps_between_frames"] == 0:
                out["n_atoms"].append(len(atoms))
                out["numbers"].append(atoms.numbers.copy())
                out["pos"].append(wrap_positions(x_pos, cell, pbc=True))
                out["cell"].append(cell.copy())
                out["e"].append(atoms.get_potential_energy())
                out["f"].append(forces.copy())
                out["s"].append(atoms.get_stress(voigt=False))
                n_done += 1
                if n_done == p["n_structures"]:
                    break
    return {
        "n_atoms": np.asarray(out["n_atoms"], dtype=np.int64),
        "numbers": np.concatenate(out["numbers"]).astype(np.int64),
        "positions": np.concatenate(out["pos"]),
        "cell": np.stack(out["cell"]),
        "energy": np.asarray(out["e"], dtype=np.float64),
        "forces": np.concatenate(out["f"]),
        "stress": np.stack(out["s"]),
    }


def _parameters(
    name: str,
    n_structures: int,
    seed: int,
    temperatures: Sequence[float],
    frames_per_trajectory: int,
    steps_between_frames: int,
    equilibration_steps: int,
) -> dict:
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"unknown built-in data set {name!r}; available: {list(BUILTIN_DATASETS)}")
    for key, value, low in (
        ("n_structures", n_structures, 1),
        ("frames_per_trajectory", frames_per_trajectory, 1),
        ("steps_between_frames", steps_between_frames, 1),
        ("equilibration_steps", equilibration_steps, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{key} must be an int >= {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    temps = [float(t) for t in temperatures]
    if not temps or min(temps) <= 0:
        raise ValueError(f"temperatures must be positive kelvins, got {list(temperatures)}")
    return {
        "name": name,
        "version": _GENERATOR_VERSION,
        "n_structures": int(n_structures),
        "seed": int(seed),
        "temperatures": temps,
        "frames_per_trajectory": int(frames_per_trajectory),
        "steps_between_frames": int(steps_between_frames),
        "equilibration_steps": int(equilibration_steps),
        "supercell": 2,
        "max_vacancies": 2,
        "max_strain": 0.02,
        "timestep_fs": 5.0,
        "friction_per_fs": 0.02,
    }


def builtin_dataset_path(
    name: str = "cuau-emt",
    n_structures: int = 3000,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    temperatures: Sequence[float] = (300.0, 600.0, 900.0, 1200.0),
    frames_per_trajectory: int = 30,
    steps_between_frames: int = 3,
    equilibration_steps: int = 12,
) -> Path:
    """Path of the cached ``.npz`` of a built-in set, generating it first if missing.

    Arrays in the file: ``n_atoms [S]``, ``numbers [N]``, ``positions [N, 3]``,
    ``cell [S, 3, 3]``, ``energy [S]``, ``forces [N, 3]``, ``stress [S, 3, 3]`` and
    ``parameters`` (JSON text); atoms of all structures are concatenated in order.
    """
    params = _parameters(
        name,
        n_structures,
        seed,
        temperatures,
        frames_per_trajectory,
        steps_between_frames,
        equilibration_steps,
    )
    text = json.dumps(params, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = directory / f"{name}-{digest}.npz"
    if path.exists():
        return path
    arrays = _generate_cuau_emt(params)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".npz.tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, parameters=np.array(text), **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a cache is not
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def builtin_dataset(
    name: str = "cuau-emt",
    n_structures: int = 3000,
    seed: int = 0,
    r_max: float | None = None,
    cache_dir: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float64,
    temperatures: Sequence[float] = (300.0, 600.0, 900.0, 1200.0),
    frames_per_trajectory: int = 30,
    steps_between_frames: int = 3,
    equilibration_steps: int = 12,
) -> list[AtomicGraph]:
    """A built-in labelled data set as a list of graphs (generated and cached on first use).

    Args:
        name: ``"cuau-emt"`` (see the module docstring).
        n_structures: number of structures (default 3000, about a minute on one core).
        seed: seed of the whole generation.
        r_max: cutoff of the radius graphs (Å), or ``None`` for graphs without edges.
        cache_dir: where the ``.npz`` lives (default ``$EQUIDYN_CACHE`` or ``~/.cache/equidyn``).
        dtype: floating dtype of positions and labels.
        temperatures, frames_per_trajectory, steps_between_frames, equilibration_steps:
            sampling parameters (part of the cache key).

    Returns:
        ``n_structures`` single-structure :class:`~equidyn.graph.AtomicGraph` with
        ``energy``, ``forces``, ``stress`` and ``species`` (type map ``[Cu, Au]`` = Z 29, 79).
    """
    path = builtin_dataset_path(
        name,
        n_structures,
        seed,
        cache_dir,
        temperatures,
        frames_per_trajectory,
        steps_between_frames,
        equilibration_steps,
    )
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    stored = json.loads(str(data["parameters"]))
    if stored["n_structures"] != n_structures or stored["seed"] != seed:
        raise ValueError(f"{path}: cache holds parameters {stored}, not the ones asked for")
    offsets = np.concatenate([[0], np.cumsum(data["n_atoms"])])
    graphs = []
    for k in range(len(data["n_atoms"])):
        lo, hi = int(offsets[k]), int(offsets[k + 1])
        numbers = data["numbers"][lo:hi]
        graphs.append(
            radius_graph(
                torch.as_tensor(data["positions"][lo:hi], dtype=dtype),
                numbers,
                r_max,
                cell=torch.as_tensor(data["cell"][k], dtype=dtype),
                pbc=True,
                energy=torch.as_tensor(data["energy"][k], dtype=dtype),
                forces=torch.as_tensor(data["forces"][lo:hi], dtype=dtype),
                stress=torch.as_tensor(data["stress"][k], dtype=dtype),
                species=np.where(numbers == _CUAU_TYPE_MAP[1], 1, 0),
            )
        )
    return graphs
