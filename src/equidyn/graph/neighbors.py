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
    periodic = _unit_rows(arr[pbc])
    if periodic.shape[0] and (
        not np.all(np.isfinite(periodic))
        or np.linalg.det(periodic @ periodic.T) < 1e-24
        or np.abs(arr[pbc]).max(axis=1).min() == 0.0
    ):
        raise ValueError(
            f"cell {arr.tolist()} is singular along periodic directions pbc={pbc.tolist()}"
        )
    return arr


def _row_norms(a: np.ndarray) -> np.ndarray:
    """Euclidean norms of the rows of ``a`` without overflow (rows of 1e300 Å)."""
    peak = np.abs(a).max(axis=-1, initial=0.0)
    safe = np.where(peak > 0, peak, 1.0)
    return peak * np.linalg.norm(a / safe[..., None], axis=-1)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    norms = _row_norms(a)
    return a / np.where(norms > 0, norms, 1.0)[..., None]


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
    # vesin 0.6 also divides by zero (SIGFPE) when the cell volume overflows (1e103 Å sides)
    with np.errstate(divide="ignore"):
        huge = float(np.log10(_row_norms(cell)).sum()) > _VESIN_MAX_LOG_VOLUME
    if huge or _vesin_cells_collapse(cell, r_max):
        if pos.shape[0] > _BRUTE_FORCE_FALLBACK_ATOMS:
            widths = _face_distances(cell).round(3).tolist()
            problem = (
                "too large for vesin's cell list (its volume overflows)"
                if huge
                else "too anisotropic for vesin's cell list (widths "
                f"between faces {widths} Å at r_max={r_max}: its grid would have an empty "
                "direction and crash)"
            )
            raise ValueError(
                f"the cell {cell.tolist()} is {problem}; with {pos.shape[0]} atoms the "
                f"brute-force search (limit {_BRUTE_FORCE_FALLBACK_ATOMS}) is too large. Use a "
                "less elongated (or smaller) cell."
            )
        return _brute_force_list(pos, r_max, cell, pbc)
    # periodic in all three directions: the caller's search cell puts the images along open
    # directions further than r_max (vesin 0.6 crashed on atoms outside a mixed cell)
    i, j, shifts = nl.compute(pos, cell, True, "ijS")
    return np.asarray(i, np.int64), np.asarray(j, np.int64), np.asarray(shifts, np.int64)


#: vesin caps its cell-list grid at this many cells (vesin 0.6, ``MAX_NUMBER_OF_CELLS``)
_VESIN_MAX_CELLS = 1e5
#: cells whose product of side lengths (Å^3) exceeds 10 to this power are searched without vesin
_VESIN_MAX_LOG_VOLUME = 200.0
#: largest system for which an anisotropic cell falls back to the O(N^2) brute-force search
_BRUTE_FORCE_FALLBACK_ATOMS = 3000
#: atoms further than this many lattice vectors from the cell are refused: float64 rounds
#: their positions by more than 1e-4 of a cell (and vesin's int32 shifts overflow near 2e9)
_MAX_CELLS_AWAY = 1e12
#: neighbour lists estimated larger than this many edges are refused (memory, and a cell
#: much smaller than r_max is almost always a unit mistake)
_MAX_EDGES = 5e7


