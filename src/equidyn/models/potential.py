r"""Interatomic potentials: energy, forces and stress from a per-atom energy model.

Every potential in equidyn is a :class:`Potential` wrapping an *atomic energy model* — any
``torch.nn.Module`` following :class:`AtomicEnergyModel` (NequIP, MACE, or your own) that maps
species and edge vectors to one energy per atom. The wrapper adds the physics:

.. math::

    E_b = \sum_{i \in b} \big( s\,\varepsilon_i + \mu + E^{\mathrm{ref}}_{z_i} \big), \qquad
    \vec F_i = -\frac{\partial E}{\partial \vec r_i}, \qquad
    \sigma_b = \frac{1}{V_b} \frac{\partial E_b}{\partial \varepsilon_b}\Big|_{\varepsilon=0},

with :math:`\varepsilon_i` the model's per-atom output, :math:`s` / :math:`\mu` a scale and
shift (set from the training data, e.g. :math:`s` = RMS force), :math:`E^{\mathrm{ref}}_z`
per-species reference energies, and :math:`\varepsilon_b` a symmetric strain applied to the
positions *and* cell of structure :math:`b` (ASE sign convention, eV/Å³). Forces and stress come
from autograd; with ``create_graph=True`` they can themselves be differentiated (training on
forces).

The model sees only relative vectors :math:`\vec r_{ij}` (translation invariant) and the
species; rotation/reflection invariance of the energy is the model's job and is proven by the
model test battery.

Model files (:func:`~equidyn.models.serialization.save_model` /
:func:`~equidyn.models.serialization.load_model`, also importable from here) hold the class
name, the constructor arguments, the state dict, the species and the reference energies, so a
model loads with one call and no training configuration. Element symbols and formulas live in
:mod:`equidyn.models.chemistry`, the model registry in :mod:`equidyn.models.registry`.

>>> import torch
>>> from equidyn.models.potential import Potential
>>> class Pair(torch.nn.Module):
...     r_max = 2.0
...     num_species = 1
...     def forward(self, species, edge_index, edge_vec):
...         r = edge_vec.norm(dim=-1)
...         e = (r - 2.0) ** 2
...         return torch.zeros(species.shape[0], dtype=r.dtype).index_add(0, edge_index[0], e / 2)
>>> pot = Potential(Pair(), atomic_numbers=[29])
>>> pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
>>> out = pot.compute(torch.tensor([29, 29]), pos)
>>> round(out["energy"].item(), 6), out["forces"][0].tolist()
(1.0, [-2.0, 0.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from equidyn.graph.batch import AtomicGraph, radius_graph
from equidyn.graph.neighbors import apply_strain, cell_volume, edge_vectors
from equidyn.graph.scatter import scatter_sum
from equidyn.models.chemistry import describe, describe_unknown_species, formula, symbol
from equidyn.models.registry import MODEL_REGISTRY, build_model, register_model
from equidyn.models.serialization import (
    load_model,
    potential_from_dict,
    potential_to_dict,
    save_model,
)

__all__ = [
    "AtomicEnergyModel",
    "Potential",
    "check_model_args",
    # re-exported from equidyn.models.registry, .serialization and .chemistry
    "MODEL_REGISTRY",
    "build_model",
    "describe_unknown_species",
    "formula",
    "load_model",
    "register_model",
    "save_model",
    "symbol",
]


@runtime_checkable
class AtomicEnergyModel(Protocol):
    """What :class:`Potential` needs from a model.

    Attributes:
        r_max: the cutoff radius (Å); the energy must go smoothly to zero contributions from
            pairs at distance ``r_max``.
        num_species: number of species; inputs use indices ``0 .. num_species - 1``.

    ``forward(species, edge_index, edge_vec)`` takes ``species`` ``[n_atoms]`` (int64
    indices), ``edge_index`` ``[2, n_edges]`` (source ``i``, destination ``j``) and
    ``edge_vec`` ``[n_edges, 3]`` (:math:`\\vec r_j - \\vec r_i` incl. the periodic shift) and
    returns per-atom energies ``[n_atoms]``. For saving, its class should be decorated with
    :func:`~equidyn.models.registry.register_model` (which records its constructor arguments).
    """

    r_max: float
    num_species: int

    def forward(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor: ...


def check_model_args(
    ints: Sequence[tuple[str, Any, int]], r_max: Any, avg_num_neighbors: Any
) -> None:
    """Constructor checks shared by the potentials: each ``(name, value, low)`` in ``ints``
    must be an int ``>= low``, ``r_max`` a positive number (Å), ``avg_num_neighbors`` None or
    positive. Raises ValueError naming the argument and the value.

    >>> check_model_args([("num_layers", 0, 1)], 5.0, None)
    Traceback (most recent call last):
    ...
    ValueError: num_layers must be an int >= 1, got 0
    """
    for name, value, low in ints:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    if isinstance(r_max, bool) or not isinstance(r_max, (int, float)) or not r_max > 0:
        raise ValueError(f"r_max must be a positive number (Å), got {r_max!r}")
    if avg_num_neighbors is not None and not avg_num_neighbors > 0:
        raise ValueError(f"avg_num_neighbors must be > 0 or None, got {avg_num_neighbors!r}")


class Potential(nn.Module):
    r"""Energy, forces and stress of atomic structures from a per-atom energy model.

    See the module docstring for the equations.

    Args:
        model: an :class:`AtomicEnergyModel` (e.g. :class:`~equidyn.models.NequIP`).
        atomic_numbers: the species the model knows, in the order of its species indices.
        reference_energies: :math:`E^{\mathrm{ref}}_z` per species (eV), same order; zeros
            by default.
        scale: :math:`s`, multiplies the model output (eV); e.g. the RMS force of the data.
        shift: :math:`\mu`, added per atom (eV).
    """

    reference_energies: Tensor  # [num_species] buffer
    scale: Tensor  # [] buffer
    shift: Tensor  # [] buffer

    def __init__(
        self,
        model: nn.Module,
        atomic_numbers: Sequence[int],
        reference_energies: Sequence[float] | None = None,
        scale: float = 1.0,
        shift: float = 0.0,
    ) -> None:
        super().__init__()
        numbers = [int(z) for z in atomic_numbers]
        if len(numbers) == 0 or len(set(numbers)) != len(numbers) or min(numbers) < 1:
            raise ValueError(f"atomic_numbers must be distinct positive ints, got {numbers}")
        num_species = getattr(model, "num_species", None)
        if num_species is not None and num_species != len(numbers):
            raise ValueError(
                f"model has num_species={num_species} but {len(numbers)} atomic_numbers were "
                f"given ({numbers})"
            )
        if reference_energies is None:
            reference_energies = [0.0] * len(numbers)
        if len(reference_energies) != len(numbers):
            raise ValueError(
                f"reference_energies has {len(reference_energies)} entries, expected one per "
                f"species ({len(numbers)})"
            )
        self.model = model
        self.atomic_numbers = numbers
        self.r_max = float(model.r_max)
        table = torch.full((max(numbers) + 1,), -1, dtype=torch.long)
        table[torch.tensor(numbers)] = torch.arange(len(numbers))
        self.register_buffer("species_table", table, persistent=False)
        dtype = torch.get_default_dtype()
        self.register_buffer(
            "reference_energies", torch.tensor([float(e) for e in reference_energies], dtype=dtype)
        )
        self.register_buffer("scale", torch.tensor(float(scale), dtype=dtype))
        self.register_buffer("shift", torch.tensor(float(shift), dtype=dtype))

    # ----------------------------------------------------------------------------- checks
    def species_index(self, graph: AtomicGraph) -> Tensor:
        """``[n_atoms]`` species indices of ``graph.atomic_numbers``.

        An unknown species raises ``ValueError`` naming the structure (index and formula).
        """
        numbers = graph.atomic_numbers
        table = self.species_table
        idx = table[numbers.clamp(0, table.shape[0] - 1)]
        bad = (numbers < 0) | (numbers >= table.shape[0]) | (idx < 0)
        if not torch.compiler.is_compiling() and not numbers.is_meta and bool(bad.any()):
            a = int(bad.nonzero()[0, 0])
            z = int(numbers[a])
            known = ", ".join(symbol(k) for k in self.atomic_numbers)
            raise ValueError(
                f"{describe(graph, int(graph.batch[a]))}: atom {a} is {symbol(z)} (Z={z}), a "
                f"species this model does not know; it knows {known}"
            )
        return idx

    @staticmethod
    def check_positions(graph: AtomicGraph) -> None:
        """Raise ``ValueError`` naming the structure and atom if a position is not finite."""
        finite = torch.isfinite(graph.pos).all(dim=-1)
        if not bool(finite.all()):
            a = int((~finite).nonzero()[0, 0])
            raise ValueError(
                f"{describe(graph, int(graph.batch[a]))}: positions must be finite; atom {a} "
                f"has {graph.pos[a].tolist()}"
            )

    #: atoms closer than this (Å) are refused: coincident atoms have no direction between them
    #: and the radial bases diverge at r = 0 (one such pair gave MACE E = 6.4e7 eV)
    min_distance: float = 1e-3

    #: graphs with more edges than this per atom (on average) are refused before the model
    #: runs: dense matter at r_max = 8 Å has a few hundred; a cell given in the wrong units
    #: (0.001 Å wide) put 3e7 images of one atom in range and took 23 GB
    max_neighbors: float = 2000.0

    def check_edge_count(self, graph: AtomicGraph) -> None:
        """Raise ``ValueError`` if the graph has more than :attr:`max_neighbors` edges per
        atom (on average over the batch)."""
        n_atoms, n_edges = graph.pos.shape[0], graph.edge_index.shape[1]
        if n_atoms and n_edges > self.max_neighbors * n_atoms:
            raise ValueError(
                f"{describe(graph, 0) if graph.num_graphs == 1 else 'the batch'}: {n_edges} "
                f"edges for {n_atoms} atoms, {n_edges / n_atoms:.3g} per atom (limit "
                f"{self.max_neighbors:g}, Potential.max_neighbors): check the cell's units "
                f"or r_max"
            )

    def check_distances(self, graph: AtomicGraph, edge_vec: Tensor) -> None:
        """Raise ``ValueError`` naming the structure and atoms of an edge shorter than
        :attr:`min_distance` (two atoms at, or almost at, the same place)."""
        if edge_vec.shape[0] == 0:
            return
        r2 = (edge_vec.detach() * edge_vec.detach()).sum(-1)  # [n_edges]
        e = int(r2.argmin())
        if float(r2[e]) < self.min_distance**2:
            i, j = graph.edge_index[:, e].tolist()
            raise ValueError(
                f"{describe(graph, int(graph.batch[i]))}: atoms {i} and {j} are "
                f"{float(r2[e]) ** 0.5:.3g} Å apart (at {graph.pos[i].tolist()}); atoms closer "
                f"than {self.min_distance} Å have no defined energy"
            )

    # ----------------------------------------------------------------------------- forward
    def forward(
        self,
        graph: AtomicGraph,
        compute_forces: bool = True,
        compute_stress: bool = False,
        create_graph: bool | None = None,
    ) -> dict[str, Tensor]:
        """Energies and their derivatives for a batch of structures.

        Args:
            graph: an :class:`~equidyn.graph.AtomicGraph` whose edges were built with a
                cutoff ``>= self.r_max`` (edges longer than ``r_max`` contribute nothing).
            compute_forces: return ``"forces"`` ``[n_atoms, 3]`` (eV/Å).
            compute_stress: return ``"stress"`` ``[n_graphs, 3, 3]`` (eV/Å³; zero for
                structures with zero cell volume, i.e. molecules).
            create_graph: keep the graph of the derivatives so a loss on forces/stress can be
                back-propagated (default: ``self.training``).

        Returns:
            ``{"energy": [n_graphs], "atomic_energies": [n_atoms], "forces", "stress"}``.
        """
        if create_graph is None:
            create_graph = self.training
        if graph.pos.dtype != self.scale.dtype:
            raise TypeError(
                f"the potential is {self.scale.dtype} but the positions are {graph.pos.dtype}: "
                f"convert the positions (pos.to({self.scale.dtype})) or the potential "
                f"(potential.to({graph.pos.dtype})); inputs are never cast silently"
            )
        checks = not torch.compiler.is_compiling() and not graph.pos.is_meta  # meta: no data
        if checks:
            self.check_positions(graph)
            self.check_edge_count(graph)
        species = self.species_index(graph)  # [n_atoms]
        pos, cell = graph.pos, graph.cell
        wrt: list[Tensor] = []
        if compute_forces:
            if not pos.requires_grad:
                pos = pos.detach().requires_grad_(True)
            wrt.append(pos)
        if compute_stress:
            strain = torch.zeros_like(cell, requires_grad=True)  # [n_graphs, 3, 3]
            wrt.append(strain)
            pos_in, cell_in = apply_strain(pos, cell, strain, graph.batch)
        else:
            pos_in, cell_in = pos, cell
        edge_vec = edge_vectors(pos_in, graph.edge_index, graph.edge_shift, cell_in, graph.batch)
        # [n_edges, 3]
        if checks:
            self.check_distances(graph, edge_vec)
        eps = self.model(species, graph.edge_index, edge_vec)  # [n_atoms]
        atom_energy = self.scale * eps + self.shift + self.reference_energies[species]
        energy = scatter_sum(atom_energy, graph.batch, graph.num_graphs)  # [n_graphs]
        out = {"energy": energy, "atomic_energies": atom_energy}
        if wrt:
            grads = torch.autograd.grad(
                energy.sum(), wrt, create_graph=create_graph, allow_unused=True
            )
            if compute_forces:
                g = grads[0]
                out["forces"] = -g if g is not None else torch.zeros_like(pos)  # [n_atoms, 3]
            if compute_stress:
                out["stress"] = self._stress(grads[-1], cell)  # [n_graphs, 3, 3]
        return out

    @staticmethod
    def _stress(grad: Tensor | None, cell: Tensor) -> Tensor:
        """``∂E/∂ε / V`` per structure ``[n_graphs, 3, 3]`` (zero where the volume is zero)."""
        g = grad if grad is not None else torch.zeros_like(cell)
        vol = cell_volume(cell)  # [n_graphs]
        has_vol = vol > 0
        safe = torch.where(has_vol, vol, torch.ones_like(vol))
        return torch.where(has_vol[:, None, None], g / safe[:, None, None], torch.zeros_like(g))

    def compute(
        self,
        atomic_numbers: Sequence[int] | Tensor,
        pos: Tensor,
        cell: Tensor | None = None,
        pbc: bool | Sequence[bool] = False,
        compute_stress: bool = False,
    ) -> dict[str, Tensor]:
        """Energy, forces (and stress) of one structure given as plain tensors.

        Builds the radius graph with ``self.r_max`` and calls :meth:`forward` without
        ``create_graph``.
        """
        if not torch.isfinite(pos).all():
            a = int((~torch.isfinite(pos)).any(-1).nonzero()[0, 0])
            raise ValueError(f"positions must be finite; atom {a} has {pos[a].tolist()}")
        graph = radius_graph(
            pos, atomic_numbers, self.r_max, cell, pbc, max_neighbors=self.max_neighbors
        )
        return self(graph, compute_forces=True, compute_stress=compute_stress, create_graph=False)

    # ----------------------------------------------------------------------------- saving
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this potential (see :func:`load_model`)."""
        return potential_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Potential:
        """Inverse of :meth:`to_dict`."""
        return potential_from_dict(d)
