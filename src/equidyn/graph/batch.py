r"""The atomic graph container, batching of many structures into one graph, species maps.

One :class:`AtomicGraph` holds :math:`B \ge 1` structures as one disconnected graph:
nodes are concatenated, edge indices are offset by the number of atoms before each
structure, ``batch[n]`` is the structure of atom ``n`` and ``ptr[b]:ptr[b+1]`` its atom range.
A sum of per-atom energies into per-structure energies is then
:math:`E_b = \sum_{n:\,\mathrm{batch}_n = b} \epsilon_n`
(``scatter_sum(eps, graph.batch, graph.num_graphs)``).

>>> import torch
>>> g = radius_graph(torch.tensor([[0.0, 0, 0], [0, 0, 1.0]]), torch.tensor([1, 8]), r_max=2.0)
>>> both = batch_graphs([g, g])
>>> both.num_graphs, both.num_nodes, both.num_edges
(2, 4, 4)
>>> both.edge_index
tensor([[0, 1, 2, 3],
        [1, 0, 3, 2]])
>>> both.batch, both.ptr
(tensor([0, 0, 1, 1]), tensor([0, 2, 4]))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from equidyn.graph.neighbors import (
    ArrayLike3,
    _as_numpy_pos,
    _normalize_cell,
    _normalize_pbc,
    apply_strain,
    edge_vectors,
    neighbor_list,
)

__all__ = ["AtomicGraph", "radius_graph", "batch_graphs", "species_index"]

_FLOAT_FIELDS = ("pos", "cell", "energy", "forces", "stress")


@dataclass
class AtomicGraph:
    r"""One or several atomic structures with their radius graph and optional labels.

    Units: positions and cell in Å, energy in eV, forces in eV/Å, stress in eV/Å³ (ASE sign
    convention, :math:`\sigma = V^{-1}\,\partial E/\partial\varepsilon`). Edges follow
    :mod:`equidyn.graph.neighbors`: ``edge_vec = pos[j] - pos[i] + edge_shift @ cell`` with
    ``(i, j) = edge_index``.

    Attributes:
        pos: ``[n_atoms, 3]`` positions.
        atomic_numbers: ``[n_atoms]`` int64 atomic numbers :math:`Z`.
        edge_index: ``[2, n_edges]`` int64 (source ``i``, destination ``j``).
        edge_shift: ``[n_edges, 3]`` int64 lattice shifts :math:`S`.
        cell: ``[n_graphs, 3, 3]`` lattice vectors as rows (zeros for a molecule).
        pbc: ``[n_graphs, 3]`` bool.
        batch: ``[n_atoms]`` int64 structure index of each atom.
        ptr: ``[n_graphs + 1]`` int64 atom offsets.
        energy: ``[n_graphs]`` total energies or ``None``.
        forces: ``[n_atoms, 3]`` or ``None``.
        stress: ``[n_graphs, 3, 3]`` or ``None``.
        species: ``[n_atoms]`` int64 type index in a type map (see :func:`species_index`),
            or ``None``.
        r_max: cutoff the edges were built with (Å), or ``None`` when there are no edges.
    """

    pos: Tensor
    atomic_numbers: Tensor
    edge_index: Tensor
    edge_shift: Tensor
    cell: Tensor
    pbc: Tensor
    batch: Tensor
    ptr: Tensor
    energy: Tensor | None = None
    forces: Tensor | None = None
    stress: Tensor | None = None
    species: Tensor | None = None
    r_max: float | None = None

    def __post_init__(self) -> None:
        n, b = self.pos.shape[0], self.cell.shape[0]
        expected = {
            "pos": (n, 3),
            "atomic_numbers": (n,),
            "edge_index": (2, self.edge_index.shape[-1]),
            "edge_shift": (self.edge_index.shape[-1], 3),
            "cell": (b, 3, 3),
            "pbc": (b, 3),
            "batch": (n,),
            "ptr": (b + 1,),
            "energy": (b,),
            "forces": (n, 3),
            "stress": (b, 3, 3),
            "species": (n,),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value is None and name in ("energy", "forces", "stress", "species"):
                continue
            if not isinstance(value, Tensor):
                raise TypeError(f"AtomicGraph.{name} must be a Tensor, got {type(value).__name__}")
            if tuple(value.shape) != shape:
                raise ValueError(
                    f"AtomicGraph.{name} must have shape {list(shape)} for {n} atoms and "
                    f"{b} graphs, got {list(value.shape)}"
                )
        for name in ("atomic_numbers", "edge_index", "edge_shift", "batch", "ptr"):
            if getattr(self, name).dtype != torch.long:
                raise TypeError(
                    f"AtomicGraph.{name} must be int64, got {getattr(self, name).dtype}"
                )

    # ------------------------------------------------------------------ sizes
    @property
    def num_graphs(self) -> int:
        """Number of structures :math:`B`."""
        return self.cell.shape[0]

    @property
    def num_nodes(self) -> int:
        """Number of atoms over all structures."""
        return self.pos.shape[0]

    @property
    def num_edges(self) -> int:
        """Number of directed edges over all structures."""
        return self.edge_index.shape[1]

    @property
    def num_atoms(self) -> Tensor:
        """``[n_graphs]`` atoms per structure, ``ptr[1:] - ptr[:-1]``."""
        return self.ptr[1:] - self.ptr[:-1]

    # ------------------------------------------------------------- geometry
    def edge_vectors(self, strain: Tensor | None = None) -> Tensor:
        r"""``[n_edges, 3]`` vectors :math:`\vec r_j - \vec r_i + S C`, differentiable.

        With ``strain`` (``[n_graphs, 3, 3]``), positions and cells are first deformed by
        :func:`~equidyn.graph.apply_strain`, so ``dE/d strain / volume`` is the stress.
        """
        pos, cell = self.pos, self.cell
        if strain is not None:
            pos, cell = apply_strain(pos, cell, strain, self.batch)
        return edge_vectors(pos, self.edge_index, self.edge_shift, cell, self.batch)

    def volume(self) -> Tensor:
        r"""``[n_graphs]`` cell volumes :math:`|\det C|` (0 for molecules)."""
        return torch.linalg.det(self.cell).abs()

    # -------------------------------------------------------------- devices
    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> AtomicGraph:
        """A copy on ``device``; floating fields (pos, cell, labels) cast to ``dtype``."""
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating point dtype, got {dtype}")
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                if f.name in _FLOAT_FIELDS:
                    changes[f.name] = value.to(device=device, dtype=dtype)
                else:
                    changes[f.name] = value.to(device=device)
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------- (un)batching
    def unbatch(self) -> list[AtomicGraph]:
        """Split into one :class:`AtomicGraph` per structure (inverse of :func:`batch_graphs`)."""
        out = []
        edge_graph = self.batch[self.edge_index[0]]  # [n_edges]
        for b in range(self.num_graphs):
            lo, hi = int(self.ptr[b]), int(self.ptr[b + 1])
            emask = edge_graph == b
            out.append(
                AtomicGraph(
                    pos=self.pos[lo:hi],
                    atomic_numbers=self.atomic_numbers[lo:hi],
                    edge_index=self.edge_index[:, emask] - lo,
                    edge_shift=self.edge_shift[emask],
                    cell=self.cell[b : b + 1],
                    pbc=self.pbc[b : b + 1],
                    batch=torch.zeros(hi - lo, dtype=torch.long, device=self.pos.device),
                    ptr=torch.tensor([0, hi - lo], dtype=torch.long, device=self.pos.device),
                    energy=None if self.energy is None else self.energy[b : b + 1],
                    forces=None if self.forces is None else self.forces[lo:hi],
                    stress=None if self.stress is None else self.stress[b : b + 1],
                    species=None if self.species is None else self.species[lo:hi],
                    r_max=self.r_max,
                )
            )
        return out

    def with_edges(self, r_max: float, backend: str = "auto") -> AtomicGraph:
        """A copy whose edges are rebuilt with cutoff ``r_max`` (e.g. after moving atoms)."""
        index, shift = [], []
        for b in range(self.num_graphs):
            lo, hi = int(self.ptr[b]), int(self.ptr[b + 1])
            ei, es = neighbor_list(
                self.pos[lo:hi], r_max, self.cell[b], self.pbc[b], backend=backend
            )
            index.append(ei + lo)
            shift.append(es)
        return dataclasses.replace(
            self,
            edge_index=torch.cat(index, dim=1),
            edge_shift=torch.cat(shift, dim=0),
            r_max=float(r_max),
        )


def _optional_tensor(
    value: Tensor | np.ndarray | Sequence | float | None,
    dtype: torch.dtype,
    shape: tuple,
    name: str,
) -> Tensor | None:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=dtype)
    if t.numel() != int(np.prod(shape)):
        raise ValueError(f"{name} must have shape {list(shape)}, got {tuple(t.shape)}")
    return t.reshape(shape)


def radius_graph(
    pos: Tensor | np.ndarray | Sequence[Sequence[float]],
    atomic_numbers: Tensor | np.ndarray | Sequence[int],
    r_max: float | None,
    cell: ArrayLike3 | None = None,
    pbc: bool | Sequence[bool] | Tensor | np.ndarray = False,
    energy: float | Tensor | None = None,
    forces: Tensor | np.ndarray | None = None,
    stress: Tensor | np.ndarray | None = None,
    species: Tensor | np.ndarray | Sequence[int] | None = None,
    backend: str = "auto",
    max_neighbors: float | None = None,
) -> AtomicGraph:
    r"""The :class:`AtomicGraph` of one structure: all edges with :math:`|\vec r_{ij}| < r_{\max}`.

    ``pos`` keeps its dtype when it is a floating tensor (else float64). Labels are optional.
    ``r_max=None`` gives a graph without edges (to be filled later by
    :meth:`AtomicGraph.with_edges`); positions and the cell are still checked.
    ``stress`` may be a ``[3, 3]`` matrix or ASE Voigt order ``(xx, yy, zz, yz, xz, xy)``.
    ``backend`` and ``max_neighbors`` are passed to
    :func:`~equidyn.graph.neighbors.neighbor_list`.

    >>> import torch
    >>> g = radius_graph(torch.zeros(1, 3), [29], r_max=3.0, cell=2.5 * torch.eye(3), pbc=True)
    >>> g.num_edges, g.edge_vectors().norm(dim=1).tolist()  # its own 6 nearest images
    (6, [2.5, 2.5, 2.5, 2.5, 2.5, 2.5])
    """
    if isinstance(pos, Tensor) and pos.dtype.is_floating_point:
        pos_t = pos
    else:
        pos_t = torch.as_tensor(np.asarray(pos, dtype=np.float64))
    dtype, device = pos_t.dtype, pos_t.device
    if pos_t.dim() != 2 or pos_t.shape[1] != 3:
        raise ValueError(f"positions must have shape [n_atoms, 3], got {tuple(pos_t.shape)}")
    n = pos_t.shape[0]
    z = torch.as_tensor(atomic_numbers, dtype=torch.long, device=device).reshape(-1)
    if z.shape[0] != n:
        raise ValueError(f"got {z.shape[0]} atomic numbers for {n} positions")
    if n and (z.min() < 1 or z.max() > 118):
        raise ValueError(f"atomic numbers must be in 1..118, got {z.tolist()}")
    pbc_t = torch.as_tensor(np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy())
    if r_max is None:
        _normalize_cell(cell, _normalize_pbc(pbc_t))  # the same checks as neighbor_list
        _as_numpy_pos(pos_t)
        edge_index = torch.zeros(2, 0, dtype=torch.long)
        edge_shift = torch.zeros(0, 3, dtype=torch.long)
    else:
        edge_index, edge_shift = neighbor_list(
            pos_t, r_max, cell, pbc_t, backend=backend, max_neighbors=max_neighbors
        )
    cell_t = torch.zeros(3, 3, dtype=dtype) if cell is None else torch.as_tensor(cell, dtype=dtype)
    if stress is not None:
        s = torch.as_tensor(stress, dtype=dtype)
        if s.numel() == 6:
            xx, yy, zz, yz, xz, xy = s.reshape(6).unbind()
            s = torch.stack([xx, xy, xz, xy, yy, yz, xz, yz, zz]).reshape(3, 3)
        stress = s
    return AtomicGraph(
        pos=pos_t,
        atomic_numbers=z,
        edge_index=edge_index.to(device),
        edge_shift=edge_shift.to(device),
        cell=cell_t.reshape(1, 3, 3).to(device),
        pbc=pbc_t.reshape(1, 3).to(device),
        batch=torch.zeros(n, dtype=torch.long, device=device),
        ptr=torch.tensor([0, n], dtype=torch.long, device=device),
        energy=_optional_tensor(energy, dtype, (1,), "energy"),
        forces=_optional_tensor(forces, dtype, (n, 3), "forces"),
        stress=_optional_tensor(stress, dtype, (1, 3, 3), "stress"),
        species=_optional_tensor(species, torch.long, (n,), "species"),
        r_max=None if r_max is None else float(r_max),
    )


def _cat_optional(graphs: Sequence[AtomicGraph], name: str, dim: int = 0) -> Tensor | None:
    values = [getattr(g, name) for g in graphs]
    if any(v is None for v in values):
        return None
    return torch.cat(values, dim=dim)


def batch_graphs(graphs: Sequence[AtomicGraph]) -> AtomicGraph:
    r"""Concatenate structures into one disconnected graph (the collate function).

    Node fields are concatenated, ``edge_index`` of graph :math:`g` is offset by
    :math:`\sum_{h<g} n_h`, ``batch`` by the number of structures before. An optional label
    (energy, forces, stress, species) is kept only if every input has it. Already batched
    inputs are fine. All inputs must share dtype, device and ``r_max``.

    >>> import torch
    >>> g = radius_graph(torch.zeros(1, 3), [1], r_max=1.0, energy=-1.0)
    >>> batch_graphs([g, g, g]).energy
    tensor([-1., -1., -1.])
    """
    if len(graphs) == 0:
        raise ValueError("batch_graphs needs at least one graph, got an empty sequence")
    for k, g in enumerate(graphs):
        if not isinstance(g, AtomicGraph):
            raise TypeError(f"graphs[{k}] is a {type(g).__name__}, expected AtomicGraph")
    first = graphs[0]
    for k, g in enumerate(graphs):
        if g.pos.dtype != first.pos.dtype or g.pos.device != first.pos.device:
            raise TypeError(
                f"graphs[{k}] has dtype {g.pos.dtype} on {g.pos.device}, graphs[0] has "
                f"{first.pos.dtype} on {first.pos.device}; use .to() first"
            )
        if g.r_max != first.r_max:
            raise ValueError(f"graphs[{k}] has r_max={g.r_max}, graphs[0] has r_max={first.r_max}")
    if len(graphs) == 1:
        return first
    node_off, graph_off = 0, 0
    edge_index, batch, ptr = [], [], [first.ptr.new_zeros(1)]
    for g in graphs:
        edge_index.append(g.edge_index + node_off)
        batch.append(g.batch + graph_off)
        ptr.append(g.ptr[1:] + node_off)
        node_off += g.num_nodes
        graph_off += g.num_graphs
    return AtomicGraph(
        pos=torch.cat([g.pos for g in graphs]),
        atomic_numbers=torch.cat([g.atomic_numbers for g in graphs]),
        edge_index=torch.cat(edge_index, dim=1),
        edge_shift=torch.cat([g.edge_shift for g in graphs]),
        cell=torch.cat([g.cell for g in graphs]),
        pbc=torch.cat([g.pbc for g in graphs]),
        batch=torch.cat(batch),
        ptr=torch.cat(ptr),
        energy=_cat_optional(graphs, "energy"),
        forces=_cat_optional(graphs, "forces"),
        stress=_cat_optional(graphs, "stress"),
        species=_cat_optional(graphs, "species"),
        r_max=first.r_max,
    )


def species_index(atomic_numbers: Tensor, type_numbers: Tensor | Sequence[int]) -> Tensor:
    r"""Map atomic numbers to type indices: :math:`t_n = k` where ``type_numbers[k] == Z_n``.

    Raises ``ValueError`` naming the atomic numbers that are not in ``type_numbers``.

    >>> import torch
    >>> species_index(torch.tensor([79, 29, 29]), [29, 79])
    tensor([1, 0, 0])
    """
    types = torch.as_tensor(type_numbers, dtype=torch.long, device=atomic_numbers.device)
    if types.dim() != 1 or types.numel() == 0:
        raise ValueError(f"type_numbers must be a non-empty list of atomic numbers, got {types}")
    if types.unique().numel() != types.numel():
        raise ValueError(f"type_numbers has duplicates: {types.tolist()}")
    match = atomic_numbers.reshape(-1, 1) == types.reshape(1, -1)  # [n_atoms, n_types]
    known = match.any(dim=1)
    if not bool(known.all()):
        unknown = sorted(set(atomic_numbers[~known].tolist()))
        raise ValueError(f"atomic numbers {unknown} are not in the type map {types.tolist()}")
    return match.long().argmax(dim=1)