def _wrap_into_cell(
    pos: np.ndarray, cell: np.ndarray, pbc: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(wrapped, n)``: positions moved by whole lattice vectors ``n`` ([n_atoms, 3] ints,
    0 along open directions) so that their periodic fractional coordinates lie in [0, 1)."""
    frac = np.linalg.solve(cell.T, pos.T).T  # [n_atoms, 3]
    n = np.where(pbc[None, :], np.floor(frac), 0.0)
    far = np.abs(n).max(axis=1)
    if far.max() > _MAX_CELLS_AWAY:
        a = int(far.argmax())
        raise ValueError(
            f"atom {a} at {pos[a].tolist()} is {far[a]:.3g} lattice vectors away from the cell "
            f"(limit {_MAX_CELLS_AWAY:.0e}; its position has no precision left there): wrap the "
            "positions into the cell (ase.Atoms.wrap)"
        )
    return pos - n @ cell, n.astype(np.int64)


def _check_edge_count(n_atoms: int, pos: np.ndarray, r_max: float, cell: np.ndarray,
                      pbc: np.ndarray, max_neighbors: float | None = None) -> None:  # fmt: skip
    """``ValueError`` if the list would have more than :data:`_MAX_EDGES` edges, or more than
    ``max_neighbors`` per atom (estimated from the density: a cell far smaller than r_max
    holds millions of images of each atom)."""
    heights = _face_distances(cell)
    extent = pos.max(axis=0) - pos.min(axis=0) + 2.0 * r_max
    box = [heights[k] if pbc[k] else extent[k] for k in range(3)]
    # a uniform density: each direction keeps the fraction 2 r_max / width of the pairs,
    # which exceeds 1 along a periodic direction narrower than 2 r_max (periodic images)
    per_pair = 1.0
    for k in range(3):
        fraction = 2.0 * r_max / box[k]
        per_pair *= fraction if pbc[k] else min(1.0, fraction)
    estimate = float(n_atoms) ** 2 * per_pair
    if estimate > _MAX_EDGES:
        raise ValueError(
            f"the cell {cell.tolist()} (widths between faces {heights.tolist()} Å) is so small "
            f"against r_max={r_max} that the neighbour list of {n_atoms} atoms would have about "
            f"{estimate:.2g} edges (limit {_MAX_EDGES:.0e}): check the cell's units or r_max"
        )
    if max_neighbors is not None and n_atoms and estimate > max_neighbors * n_atoms:
        raise ValueError(
            f"the cell {cell.tolist()} (widths between faces {heights.tolist()} Å) and "
            f"{n_atoms} atoms give about {estimate / n_atoms:.2g} neighbours per atom within "
            f"r_max={r_max} (limit {max_neighbors:g} per atom; no matter is that dense): check "
            f"the cell's units or r_max"
        )


def _split_at_gaps(coords: np.ndarray, r_max: float, keep_single: bool) -> list[np.ndarray]:
    """Index groups of atoms with no pair closer than ``r_max`` across groups.

    ``coords`` ``[n_atoms, d]`` are coordinates along orthonormal directions. Splits
    recursively at gaps of at least ``r_max`` along each of them, so each group spans at
    most ``len(group) * r_max`` along every direction, however far apart the groups are
    (atoms 1e300 Å apart). Groups of one atom are dropped unless ``keep_single``.
    """
    groups, stack = [], [np.arange(coords.shape[0])]
    while stack:
        idx = stack.pop()
        if idx.shape[0] < (1 if keep_single else 2):
            continue
        for axis in range(coords.shape[1]):
            order = idx[np.argsort(coords[idx, axis], kind="stable")]
            with np.errstate(over="ignore"):  # atoms at +-1e308: a gap of inf
                gaps = np.nonzero(np.diff(coords[order, axis]) >= r_max)[0]
            if gaps.shape[0]:
                stack.extend(np.split(order, gaps + 1))
                break
        else:
            groups.append(idx)
    return groups


def _search_groups(
    pos: np.ndarray, r_max: float, cell: np.ndarray, pbc: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(atoms, positions, search_cell)`` per compact group of atoms, for a periodic search.

    Along the open directions (those orthogonal to the periodic lattice vectors) the atoms
    are split into groups at gaps of at least ``r_max`` and moved to start at 0; each open
    lattice vector is replaced by an orthogonal one longer than the group's extent plus
    ``2 r_max``, so no periodic image along it comes within ``r_max`` and a fully periodic
    search of the group finds exactly its pairs, with shift 0 along the open directions.
    """
    n_periodic = int(pbc.sum())
    if n_periodic:
        q = np.linalg.qr(_unit_rows(cell[pbc]).T, mode="complete")[0]  # [3, 3]
        normals = q[:, n_periodic:].T  # [n_open, 3], orthonormal, orthogonal to the lattice
    else:
        normals = np.eye(3)
    if normals.shape[0] == 0:
        return [(np.arange(pos.shape[0]), pos, cell)]
    coords = pos @ normals.T  # [n_atoms, n_open]
    out = []
    for idx in _split_at_gaps(coords, r_max, keep_single=n_periodic > 0):
        low = coords[idx].min(axis=0)
        length = float((coords[idx].max(axis=0) - low).max()) + 2.0 * r_max + 1.0
        search_cell = cell.copy()
        search_cell[~pbc] = normals * length
        out.append((idx, pos[idx] - low @ normals, search_cell))
    return out


def _face_distances(cell: np.ndarray) -> np.ndarray:
    """Distances between opposite faces of the cell (rows = lattice vectors), shape [3]."""
    # with rows normalised first, so that cells of 1e200 Å do not overflow the volume
    norms = _row_norms(cell)
    unit = _unit_rows(cell)
    volume = abs(float(np.linalg.det(unit)))
    areas = [np.linalg.norm(np.cross(unit[(k + 1) % 3], unit[(k + 2) % 3])) for k in range(3)]
    return np.array([norms[k] * volume / a if a > 0 else 0.0 for k, a in enumerate(areas)])


def _vesin_cells_collapse(cell: np.ndarray, r_max: float) -> bool:
    """Whether vesin's rescaled cell grid would have a direction with no cell.

    vesin sizes its grid as ``trunc(width / r_max)`` cells per direction and, above
    ``1e5`` cells in all, rescales the three counts keeping their ratios; a thin direction
    then truncates to 0 cells and the search divides by zero (SIGFPE, no exception). This
    mirrors that arithmetic so the call is never made.
    """
    # (capped at 1e30 so that the products below cannot overflow for cells of 1e300 Å)
    n = np.clip(np.trunc(_face_distances(cell) / r_max), 1.0, 1e30)
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
        frac = np.linalg.solve(cell.T, pos.T).T  # [n, 3]
        heights = _face_distances(cell)  # distances between lattice planes
        for k in range(3):
            if pbc[k]:
                spacing = heights[k]
                span = frac[:, k].max() - frac[:, k].min() if n else 0.0
                m = int(math.floor(r_max / spacing + span)) + 1
                ranges.append(np.arange(-m, m + 1))
            else:
                ranges.append(np.zeros(1, dtype=np.int64))
    else:
        ranges = [np.zeros(1, dtype=np.int64)] * 3
    shifts = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3)  # [n_images, 3]
    offsets = shifts @ cell  # [n_images, 3]
    zero = np.all(shifts == 0, axis=1)
    # rows of atoms in chunks, so that the [chunk, n, images, 3] block stays below ~16 MB
    chunk = max(1, int(2e6 // max(1, n * shifts.shape[0])))
    found = []
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        vec = pos[None, :, None, :] - pos[rows, None, None, :] + offsets[None, None]
        # [chunk, n, n_images, 3]
        with np.errstate(over="ignore"):  # images of cells of 1e300 Å: inf, not a pair
            mask = (vec**2).sum(-1) < r_max**2
        mask &= ~((rows[:, None] == np.arange(n)[None, :])[:, :, None] & zero[None, None, :])
        i, j, s = np.nonzero(mask)
        found.append((rows[i], j, shifts[s]))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    i, j, s = (np.concatenate(parts) for parts in zip(*found))
    return i.astype(np.int64), j.astype(np.int64), s.astype(np.int64)


def neighbor_list(
    pos: Tensor | np.ndarray | Sequence[Sequence[float]],
    r_max: float,
    cell: ArrayLike3 | None = None,
    pbc: bool | Sequence[bool] | Tensor | np.ndarray = False,
    backend: str = "auto",
    max_neighbors: float | None = None,
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
        max_neighbors: refuse (``ValueError``) a list estimated, from the density of atoms
            and images, to hold more than this many edges per atom, before building it
            (potentials pass their :attr:`~equidyn.models.Potential.max_neighbors`).

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

    if backend == "vesin" and not _vesin_available():
        raise ImportError("backend='vesin' needs the vesin package: pip install vesin")
    search = (
        _brute_force_list
        if backend == "brute" or (backend == "auto" and not _vesin_available())
        else _vesin_list
    )
    parts = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64))]
    groups = _search_groups(pos_np, r_max, cell_np, pbc_np) if pos_np.shape[0] else []
    for idx, group_pos, search_cell in groups:
        # search with the atoms wrapped into the cell, then undo the wrapping in the shifts:
        # r_j - r_i + S C = w_j - w_i + S' C with S = S' + n_i - n_j (atoms far outside the
        # cell gave wrong lists: vesin's shifts are int32)
        wrapped, n_away = _wrap_into_cell(group_pos, search_cell, pbc_np)
        _check_edge_count(idx.shape[0], wrapped, r_max, search_cell, pbc_np, max_neighbors)
        gi, gj, gs = search(wrapped, r_max, search_cell, pbc_np)
        gs = gs + n_away[gi] - n_away[gj]
        parts.append((idx[gi], idx[gj], gs))
    i, j, s = (np.concatenate(p) for p in zip(*parts))
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
