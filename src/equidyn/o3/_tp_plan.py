r"""The plan of a tensor product: which kernel group computes which paths, with which constants.

A :class:`~equidyn.o3.TensorProduct` builds one :class:`TensorProductPlan` at construction and
every backend (:mod:`equidyn.o3._tp_backends`) reads it. The plan is frozen and holds only
integers and, in :attr:`TensorProductPlan.constants`, the normalized Clebsch–Gordan constants
in float64; kernel groups name their constants by position in that tuple.

* ``uvu`` paths form one :class:`UvuGroup` per first-input block :math:`a`. Its constant
  :math:`C_a` (``[dim2, K * d1]``, columns ``(k, i)``) stacks the Clebsch–Gordan tensors of all
  its paths, so that :math:`M_z = x^{(2)}_z C_a` (``[K, d1]``) and
  :math:`Y_z = M_z X^{(1)\top}_{a,z}` (``[K, U]``) serve all of them. A path whose second
  block has :math:`V > 1` channels takes :math:`V d_3` rows of :math:`Y`, ordered
  ``(v, k)``. The paths of a group are ordered by output position and cut into
  :class:`UvuRun`\ s (:func:`plan_runs`). When every path is a weighted ``uvu`` path with
  :math:`V = 1` (the convolution of NequIP/MACE), the native and the torch-op kernels compute
  the same plan.
* ``uvw`` paths form :class:`UvwGroup`\ s per (output block, first-input block) and
  contraction order (``kind``, see :func:`uvw_kind`).
* the other paths (``uuu``, ``uvuv``, ``uvv``, ``uuw``, ``u<vw``, ``uvu<v``) are one
  :class:`PairPath` each.

>>> from equidyn import o3
>>> tp = o3.ChannelwiseTensorProduct("4x0e+4x1o", "0e+1o", ["0e", "1o"])
>>> plan = tp._plan
>>> plan.convolution, [(g.U, g.d1, g.K) for g in plan.uvu.groups]
(True, [(4, 1, 4), (4, 3, 4)])
>>> plan.constants[plan.uvu.groups[1].const].shape  # [dim2, K * d1]
torch.Size([4, 12])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from equidyn.o3.irreps import Irreps

if TYPE_CHECKING:
    from equidyn.o3.tensor_product import Path

__all__ = [
    "PairPath",
    "TensorProductPlan",
    "UvuGroup",
    "UvuPlan",
    "UvuRun",
    "UvwGroup",
    "WeightLayout",
    "build_plan",
    "plan_runs",
    "uvw_kind",
]


@dataclass(frozen=True)
class WeightLayout:
    """Where the weights of every path lie in the flat weight vector: path ``i`` has the
    ``prod(shapes[i])`` weights from ``offsets[i]`` on (none when it is unweighted)."""

    shapes: tuple[tuple[int, ...], ...]
    offsets: tuple[int, ...]
    weighted: tuple[bool, ...]
    numel: int

    def sizes(self) -> list[int]:
        """The number of weights of every path (0 for an unweighted path)."""
        return [math.prod(s) if w else 0 for s, w in zip(self.shapes, self.weighted)]


@dataclass(frozen=True)
class UvuRun:
    """``Q`` paths of one group with the same ``d3`` whose output blocks (each ``U x d3``,
    blocks ``outs``) are adjacent, starting at output column ``out_off``; their rows in ``Y``
    start at ``k0``. A path with ``V > 1`` or without weights is a run of its own."""

    k0: int
    Q: int
    d3: int
    out_off: int
    w_off: int  # first weight of the run (U * V weights per path, paths adjacent)
    first: bool  # no earlier run writes these output blocks
    outs: tuple[int, ...]  # the output block of each of the Q paths
    V: int = 1
    weighted: bool = True


@dataclass(frozen=True)
class UvuGroup:
    """The ``uvu`` paths from block ``a`` of x1 (``U`` channels of dimension ``d1``, from
    column ``x1_off``); ``Y`` has ``K`` rows; ``const`` is the position of ``C_a``."""

    x1_off: int
    U: int
    d1: int
    K: int
    runs: tuple[UvuRun, ...]
    const: int


@dataclass(frozen=True)
class UvuPlan:
    groups: tuple[UvuGroup, ...]
    dim_out: int
    dim1: int
    dim2: int
    numel: int
    covered: bool  # every output column written by some path
    x1_covered: bool = False  # every column of x1 read by some group
    w_covered: bool = False  # every weight used by some path


@dataclass(frozen=True)
class UvwGroup:
    """``uvw`` paths ``paths`` from block ``a`` of x1 into output block ``c``, contracted in
    the order ``kind`` (see :func:`uvw_kind`); ``consts`` are their constants' positions."""

    kind: str
    a: int
    c: int
    paths: tuple[int, ...]
    consts: tuple[int, ...]


