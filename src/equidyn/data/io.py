r"""Reading atomic structures with labels (extxyz and every format ASE reads) into graphs.

Units are ASE's and are not converted: positions and cell in Å, energy in eV, forces in
eV/Å, stress in eV/Å³ with ASE's sign convention :math:`\sigma = V^{-1}\partial E/\partial
\varepsilon` (a compressed crystal, which lowers its energy by expanding, has negative
diagonal stress). Stress in Voigt order ``(xx, yy, zz, yz, xz, xy)`` is expanded to ``[3, 3]``.

A label is looked up under its key in ``atoms.info`` (per-structure), ``atoms.arrays``
(per-atom) and finally in the results of an attached calculator (where ASE's extxyz reader
puts the standard keys ``energy``, ``forces``, ``stress``).

>>> import numpy as np, ase
>>> atoms = ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
>>> atoms.info["energy"] = -31.5
>>> g = atoms_to_graph(atoms, r_max=1.0, forces_key=None)
>>> g.energy, g.num_edges
(tensor([-31.5000], dtype=torch.float64), 2)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from equidyn.graph import AtomicGraph, radius_graph

if TYPE_CHECKING:
    import ase

__all__ = [
    "atoms_to_graph",
    "read_structures",
    "type_map_numbers",
    "graph_to_atoms",
    "write_structures",
]


def type_map_numbers(type_map: Sequence[str | int]) -> list[int]:
    """Atomic numbers of a type map given as chemical symbols or numbers.

    >>> type_map_numbers(["Cu", "Au"]), type_map_numbers([1, 8])
    ([29, 79], [1, 8])
    """
    from ase.data import atomic_numbers as symbol_to_z

    out = []
    for t in type_map:
        if isinstance(t, str):
            if t not in symbol_to_z:
                raise ValueError(f"unknown chemical symbol {t!r} in type map {list(type_map)}")
            out.append(int(symbol_to_z[t]))
        elif isinstance(t, (int, np.integer)) and not isinstance(t, bool) and 1 <= t <= 118:
            out.append(int(t))
        else:
            raise ValueError(f"type map entries must be symbols or Z in 1..118, got {t!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"type map {list(type_map)} has duplicate species")
    return out


def _lookup(atoms: ase.Atoms, key: str) -> Any | None:
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays:
        return atoms.arrays[key]
    calc = atoms.calc
    if calc is not None and key in getattr(calc, "results", {}):
        return calc.results[key]
    return None


def _available_keys(atoms: ase.Atoms) -> list[str]:
    keys = list(atoms.info) + [k for k in atoms.arrays if k not in ("numbers", "positions")]
    if atoms.calc is not None:
        keys += list(getattr(atoms.calc, "results", {}))
    return sorted(set(keys))


def atoms_to_graph(
    atoms: ase.Atoms,
    r_max: float | None,
    energy_key: str | None = "energy",
    forces_key: str | None = "forces",
    stress_key: str | None = "stress",
    type_map: Sequence[str | int] | None = None,
    dtype: torch.dtype = torch.float64,
    where: str = "structure",
) -> AtomicGraph:
    """Convert one ``ase.Atoms`` (with labels) into an :class:`~equidyn.graph.AtomicGraph`.

    Args:
        atoms: the structure; ``atoms.cell`` rows are the lattice vectors, ``atoms.pbc``
            the periodicity.
        r_max: cutoff of the radius graph in Å, or ``None`` for no edges yet.
        energy_key: key of the total energy (eV); required when not ``None``.
        forces_key: key of the forces (eV/Å, ``[n_atoms, 3]``); required when not ``None``.
        stress_key: key of the stress (eV/Å³); optional: missing gives ``stress=None``.
        type_map: allowed species (symbols or Z); sets ``species`` to the index in it and
            rejects any other element.
        dtype: floating dtype of positions and labels.
        where: how error messages name this structure (e.g. ``"file.xyz, structure 3"``).
    """
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating point dtype, got {dtype}")
    pos = np.asarray(atoms.get_positions(), dtype=np.float64)
    if not np.all(np.isfinite(pos)):
        bad = int(np.argwhere(~np.isfinite(pos))[0, 0])
        raise ValueError(f"{where}: position of atom {bad} is not finite: {pos[bad].tolist()}")
    numbers = np.asarray(atoms.get_atomic_numbers(), dtype=np.int64)
    if len(numbers) == 0:
        raise ValueError(f"{where}: has no atoms")
    species = None
    if type_map is not None:
        allowed = type_map_numbers(type_map)
        unknown = sorted({int(z) for z in numbers} - set(allowed))
        if unknown:
            from ase.data import chemical_symbols

            names = [chemical_symbols[z] for z in unknown]
            raise ValueError(f"{where}: species {names} not in the type map {list(type_map)}")
        position = {z: k for k, z in enumerate(allowed)}
        species = np.array([position[int(z)] for z in numbers], dtype=np.int64)

    def label(key: str | None, required: bool, what: str, sizes: tuple[int, ...]) -> Any:
        if key is None:
            return None
        value = _lookup(atoms, key)
        if value is None:
            if not required:
                return None
            raise ValueError(
                f"{where}: no {what} under key {key!r}; available keys: {_available_keys(atoms)}"
            )
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"{where}: {what} under key {key!r} is not numeric: {value!r}"
            ) from err
        if arr.size not in sizes:
            raise ValueError(
                f"{where}: {what} under key {key!r} has shape {arr.shape}, expected "
                + {"energy": "a scalar", "forces": f"[{len(numbers)}, 3]"}.get(what, "[3, 3] or 6")
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{where}: {what} under key {key!r} is not finite")
        return arr

    energy = label(energy_key, True, "energy", (1,))
    forces = label(forces_key, True, "forces", (3 * len(numbers),))
    stress = label(stress_key, False, "stress", (6, 9))
    cell = np.asarray(atoms.get_cell()[:], dtype=np.float64)
    pbc = np.asarray(atoms.get_pbc(), dtype=bool)
    try:
        graph = radius_graph(
            torch.as_tensor(pos, dtype=dtype),
            numbers,
            r_max,
            cell=torch.as_tensor(cell, dtype=dtype),
            pbc=pbc,
            energy=None if energy is None else torch.as_tensor(energy, dtype=dtype),
            forces=None if forces is None else torch.as_tensor(forces, dtype=dtype),
            stress=None if stress is None else torch.as_tensor(stress, dtype=dtype),
            species=species,
        )
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from err
    return graph


def read_structures(
    path: str | os.PathLike,
    r_max: float | None,
    index: str | int | slice = ":",
    format: str | None = None,
    energy_key: str | None = "energy",
    forces_key: str | None = "forces",
    stress_key: str | None = "stress",
    type_map: Sequence[str | int] | None = None,
    dtype: torch.dtype = torch.float64,
) -> list[AtomicGraph]:
    """Read every structure of an extxyz (or any ASE-readable) file into graphs.

    Errors (``ValueError``) name the file and the structure index: an empty file, a
    missing energy/forces key, species outside ``type_map``, non-finite positions or
    labels. See :func:`atoms_to_graph` for the arguments; ``index`` and ``format`` go to
    ``ase.io.read``. Units as stored (ASE: eV, Å, eV/Å, eV/Å³).

    >>> import os, tempfile, ase, ase.io
    >>> atoms = ase.Atoms("Cu", cell=[2.5, 2.5, 2.5], pbc=True)
    >>> atoms.info["REF_energy"] = -3.0
    >>> path = os.path.join(tempfile.mkdtemp(), "cu.xyz")
    >>> ase.io.write(path, [atoms, atoms], format="extxyz")
    >>> gs = read_structures(path, r_max=3.0, energy_key="REF_energy", forces_key=None)
    >>> len(gs), gs[0].energy.item(), gs[0].num_edges
    (2, -3.0, 6)
    """
    import ase.io

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: the file is empty (no structures)")
    try:
        frames = ase.io.read(path, index=index, format=format)
    except (ValueError, KeyError, IndexError, OSError) as err:
        raise ValueError(f"{path}: ASE could not read the file: {err}") from err
    if not isinstance(frames, list):
        frames = [frames]
    if len(frames) == 0:
        raise ValueError(f"{path}: no structures (index={index!r})")
    return [
        atoms_to_graph(
            atoms,
            r_max,
            energy_key=energy_key,
            forces_key=forces_key,
            stress_key=stress_key,
            type_map=type_map,
            dtype=dtype,
            where=f"{path}, structure {k}",
        )
        for k, atoms in enumerate(frames)
    ]


def graph_to_atoms(graph: AtomicGraph) -> list[ase.Atoms]:
    """``ase.Atoms`` (one per structure) with the labels attached as a single-point calculator.

    >>> import torch
    >>> from equidyn.graph import radius_graph
    >>> atoms = graph_to_atoms(radius_graph(torch.zeros(1, 3), [8], None, energy=-2.0))
    >>> atoms[0].get_chemical_formula(), atoms[0].get_potential_energy()
    ('O', -2.0)
    """
    import ase
    from ase.calculators.singlepoint import SinglePointCalculator

    out = []
    for g in graph.unbatch():
        atoms = ase.Atoms(
            numbers=g.atomic_numbers.cpu().numpy(),
            positions=g.pos.detach().cpu().double().numpy(),
            cell=g.cell[0].detach().cpu().double().numpy(),
            pbc=g.pbc[0].cpu().numpy(),
        )
        results: dict[str, Any] = {}
        if g.energy is not None:
            results["energy"] = float(g.energy[0])
        if g.forces is not None:
            results["forces"] = g.forces.detach().cpu().double().numpy()
        if g.stress is not None:
            results["stress"] = g.stress[0].detach().cpu().double().numpy()
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        out.append(atoms)
    return out


def write_structures(graphs: Sequence[AtomicGraph], path: str | os.PathLike) -> None:
    """Write graphs (with labels under the keys energy/forces/stress) as extxyz, atomically.

    The file is written to a temporary name in the same folder, then moved in place.
    """
    import tempfile

    import ase.io

    path = os.fspath(path)
    atoms = [a for g in graphs for a in graph_to_atoms(g)]
    if not atoms:
        raise ValueError(f"nothing to write to {path}: no structures")
    fd, tmp = tempfile.mkstemp(suffix=".xyz.tmp", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "w") as fh:
            ase.io.write(fh, atoms, format="extxyz")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
