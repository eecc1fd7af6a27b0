r"""An ASE calculator for equidyn potentials: energy, forces and stress of any ``ase.Atoms``.

For the structure given, the calculator builds the radius graph with the model's cutoff
(molecules, periodic or partly periodic cells of any shape and size) and returns

- ``energy`` / ``free_energy``: :math:`E` (eV), ``energies``: per-atom energies (eV);
- ``forces``: :math:`-\partial E/\partial \vec r_i` (eV/Å);
- ``stress``: :math:`V^{-1}\,\partial E/\partial\varepsilon` (eV/Å³, ASE sign and Voigt order
  ``xx, yy, zz, yz, xz, xy``), for fully periodic cells only.

With ``skin > 0`` the neighbour list is a :class:`~equidyn.graph.verlet.VerletList`: built
with the cutoff :math:`r_{\max} + \delta` and searched again only when an atom has moved
more than :math:`\delta/2` (wrapping into the cell does not count) or the cell, periodicity
or atomic numbers changed; in between, the stored pairs are filtered to
:math:`|\vec r_{ij}| < r_{\max}`, which gives the same graph, so the same energies and
forces, as a fresh search. ``skin = 0`` (the default, for single-point calculations)
searches anew at every new geometry; for MD, 1 Å is a good choice (``equidyn md`` uses it).

>>> import torch, ase
>>> from equidyn.models import NequIP, Potential
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> pot = Potential(NequIP(num_species=1, r_max=3.0, l_max=1, num_features=4, num_layers=1), [29])
>>> atoms = ase.Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]])
>>> atoms.calc = EquidynCalculator(pot)
>>> f = atoms.get_forces()
>>> f.shape, bool(abs(f.sum()) < 1e-6)
((2, 3), True)
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from equidyn.graph.batch import radius_graph
from equidyn.graph.verlet import DEFAULT_CHUNK_EDGES, VerletList
from equidyn.models.chemistry import describe_unknown_species, formula
from equidyn.models.potential import Potential
from equidyn.models.serialization import as_potential

__all__ = ["EquidynCalculator"]


class EquidynCalculator(Calculator):
    r"""ASE calculator wrapping a :class:`~equidyn.models.potential.Potential`.

    Args:
        model: a :class:`Potential` or the path of a model file (``model.pt``).
        dtype: ``torch.float64`` (default, best for MD energy conservation) or
            ``torch.float32``.
        skin: Verlet skin :math:`\delta` of the neighbour list (Å, >= 0); 0 searches
            neighbours anew at every new geometry.
        chunk_edges: edges per chunk when the stored pairs are filtered (memory bound).

    Attributes:
        neighbors: the :class:`~equidyn.graph.verlet.VerletList` (its ``n_builds``,
            ``build_seconds`` and ``filter_seconds`` count the neighbour-list work).
        model_seconds: wall time spent in the model (energy and forces) so far.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model: Potential | str | os.PathLike[str],
        dtype: torch.dtype = torch.float64,
        skin: float = 0.0,
        chunk_edges: int | None = DEFAULT_CHUNK_EDGES,
    ) -> None:
        super().__init__()
        self.potential = as_potential(model, dtype)
        self.dtype = dtype
        self.neighbors = VerletList(
            self.potential.r_max, skin, max_neighbors=self.potential.max_neighbors,
            chunk_edges=chunk_edges,
        )  # fmt: skip
        self.model_seconds = 0.0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        pbc = np.asarray(atoms.pbc, dtype=bool)
        want_stress = "stress" in properties
        if want_stress and not pbc.all():
            raise PropertyNotImplementedError(
                f"stress needs a fully periodic cell; {atoms.get_chemical_formula()} has "
                f"pbc={pbc.tolist()}"
            )
        pos = torch.as_tensor(atoms.get_positions(), dtype=self.dtype)
        if not torch.isfinite(pos).all():
            bad = int((~torch.isfinite(pos)).any(-1).nonzero()[0, 0])
            raise ValueError(
                f"{atoms.get_chemical_formula()}: positions must be finite; atom {bad} has "
                f"{pos[bad].tolist()}"
            )
        cell = torch.as_tensor(np.asarray(atoms.cell), dtype=self.dtype)
        edge_index, edge_shift = self.neighbors.update(
            atoms.get_positions(), np.asarray(atoms.cell) if pbc.any() else None, pbc,
            atoms.numbers,
        )  # fmt: skip
        graph = dataclasses.replace(
            radius_graph(pos, atoms.numbers, None, cell if pbc.any() else None, pbc),
            edge_index=edge_index,  # [2, n_edges]
            edge_shift=edge_shift,  # [n_edges, 3]
            r_max=self.potential.r_max,
        )
        problem = describe_unknown_species(self.potential, graph)
        if problem:
            raise ValueError(f"{formula(atoms.numbers.tolist())}: {problem}")
        start = time.perf_counter()
        out = self.potential(graph, compute_forces=True, compute_stress=want_stress)
        energy = float(out["energy"].detach()[0])
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = out["atomic_energies"].detach().double().numpy()
        self.results["forces"] = out["forces"].detach().double().numpy()
        if "stress" in out:
            s = out["stress"].detach().double().numpy()[0]
            self.results["stress"] = np.array(
                [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]
            )
        self.model_seconds += time.perf_counter() - start