@dataclass(frozen=True)
class PairPath:
    """A path of another mode than ``uvu``/``uvw`` (index ``path``) with its constant
    ``[d1, d2 * d3]``."""

    path: int
    const: int


@dataclass(frozen=True, eq=False)
class TensorProductPlan:
    """Everything the backends need, built once per module (see the module docstring)."""

    irreps_in1: Irreps
    irreps_in2: Irreps
    irreps_out: Irreps
    paths: tuple[Path, ...]
    weights: WeightLayout
    uvu: UvuPlan
    uvw: tuple[UvwGroup, ...]
    pairs: tuple[PairPath, ...]
    constants: tuple[Tensor, ...]  # float64, contiguous
    convolution: bool  # every path a weighted uvu path with V = 1: the fused kernels apply


def plan_runs(
    paths: list[tuple[int, int, int, bool]], U: int, alone: Sequence[bool] | None = None
) -> tuple[list[tuple[int, int, int, bool]], list[list[int]]]:
    """Split a group's paths ``(out_off, d3, w_off, first)`` into runs, in the order of their
    output columns.

    Returns the runs as ``(out_off, d3, w_off, first)`` and, for each run, the indices of its
    paths in ``paths``. A run continues while ``d3`` and ``first`` stay the same and the next
    path's output block and weights start where the previous path's end; a path marked in
    ``alone`` is a run of its own.

    >>> plan_runs([(0, 1, 0, True), (64, 3, 64, True), (32, 1, 32, True)], U=32)
    ([(0, 1, 0, True), (64, 3, 64, True)], [[0, 2], [1]])
    """
    order = sorted(range(len(paths)), key=lambda i: paths[i][0])
    runs: list[tuple[int, int, int, bool]] = []
    members: list[list[int]] = []
    end = wend = -1
    solo = True
    for i in order:
        off, d3, w_off, first = paths[i]
        single = bool(alone[i]) if alone is not None else False
        joins = bool(runs) and (off, w_off) == (end, wend) and runs[-1][1] == d3
        if joins and runs[-1][3] == first and not solo and not single:
            members[-1].append(i)
        else:
            runs.append((off, d3, w_off, first))
            members.append([i])
        end, wend, solo = off + U * d3, w_off + U, single
    return runs, members


def uvw_kind(d1: int, d2: int, d3: int) -> str:
    """The contraction order of a ``uvw`` path: its cost is proportional to the dimension of
    the side contracted with the weights first, so ``"x1"`` (x1 first) when ``d1`` is the
    smallest, else ``"x2"`` when ``d2 < d3``, else ``"out"`` (the product is formed on the
    output side first).

    >>> uvw_kind(1, 3, 3), uvw_kind(3, 1, 3), uvw_kind(5, 5, 1)
    ('x1', 'x2', 'out')
    """
    if d1 < d3 and d1 <= d2:
        return "x1"
    return "x2" if d2 < d3 else "out"


class _Constants:
    """The constants of a plan being built, named by position."""

    def __init__(self) -> None:
        self.tensors: list[Tensor] = []

    def add(self, t: Tensor) -> int:
        self.tensors.append(t.contiguous())
        return len(self.tensors) - 1


def build_plan(
    irreps_in1: Irreps,
    irreps_in2: Irreps,
    irreps_out: Irreps,
    paths: Sequence[Path],
    cgs: Sequence[Tensor],
    weights: WeightLayout,
) -> TensorProductPlan:
    """The plan of the product with these ``paths``; ``cgs[i]`` is path ``i``'s normalized
    Clebsch–Gordan tensor (float64, ``[d1, d2, d3]``). Paths with an empty block are left out."""
    live = [
        i
        for i, p in enumerate(paths)
        if irreps_in1[p.in1].mul > 0 and irreps_in2[p.in2].mul > 0 and irreps_out[p.out].mul > 0
    ]
    consts = _Constants()
    spec = (irreps_in1, irreps_in2, irreps_out, tuple(paths), cgs)
    uvu = _plan_uvu(spec, [i for i in live if paths[i].mode == "uvu"], weights, consts)
    uvw = _plan_uvw(spec, [i for i in live if paths[i].mode == "uvw"], consts)
    pairs = tuple(
        PairPath(i, consts.add(cgs[i].reshape(irreps_in1[paths[i].in1].ir.dim, -1)))
        for i in live
        if paths[i].mode not in ("uvu", "uvw")
    )
    runs = [r for g in uvu.groups for r in g.runs]
    fused = all(r.V == 1 and r.weighted for r in runs)
    convolution = bool(runs) and fused and not uvw and not pairs
    return TensorProductPlan(
        irreps_in1,
        irreps_in2,
        irreps_out,
        tuple(paths),
        weights,
        uvu,
        uvw,
        pairs,
        tuple(consts.tensors),
        convolution,
    )


