r"""Verlet (skin) neighbour lists: rebuild only when an atom has moved more than half the skin.

A list built with the larger cutoff :math:`r_{\max} + \delta` (``skin`` :math:`\delta`)
still holds every pair closer than :math:`r_{\max}` as long as no atom has moved more than
:math:`\delta/2` since it was built: for displacements :math:`\vec u_i` with
:math:`|\vec u_i| \le \delta/2`,

.. math::

    |\vec r_{ij}(t)| < r_{\max} \;\Rightarrow\;
    |\vec r_{ij}(t_0)| \le |\vec r_{ij}(t)| + |\vec u_i| + |\vec u_j| < r_{\max} + \delta.

So between rebuilds each call only recomputes the vectors
:math:`\vec r_j - \vec r_i + S\,C` of the stored candidate pairs and keeps those with
:math:`|\vec r_{ij}| < r_{\max}`: :math:`O(n_{\text{edges}})` work, the same edges in the
same order ``(i, j, S)`` as a fresh :func:`~equidyn.graph.neighbors.neighbor_list` (up to
pairs within rounding of :math:`r_{\max}`). The list is rebuilt when an atom moved more
than :math:`\delta/2`, or when the cell, the periodicity, the number of atoms or the
atomic numbers changed.

Atoms wrapped back into a periodic cell (``ase.Atoms.wrap``: a position jumps by a whole
lattice vector :math:`n_i C`) are not moves: the displacement is measured modulo the
lattice, :math:`\vec u_i = \vec r_i - \vec r_i^{\,0} - n_i C` with
:math:`n_i = \operatorname{round}((\vec r_i - \vec r_i^{\,0}) C^{-1})` along periodic
directions, and the stored shifts become :math:`S' = S + n_i - n_j`, which keeps every
edge vector the same.

The candidate filter runs over chunks of ``chunk_edges`` edges, so its temporaries stay at
a few tens of MB even for :math:`10^7` candidate pairs.

>>> import numpy as np
>>> nl = VerletList(r_max=1.5, skin=0.5)
>>> pos = np.array([[0.0, 0.0, 0.0], [1.2, 0.0, 0.0], [3.0, 0.0, 0.0]])
>>> edge_index, shift = nl.update(pos)
>>> edge_index.tolist(), nl.n_builds
([[0, 1], [1, 0]], 1)
>>> pos[2, 0] = 2.6  # atom 2 moved 0.4 > skin/2: rebuilt, and 1-2 (1.4 Å) is now a pair
>>> nl.update(pos)[0].tolist(), nl.n_builds
([[0, 1, 1, 2], [1, 0, 2, 1]], 2)
>>> pos[2, 0] = 2.8  # moved 0.2 <= skin/2 since the rebuild: the stored candidates suffice
>>> nl.update(pos)[0].tolist(), nl.n_builds
([[0, 1], [1, 0]], 2)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from equidyn.graph.neighbors import (
    ArrayLike3,
    _as_numpy_pos,
    _normalize_cell,
    _normalize_pbc,
    _unit_rows,
    neighbor_list,
)

__all__ = ["VerletList", "filter_edges"]

#: edges per chunk of the candidate filter (about 24 MB of float64 temporaries per chunk)
DEFAULT_CHUNK_EDGES = 1 << 20


def filter_edges(
    pos: Tensor,
    edge_index: Tensor,
    edge_offset: Tensor | None,
    r_max: float,
    chunk_edges: int | None = DEFAULT_CHUNK_EDGES,
) -> Tensor:
    r"""``[n_edges]`` bool mask of the edges with :math:`|\vec r_j - \vec r_i + \vec o| < r_{\max}`.

    :math:`\vec o = S\,C` is the Cartesian offset of each edge's lattice shift (``None``: no
    periodicity). Computed over chunks of ``chunk_edges`` edges (``None``: all at once), so
    that ``[chunk, 3]`` temporaries, not ``[n_edges, 3]`` ones, bound the memory; the mask is
    the same either way.

    Args:
        pos: ``[n_atoms, 3]`` positions.
        edge_index: ``[2, n_edges]`` candidate pairs ``(i, j)``.
        edge_offset: ``[n_edges, 3]`` offsets ``edge_shift @ cell``, or ``None``.
        r_max: cutoff (Å).
        chunk_edges: edges per chunk, or ``None``.

    >>> pos = torch.tensor([[0.0, 0, 0], [1.0, 0, 0]], dtype=torch.float64)
    >>> ei = torch.tensor([[0, 1, 0], [1, 0, 0]])
    >>> offset = torch.tensor([[0.0, 0, 0], [0, 0, 0], [2, 0, 0]], dtype=torch.float64)
    >>> filter_edges(pos, ei, offset, 1.5, chunk_edges=2)
    tensor([ True,  True, False])
    """
    if chunk_edges is not None and chunk_edges < 1:
        raise ValueError(f"chunk_edges must be a positive int or None, got {chunk_edges}")
    n_edges = edge_index.shape[1]
    step = max(n_edges if chunk_edges is None else chunk_edges, 1)
    keep = torch.empty(n_edges, dtype=torch.bool, device=pos.device)
    ones = torch.ones(3, dtype=pos.dtype, device=pos.device)
    r2 = float(r_max) ** 2
    for lo in range(0, n_edges, step):
        hi = min(n_edges, lo + step)
        vec = pos.index_select(0, edge_index[1, lo:hi])  # [chunk, 3]
        vec.sub_(pos.index_select(0, edge_index[0, lo:hi]))
        if edge_offset is not None:
            vec.add_(edge_offset[lo:hi])
        vec.mul_(vec)
        # (a matrix-vector product sums the 3 columns several times faster than .sum(1))
        torch.lt(vec @ ones, r2, out=keep[lo:hi])
    return keep


def _lattice_basis(cell: np.ndarray, pbc: np.ndarray) -> np.ndarray:
    """``[3, 3]`` invertible basis: the periodic rows of ``cell``, orthonormal rows elsewhere."""
    basis = cell.copy()
    n_periodic = int(pbc.sum())
    if n_periodic < 3:
        q = np.linalg.qr(_unit_rows(cell[pbc]).T, mode="complete")[0] if n_periodic else np.eye(3)
        basis[~pbc] = q[:, n_periodic:].T
    return basis


class VerletList:
    r"""A neighbour list with a skin, for a sequence of geometries of one system (MD).

    :meth:`update` returns the edges within ``r_max`` of the positions given, rebuilding the
    candidate list (cutoff ``r_max + skin``) only when needed (see the module docstring).
    ``skin = 0`` rebuilds whenever an atom moved at all and returns the list of
    :func:`~equidyn.graph.neighbors.neighbor_list` unfiltered (the behaviour without a skin).

    Args:
        r_max: cutoff radius (Å), > 0.
        skin: extra radius :math:`\delta \ge 0` of the stored candidates (Å). Larger skins
            rebuild less often but filter more candidates per call: about
            :math:`((r_{\max} + \delta) / r_{\max})^3` times the edges.
        backend: neighbour search backend of :func:`~equidyn.graph.neighbors.neighbor_list`.
        max_neighbors: edges-per-atom limit within ``r_max`` (the candidate list's limit is
            scaled by :math:`((r_{\max} + \delta)/r_{\max})^3`), or ``None``.
        chunk_edges: edges per chunk of the candidate filter (:func:`filter_edges`).

    Attributes:
        n_builds: neighbour searches done so far.
        n_updates: calls of :meth:`update`.
        build_seconds: wall time spent in neighbour searches.
        filter_seconds: wall time spent filtering candidates (between and after rebuilds).
        n_candidates: edges of the current candidate list.
    """

    def __init__(
        self,
        r_max: float,
        skin: float = 0.0,
        backend: str = "auto",
        max_neighbors: float | None = None,
        chunk_edges: int | None = DEFAULT_CHUNK_EDGES,
    ) -> None:
        if isinstance(r_max, bool) or not isinstance(r_max, (int, float)):
            raise TypeError(f"r_max must be a number, got {type(r_max).__name__}")
        if not (math.isfinite(r_max) and r_max > 0):
            raise ValueError(f"r_max must be a positive finite number, got {r_max}")
        if isinstance(skin, bool) or not isinstance(skin, (int, float)):
            raise TypeError(f"skin must be a number (Å), got {type(skin).__name__}")
        if not (math.isfinite(skin) and skin >= 0):
            raise ValueError(f"skin must be a finite number >= 0 (Å), got {skin}")
        if chunk_edges is not None and (isinstance(chunk_edges, bool) or chunk_edges < 1):
            raise ValueError(f"chunk_edges must be a positive int or None, got {chunk_edges}")
        self.r_max = float(r_max)
        self.skin = float(skin)
        self.backend = backend
        self.max_neighbors = max_neighbors
        self.chunk_edges = chunk_edges
        self.n_builds = 0
        self.n_updates = 0
        self.build_seconds = 0.0
        self.filter_seconds = 0.0
        self._ref_pos: np.ndarray | None = None
        self._cell = np.zeros((3, 3))
        self._pbc = np.zeros(3, dtype=bool)
        self._numbers: np.ndarray | None = None
        self._inv_basis = np.eye(3)
        self._index = torch.zeros(2, 0, dtype=torch.long)
        self._shift = torch.zeros(0, 3, dtype=torch.long)
        self._offset: Tensor | None = None  # [n_candidates, 3] float64 shift @ cell

    @property
    def n_candidates(self) -> int:
        """Edges of the stored candidate list (cutoff ``r_max + skin``)."""
        return int(self._index.shape[1])

    def _changed(
        self, n: int, cell: np.ndarray, pbc: np.ndarray, numbers: np.ndarray | None
    ) -> bool:
        if self._ref_pos is None or self._ref_pos.shape[0] != n:
            return True
        if not (np.array_equal(cell, self._cell) and np.array_equal(pbc, self._pbc)):
            return True
        if numbers is None or self._numbers is None:
            return (numbers is None) != (self._numbers is None)
        return not np.array_equal(numbers, self._numbers)

    def _jumps(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(|u|^2 [n_atoms], n [n_atoms, 3] or None)``: squared displacements since the
        build modulo the lattice, and the whole lattice vectors removed (None if all 0)."""
        assert self._ref_pos is not None
        d = pos - self._ref_pos  # [n_atoms, 3]
        jump = None
        if self._pbc.any():
            n = np.where(self._pbc[None, :], np.rint(d @ self._inv_basis), 0.0)  # [n_atoms, 3]
            if n.any():
                d = d - n @ self._cell
                jump = n.astype(np.int64)
        return (d * d).sum(axis=1), jump

    def _rebuild(
        self, pos: np.ndarray, cell: np.ndarray, pbc: np.ndarray, numbers: np.ndarray | None
    ) -> None:
        start = time.perf_counter()
        scale = ((self.r_max + self.skin) / self.r_max) ** 3
        self._index, self._shift = neighbor_list(
            pos, self.r_max + self.skin, cell if pbc.any() else None, pbc, backend=self.backend,
            max_neighbors=None if self.max_neighbors is None else self.max_neighbors * scale,
        )  # fmt: skip
        self._ref_pos = pos.copy()
        self._cell, self._pbc = cell.copy(), pbc.copy()
        self._numbers = None if numbers is None else numbers.copy()
        self._inv_basis = np.linalg.inv(_lattice_basis(cell, pbc))
        self._offset = self._shift.double() @ torch.from_numpy(cell) if pbc.any() else None
        self.n_builds += 1
        self.build_seconds += time.perf_counter() - start

    def needs_rebuild(
        self,
        pos: Tensor | np.ndarray | Sequence[Sequence[float]],
        cell: ArrayLike3 | None = None,
        pbc: bool | Sequence[bool] | Tensor | np.ndarray = False,
        numbers: Sequence[int] | np.ndarray | Tensor | None = None,
    ) -> bool:
        """Whether :meth:`update` with these arguments would search neighbours anew."""
        pos_np, cell_np, pbc_np, z = self._check(pos, cell, pbc, numbers)
        if self._changed(pos_np.shape[0], cell_np, pbc_np, z):
            return True
        u2, _ = self._jumps(pos_np)
        return bool(u2.shape[0]) and float(u2.max()) > (0.5 * self.skin) ** 2

    @staticmethod
    def _check(
        pos: Tensor | np.ndarray | Sequence[Sequence[float]],
        cell: ArrayLike3 | None,
        pbc: bool | Sequence[bool] | Tensor | np.ndarray,
        numbers: Sequence[int] | np.ndarray | Tensor | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        pos_np = _as_numpy_pos(pos)
        pbc_np = _normalize_pbc(pbc)
        cell_np = _normalize_cell(cell, pbc_np)
        z = None
        if numbers is not None:
            z = np.asarray(numbers.cpu() if isinstance(numbers, Tensor) else numbers).reshape(-1)
            if z.shape[0] != pos_np.shape[0]:
                raise ValueError(f"got {z.shape[0]} atomic numbers for {pos_np.shape[0]} atoms")
        return pos_np, cell_np, pbc_np, z

    def update(
        self,
        pos: Tensor | np.ndarray | Sequence[Sequence[float]],
        cell: ArrayLike3 | None = None,
        pbc: bool | Sequence[bool] | Tensor | np.ndarray = False,
        numbers: Sequence[int] | np.ndarray | Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        r"""The edges within ``r_max`` of these positions, as
        :func:`~equidyn.graph.neighbors.neighbor_list` returns them.

        Args:
            pos: ``[n_atoms, 3]`` positions (Å); wrapped or not.
            cell: ``[3, 3]`` lattice vectors as rows, or ``None`` for a molecule.
            pbc: periodicity, one bool or three.
            numbers: ``[n_atoms]`` atomic numbers, or ``None``; a change forces a rebuild.

        Returns:
            ``edge_index`` ``[2, n_edges]`` and ``edge_shift`` ``[n_edges, 3]`` (int64, CPU,
            sorted by ``(i, j, S)``).
        """
        pos_np, cell_np, pbc_np, z = self._check(pos, cell, pbc, numbers)
        self.n_updates += 1
        jump = None
        if self._changed(pos_np.shape[0], cell_np, pbc_np, z):
            self._rebuild(pos_np, cell_np, pbc_np, z)
        else:
            u2, jump = self._jumps(pos_np)
            if u2.shape[0] and float(u2.max()) > (0.5 * self.skin) ** 2:
                self._rebuild(pos_np, cell_np, pbc_np, z)
                jump = None
        if self.skin == 0.0 and jump is None:
            return self._index, self._shift  # the fresh list itself
        start = time.perf_counter()
        index, shift, offset = self._index, self._shift, self._offset
        if jump is not None and offset is not None:
            j = torch.from_numpy(jump)  # [n_atoms, 3]
            extra = j.index_select(0, index[0]) - j.index_select(0, index[1])  # [n_cand, 3]
            shift = shift + extra
            offset = offset + extra.double() @ torch.from_numpy(cell_np)
        pos_t = torch.from_numpy(pos_np)  # [n_atoms, 3] float64
        keep = filter_edges(pos_t, index, offset, self.r_max, self.chunk_edges)
        kept = keep.nonzero().squeeze(1)
        index, shift = index.index_select(1, kept), shift.index_select(0, kept)
        if jump is not None:  # shifts changed: restore the (i, j, S) order of a fresh list
            s = shift.numpy()
            order = np.lexsort((s[:, 2], s[:, 1], s[:, 0], index[1].numpy(), index[0].numpy()))
            o = torch.from_numpy(order)
            index, shift = index[:, o], shift[o]
        self.filter_seconds += time.perf_counter() - start
        # contiguous like a fresh list's, so that the model's kernels (and sums) are the same
        return index.contiguous(), shift.contiguous()
