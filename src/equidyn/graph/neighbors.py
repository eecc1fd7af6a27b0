r"""Radius neighbour lists for molecules and periodic cells, and differentiable edge vectors.

Convention (used everywhere in equidyn)
--------------------------------------
A cell is a ``[3, 3]`` matrix whose **rows** are the lattice vectors :math:`a_1, a_2, a_3`.
An edge is a triple :math:`(i, j, S)` with ``edge_index[:, e] = (i, j)`` (``i`` = source,
``j`` = destination) and an integer lattice shift :math:`S \in \mathbb{Z}^3`
(``edge_shift[e]``). Its vector points from atom :math:`i` to the periodic image of atom
:math:`j`:

.. math::

    \vec r_{ij} = \vec r_j - \vec r_i + S\,C = \vec r_j - \vec r_i + \sum_k S_k\, a_k,
    \qquad 0 < |\vec r_{ij}| < r_{\max}.

The list is *full* (symmetric): with :math:`(i, j, S)` it also holds :math:`(j, i, -S)`.
An atom is never its own neighbour with :math:`S = 0`, but it *is* its own neighbour through
every periodic image closer than :math:`r_{\max}` (small cells, cells thinner than
:math:`2 r_{\max}`). Shifts are only non-zero along periodic directions.

Index lists and shifts come from ``vesin`` (not differentiable, computed once per geometry);
the vectors are then recomputed in torch from positions and cell by :func:`edge_vectors`,
so forces :math:`-\partial E/\partial \vec r` and the stress (derivative with respect to a
strain applied by :func:`apply_strain`) flow through autograd.

>>> import torch
>>> pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
>>> edge_index, edge_shift = neighbor_list(pos, r_max=1.5)
>>> edge_index
tensor([[0, 1],
        [1, 0]])
>>> edge_vectors(pos, edge_index, edge_shift)
tensor([[ 1.,  0.,  0.],
        [-1.,  0.,  0.]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["neighbor_list", "edge_vectors", "apply_strain", "cell_volume"]

ArrayLike3 = Tensor | np.ndarray | Sequence[Sequence[float]]


def _as_numpy_pos(pos: Tensor | np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    if isinstance(pos, Tensor):
        arr = pos.detach().to("cpu", torch.float64).numpy()
    else:
        arr = np.asarray(pos, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"positions must have shape [n_atoms, 3], got {tuple(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise ValueError(f"positions must be finite; atom {bad} has {arr[bad].tolist()}")
    return arr


def _normalize_pbc(pbc: bool | Sequence[bool] | Tensor | np.ndarray) -> np.ndarray:
    arr = np.asarray(pbc.cpu() if isinstance(pbc, Tensor) else pbc, dtype=bool)
    if arr.ndim == 0:
        arr = np.repeat(arr, 3)
    if arr.shape != (3,):
        raise ValueError(f"pbc must be a bool or 3 bools, got {pbc!r}")
    return arr


def _normalize_cell(cell: ArrayLike3 | None, pbc: np.ndarray) -> np.ndarray:
    """Checked [3, 3] float64 cell for the neighbour search (zero rows filled if non-periodic)."""
    if cell is None:
        if pbc.any():
            raise ValueError(f"pbc={pbc.tolist()} needs a cell, got cell=None")
        return np.zeros((3, 3))
    if isinstance(cell, Tensor):
        arr = cell.detach().to("cpu", torch.float64).numpy()
    else:
        arr = np.asarray(cell, dtype=np.float64)
    if arr.shape == (1, 3, 3):
        arr = arr[0]
    if arr.shape != (3, 3):
        raise ValueError(f"cell must have shape [3, 3] (rows = lattice vectors), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"cell must be finite, got {arr.tolist()}")
    if not pbc.any():
        return arr
    # A non-periodic direction may have a zero lattice vector (ASE writes slabs that way);
    # its shifts are always 0, so any independent vector can stand in for it in the search.
    full = arr.copy()
    for k in range(3):
        if not pbc[k] and np.linalg.norm(full[k]) == 0.0:
            full[k] = np.cross(full[(k + 1) % 3], full[(k + 2) % 3])
            if np.linalg.norm(full[k]) == 0.0:
                full[k] = np.eye(3)[k] * max(1.0, np.abs(full).max())
    if abs(np.linalg.det(full)) < 1e-12 * max(1.0, np.abs(full).max() ** 3):
        raise ValueError(
            f"cell {arr.tolist()} is singular along periodic directions pbc={pbc.tolist()}"
        )
    return full


def _vesin_available() -> bool:
    try:
        import vesin  # noqa: F401
    except ImportError:
        return False
    return True


def _vesin_list(
    pos: np.ndarray, r_max: float, cell: np.ndarray, pbc: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import vesin

    nl = vesin.NeighborList(cutoff=float(r_max), full_list=True)
    if not pbc.any():
        # vesin 0.6 crashes the process (SIGFPE) on open systems whose bounding box is large
        # and flat (e.g. three atoms spread over 2000 Å in a plane): search instead in a
        # periodic cube wide enough that no periodic image comes within r_max, so every pair
        # found has shift 0 and is exactly a pair of the open system.
        low = pos.min(axis=0)
        side = float((pos.max(axis=0) - low).max()) + 2.0 * float(r_max) + 1.0
        i, j, shifts = nl.compute(pos - low, np.eye(3) * side, True, "ijS")
        return np.asarray(i, np.int64), np.asarray(j, np.int64), np.zeros((len(i), 3), np.int64)
    if _vesin_cells_collapse(cell, r_max):
        if pos.shape[0] > _BRUTE_FORCE_FALLBACK_ATOMS:
            widths = _face_distances(cell).round(3).tolist()
            raise ValueError(
                f"the cell {cell.tolist()} is too anisotropic for vesin's cell list (widths "
                f"between faces {widths} Å at r_max={r_max}: its grid would have an empty "
                f"direction and crash); with {pos.shape[0]} atoms the brute-force search "
                f"(limit {_BRUTE_FORCE_FALLBACK_ATOMS}) is too large. Use a less elongated cell."
            )
        return _brute_force_list(pos, r_max, cell, pbc)
    periodic: bool | list[bool] = bool(pbc[0]) if (pbc == pbc[0]).all() else pbc.tolist()
    i, j, shifts = nl.compute(pos, cell, periodic, "ijS")
    return np.asarray(i, np.int64), np.asarray(j, np.int64), np.asarray(shifts, np.int64)


#: vesin caps its cell-list grid at this many cells (vesin 0.6, ``MAX_NUMBER_OF_CELLS``)
_VESIN_MAX_CELLS = 1e5
#: largest system for which an anisotropic cell falls back to the O(N^2) brute-force search
_BRUTE_FORCE_FALLBACK_ATOMS = 3000


def _face_distances(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (rows = lattice vectors), shape [3]."""
    volume = abs(float(np.linalg.det(cell)))
    areas = [np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    return np.array([volume / a if a > 0 else 0.0 for a in areas])


def _vesin_cells_collapse(cell: np.ndarray, r_max: float) -> bool:
    """Whether vesin's rescaled cell grid would have a direction with no cell.

    vesin sizes its grid as ``trunc(width / r_max)`` cells per direction and, above
    ``1e5`` cells in all, rescales the three counts keeping their ratios; a thin direction
    then truncates to 0 cells and the search divides by zero (SIGFPE, no exception). This
    mirrors that arithmetic so the call is never made.
    """
    n = np.clip(np.trunc(_face_distances(cell) / r_max), 1.0, None)
    if n.prod() <= _VESIN_MAX_CELLS:
        return False
    ratio_xy, ratio_yz = n[0] / n[1], n[1] / n[2]
    nz = np.trunc(np.cbrt(_VESIN_MAX_CELLS / (ratio_xy * ratio_yz * ratio_yz)))
    ny = np.trunc(ratio_yz * nz)
    nx = np.trunc(ratio_xy * ny)
    return bool(min(nx, ny, nz) < 1)


def _brute_force_list(
    pos: np.ndarray, r_max: float, cell: np.ndarray, pbc: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs against all lattice images that can lie within r_max; O(N^2 x images)."""
    n = pos.shape[0]
    ranges = []
    if pbc.any():
        inv = np.linalg.pinv(cell)
        frac = pos @ inv
        for k in range(3):
            if pbc[k]:
                # distance between lattice planes spanned by the two other vectors
                normal = np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])
                spacing = abs(np.dot(cell[k], normal)) / np.linalg.norm(normal)
                span = frac[:, k].max() - frac[:, k].min() if n else 0.0
                m = int(math.floor(r_max / spacing + span)) + 1
                ranges.append(np.arange(-m, m + 1))
            else:
                ranges.append(np.zeros(1, dtype=np.int64))
    else:
        ranges = [np.zeros(1, dtype=np.int64)] * 3
    shifts = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3)  # [n_images, 3]
    offsets = shifts @ cell  # [n_images, 3]
    vec = pos[None, :, None, :] - pos[:, None, None, :] + offsets[None, None]  # [n, n, img, 3]
    dist2 = (vec**2).sum(-1)
    zero = np.all(shifts == 0, axis=1)
    mask = dist2 < r_max**2
    mask &= ~(np.eye(n, dtype=bool)[:, :, None] & zero[None, None, :])
    i, j, s = np.nonzero(mask)
    return i.astype(np.int64), j.astype(np.int64), shifts[s].astype(np.int64)


def neighbor_list(
    pos: Tensor | np.ndarray | Sequence[Sequence[float]],
    r_max: float,
    cell: ArrayLike3 | None = None,
    pbc: bool | Sequence[bool] | Tensor | np.ndarray = False,
    backend: str = "auto",
) -> tuple[Tensor, Tensor]:
    r"""All pairs :math:`(i, j, S)` with :math:`0 < |\vec r_j - \vec r_i + S C| < r_{\max}`.

    Works for molecules (``pbc=False``), fully or partly periodic cells of any shape,
    including cells smaller than :math:`2 r_{\max}` where an atom sees several images of
    itself and of each neighbour. Positions need not be wrapped into the cell.

    Args:
        pos: ``[n_atoms, 3]`` Cartesian positions (Å).
        r_max: cutoff radius (Å), > 0.
        cell: ``[3, 3]`` lattice vectors as rows; may be ``None`` when nothing is periodic.
        pbc: periodicity, one bool or one per lattice vector.
        backend: ``"vesin"`` (fast, the default when installed), ``"brute"`` (pure numpy
            :math:`O(N^2 \times \text{images})`, for small systems or without vesin) or
            ``"auto"``.

    Returns:
        ``edge_index`` ``[2, n_edges]`` (int64, rows = source ``i`` and destination ``j``)
        and ``edge_shift`` ``[n_edges, 3]`` (int64 lattice shifts :math:`S`), both on
        ``pos.device`` for tensor input, sorted by ``(i, j, S)``.

    >>> cell = torch.eye(3) * 2.0
    >>> edge_index, shift = neighbor_list(torch.zeros(1, 3), 2.5, cell=cell, pbc=True)
    >>> edge_index.shape[1]  # 6 images at distance 2, 12 at 2*sqrt(2)=2.83 are out
    6
    """
    if isinstance(r_max, bool) or not isinstance(r_max, (int, float)):
        raise TypeError(f"r_max must be a number, got {type(r_max).__name__}")
    if not (math.isfinite(r_max) and r_max > 0):
        raise ValueError(f"r_max must be a positive finite number, got {r_max}")
    if backend not in ("auto", "vesin", "brute"):
        raise ValueError(f"backend must be 'auto', 'vesin' or 'brute', got {backend!r}")
    pos_np = _as_numpy_pos(pos)
    pbc_np = _normalize_pbc(pbc)
    cell_np = _normalize_cell(cell, pbc_np)
    device = pos.device if isinstance(pos, Tensor) else torch.device("cpu")

    if pos_np.shape[0] == 0:
        i = j = np.zeros(0, np.int64)
        s = np.zeros((0, 3), np.int64)
    elif backend == "brute" or (backend == "auto" and not _vesin_available()):
        i, j, s = _brute_force_list(pos_np, r_max, cell_np, pbc_np)
    else:
        if backend == "vesin" and not _vesin_available():
            raise ImportError("backend='vesin' needs the vesin package: pip install vesin")
        i, j, s = _vesin_list(pos_np, r_max, cell_np, pbc_np)

    order = np.lexsort((s[:, 2], s[:, 1], s[:, 0], j, i))
    edge_index = torch.from_numpy(np.stack([i[order], j[order]])).to(device)  # [2, n_edges]
    edge_shift = torch.from_numpy(np.ascontiguousarray(s[order])).to(device)  # [n_edges, 3]
    return edge_index, edge_shift


def edge_vectors(
    pos: Tensor,
    edge_index: Tensor,
    edge_shift: Tensor | None = None,
    cell: Tensor | None = None,
    batch: Tensor | None = None,
) -> Tensor:
    r"""Edge vectors :math:`\vec r_{ij} = \vec r_j - \vec r_i + S\,C_{b(i)}`, differentiable.

    Differentiable with respect to ``pos`` and ``cell`` (any order), so forces and stress
    come from autograd. Runs under ``torch.compile(fullgraph=True)``.

    Args:
        pos: ``[n_atoms, 3]`` positions.
        edge_index: ``[2, n_edges]`` (source ``i``, destination ``j``).
        edge_shift: ``[n_edges, 3]`` integer lattice shifts, or ``None`` (no periodicity).
        cell: ``[3, 3]`` or ``[n_graphs, 3, 3]`` lattice vectors as rows, or ``None`` (no
            periodicity: the shifts, then all zero, are not used).
        batch: ``[n_atoms]`` graph id of each atom; needed when ``cell`` holds several graphs.

    Returns:
        ``[n_edges, 3]`` vectors, dtype of ``pos``.

    >>> pos = torch.tensor([[0.0, 0.0, 0.0]])
    >>> edge_vectors(pos, torch.tensor([[0], [0]]), torch.tensor([[1, 0, 0]]), 2 * torch.eye(3))
    tensor([[2., 0., 0.]])
    """
    src, dst = edge_index[0], edge_index[1]
    vec = pos.index_select(0, dst) - pos.index_select(0, src)  # [n_edges, 3]
    if edge_shift is None or cell is None:
        return vec
    shift = edge_shift.to(pos.dtype)  # [n_edges, 3]
    if cell.dim() == 2:
        return vec + shift @ cell
    if cell.shape[0] == 1:
        return vec + shift @ cell[0]
    if batch is None:
        raise ValueError(f"cell holds {cell.shape[0]} graphs: pass batch [n_atoms] too")
    edge_cell = cell.index_select(0, batch.index_select(0, src))  # [n_edges, 3, 3]
    return vec + torch.einsum("ek,ekl->el", shift, edge_cell)


def apply_strain(
    pos: Tensor, cell: Tensor, strain: Tensor, batch: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    r"""Deform positions and cell by a (symmetrised) strain :math:`\varepsilon`.

    .. math::

        \vec r' = \vec r\,(I + \varepsilon_s), \qquad C' = C\,(I + \varepsilon_s),
        \qquad \varepsilon_s = \tfrac12(\varepsilon + \varepsilon^T),

    row vectors as everywhere in equidyn. With ``strain`` a zero tensor that requires grad,
    the stress (ASE convention, eV/Å³) is

    .. math::  \sigma = \frac{1}{V} \frac{\partial E}{\partial \varepsilon}\Big|_{\varepsilon=0},
        \qquad V = |\det C|.

    Args:
        pos: ``[n_atoms, 3]``.
        cell: ``[3, 3]`` or ``[n_graphs, 3, 3]``.
        strain: same shape as ``cell``.
        batch: ``[n_atoms]`` graph ids, needed when there are several graphs.

    Returns:
        ``(pos', cell')`` with the shapes of ``pos`` and ``cell``.

    >>> pos, cell = torch.ones(1, 3), torch.eye(3)
    >>> eps = torch.diag(torch.tensor([0.1, 0.0, 0.0]))
    >>> apply_strain(pos, cell, eps)[0]
    tensor([[1.1000, 1.0000, 1.0000]])
    """
    if strain.shape != cell.shape:
        raise ValueError(
            f"strain must have the shape of cell {tuple(cell.shape)}, got {tuple(strain.shape)}"
        )
    sym = 0.5 * (strain + strain.transpose(-1, -2))
    eye = torch.eye(3, dtype=cell.dtype, device=cell.device)
    deform = eye + sym  # [..., 3, 3]
    new_cell = cell @ deform
    if cell.dim() == 2 or cell.shape[0] == 1:
        d = deform if cell.dim() == 2 else deform[0]
        return pos @ d, new_cell
    if batch is None:
        raise ValueError(f"cell holds {cell.shape[0]} graphs: pass batch [n_atoms] too")
    atom_deform = deform.index_select(0, batch)  # [n_atoms, 3, 3]
    return torch.einsum("nk,nkl->nl", pos, atom_deform), new_cell


def cell_volume(cell: Tensor) -> Tensor:
    r"""Cell volume :math:`V = |\det C|` of ``[3, 3]`` or ``[n_graphs, 3, 3]`` cells.

    >>> cell_volume(2 * torch.eye(3))
    tensor(8.)
    """
    return torch.linalg.det(cell).abs()