_Spec = tuple[Irreps, Irreps, Irreps, tuple["Path", ...], Sequence[Tensor]]


def _plan_uvu(spec: _Spec, idx: list[int], weights: WeightLayout, consts: _Constants) -> UvuPlan:
    """One :class:`UvuGroup` per first-input block with ``uvu`` paths (see the module
    docstring); the coverage flags let the kernels skip zero-filling."""
    ir1s, ir2s, outs, paths, _ = spec
    slo = outs.slices()
    written: set[int] = set()
    groups = []
    for a in range(len(ir1s)):
        members = sorted(
            (i for i in idx if paths[i].in1 == a), key=lambda i: slo[paths[i].out].start
        )
        if members:
            groups.append(_uvu_group(spec, a, members, weights, written, consts))
    covered = all(c in written for c, (m, _) in enumerate(outs) if m > 0)
    return UvuPlan(
        tuple(groups),
        outs.dim,
        ir1s.dim,
        ir2s.dim,
        weights.numel,
        covered,
        x1_covered=sum(g.U * g.d1 for g in groups) == ir1s.dim,
        w_covered=sum(g.U * r.Q * r.V for g in groups for r in g.runs if r.weighted)
        == weights.numel,
    )


def _uvu_group(
    spec: _Spec,
    a: int,
    order: list[int],
    weights: WeightLayout,
    written: set[int],
    consts: _Constants,
) -> UvuGroup:
    """The group of block ``a`` (paths ``order``, by output position) and its ``C_a``."""
    ir1s, ir2s, outs, paths, cgs = spec
    sl1, sl2, slo = ir1s.slices(), ir2s.slices(), outs.slices()
    U, d1 = ir1s[a].mul, ir1s[a].ir.dim
    info, alone = [], []
    for i in order:
        p = paths[i]
        info.append(
            (slo[p.out].start, outs[p.out].ir.dim, weights.offsets[i], p.out not in written)
        )
        alone.append(ir2s[p.in2].mul > 1 or not p.weighted)
        written.add(p.out)
    heads, members = plan_runs(info, U, alone)
    K = sum(ir2s[paths[i].in2].mul * outs[paths[i].out].ir.dim for i in order)
    C = torch.zeros(ir2s.dim, K, d1, dtype=torch.float64)
    runs, k0 = [], 0
    for (off, d3, w_off, first), mem in zip(heads, members):
        first_path = paths[order[mem[0]]]
        V = ir2s[first_path.in2].mul
        outs_of_run = tuple(paths[order[j]].out for j in mem)
        runs.append(
            UvuRun(k0, len(mem), d3, off, w_off, first, outs_of_run, V, first_path.weighted)
        )
        for j in mem:
            p = paths[order[j]]
            d2, start = ir2s[p.in2].ir.dim, sl2[p.in2].start
            for v in range(V):  # cg [d1, d2, d3] -> rows j of x2 block v, columns (k, i)
                rows = slice(start + v * d2, start + (v + 1) * d2)
                C[rows, k0 : k0 + d3, :] = cgs[order[j]].permute(1, 2, 0)
                k0 += d3
    const = consts.add(C.reshape(ir2s.dim, K * d1))
    return UvuGroup(sl1[a].start, U, d1, K, tuple(runs), const)


def _plan_uvw(spec: _Spec, idx: list[int], consts: _Constants) -> tuple[UvwGroup, ...]:
    """Per (output block, first-input block): the paths of kind ``x1`` and ``out`` as one group
    each (constants ``C'_p`` ``[d2, d3 * d1]``, rows j, columns (k, i)), every path of kind
    ``x2`` as a group of its own (``C''_p`` ``[d1, d3 * d2]``, rows i, columns (k, j))."""
    ir1s, ir2s, outs, paths, cgs = spec
    groups: list[UvwGroup] = []
    for c in range(len(outs)):
        for a in range(len(ir1s)):
            members = [i for i in idx if paths[i].out == c and paths[i].in1 == a]
            d1, d3 = ir1s[a].ir.dim, outs[c].ir.dim
            by_kind: dict[str, list[int]] = {"x1": [], "x2": [], "out": []}
            for i in members:
                by_kind[uvw_kind(d1, ir2s[paths[i].in2].ir.dim, d3)].append(i)
            for kind in ("x1", "out"):
                if by_kind[kind]:
                    cs = [
                        consts.add(cgs[i].permute(1, 2, 0).reshape(-1, d3 * d1))
                        for i in by_kind[kind]
                    ]
                    groups.append(UvwGroup(kind, a, c, tuple(by_kind[kind]), tuple(cs)))
            for i in by_kind["x2"]:
                c2 = consts.add(cgs[i].permute(0, 2, 1).reshape(d1, -1))
                groups.append(UvwGroup("x2", a, c, (i,), (c2,)))
    return tuple(groups)
