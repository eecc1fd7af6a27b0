r"""The functional tensor product: a :class:`~equidyn.o3._tp_plan.TensorProductPlan` computed
with plain differentiable torch ops.

This is what ``torch.compile`` and ``torch.export`` trace, what runs on any device and dtype,
and what the eager kernels differentiate when a graph of their backward is asked for. Every
kernel group of the plan adds its contributions to the output blocks it writes
(``[Z, mul * d3]`` each, ``mul_ir`` layout); blocks that no path reaches are zero.

>>> from equidyn import o3
>>> tp = o3.FullTensorProduct("2x1o", "1x1o")
>>> x1, x2 = torch.randn(3, 6), torch.randn(3, 3)
>>> out = forward(tp._plan, tp._constants(), x1, x2, x1.new_zeros(0))
>>> bool(torch.allclose(out, tp(x1, x2)))
True
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from equidyn.o3._tp_kernels import WeightedOuterContraction, _bmm, weighted_outer_contraction
from equidyn.o3._tp_plan import PairPath, TensorProductPlan, UvuGroup, UvuRun, UvwGroup
from equidyn.o3.irreps import Irreps

__all__ = ["forward"]

_Contrib = list[list[Tensor]]


def forward(
    plan: TensorProductPlan, consts: tuple[Tensor, ...], x1: Tensor, x2: Tensor, weight: Tensor
) -> Tensor:
    """``out`` ``[Z, dim_out]`` from x1 ``[Z, dim1]``, x2 ``[Z, dim2]`` and the weights
    ``[numel]`` (shared) or ``[Z, numel]``; ``consts`` are the plan's constants in the dtype
    and on the device of the inputs."""
    Z = x1.shape[0]
    contrib: _Contrib = [[] for _ in plan.irreps_out]
    for g in plan.uvu.groups:
        _uvu_group(g, consts[g.const], x1, x2, weight, contrib)
    if len(plan.uvw) + len(plan.pairs) > 0:
        x1b, x2b = _blocks(x1, plan.irreps_in1), _blocks(x2, plan.irreps_in2)
        ws = _weight_views(plan, weight)
        uvw_acc: dict[int, Tensor] = {}
        for h in plan.uvw:
            r = _UVW[h.kind](plan, h, [consts[i] for i in h.consts], x1b[h.a], x2b, ws)
            uvw_acc[h.c] = r if h.c not in uvw_acc else uvw_acc[h.c] + r  # [Z, d3, Wo]
        for c, r in uvw_acc.items():
            contrib[c].append(r.transpose(1, 2).flatten(1))
        for q in plan.pairs:
            _pair_path(plan, q, consts[q.const], x1b, x2b, ws, contrib)
    return _assemble(contrib, plan.irreps_out, x1, Z)  # [Z, dim_out]


def _blocks(x: Tensor, irreps: Irreps) -> list[Tensor]:
    """The blocks of ``x`` ``[Z, irreps.dim]`` as ``[Z, mul, d]`` views."""
    Z = x.shape[0]
    parts = torch.split(x, [mi.dim for mi in irreps], dim=1)
    return [t.reshape(Z, m, ir.dim) for t, (m, ir) in zip(parts, irreps)]


def _weight_views(plan: TensorProductPlan, weight: Tensor) -> list[Tensor | None]:
    """Per path: the weight view ``(U, V, W)``/``(U, V)``/``(U,)`` (shared) or ``(Z, ...)``."""
    layout = plan.weights
    parts = torch.split(weight, layout.sizes(), dim=-1) if len(plan.paths) > 0 else ()
    lead = weight.shape[:-1]
    return [
        w.reshape(*lead, *s) if weighted else None
        for s, weighted, w in zip(layout.shapes, layout.weighted, parts)
    ]


def _assemble(contrib: _Contrib, outs: Irreps, x1: Tensor, Z: int) -> Tensor:
    """The sum of the contributions to every output block, blocks concatenated."""
    blocks = []
    for parts, (mul, ir) in zip(contrib, outs):
        if not parts:
            blocks.append(x1.new_zeros(Z, mul * ir.dim))
            continue
        b = parts[0]
        for extra in parts[1:]:
            b = b + extra
        blocks.append(b)
    if not blocks:
        return x1.new_zeros(Z, 0)
    return torch.cat(blocks, dim=1) if len(blocks) > 1 else blocks[0]


# --------------------------------------------------------------------------- uvu
def _uvu_group(
    g: UvuGroup, C: Tensor, x1: Tensor, x2: Tensor, w: Tensor, contrib: _Contrib
) -> None:
    """``M = x2 C_a`` ``[Z, K, d1]``, ``Y = M X_a^T`` ``[Z, K, U]``, then every run's rows
    times its weights into its output blocks."""
    Z = x1.shape[0]
    xt = x1.narrow(1, g.x1_off, g.U * g.d1).unflatten(1, (g.U, g.d1)).transpose(1, 2)
    MT = (x2 @ C).view(Z, g.K, g.d1)  # [Z, K, d1]
    y = _bmm(MT, xt, inplace=False)  # [Z, K, U] (small: broadcast multiply-adds)
    for r in g.runs:
        piece = _uvu_run(r, y, w, g.U)  # [Z, Q, d3, U]
        piece = piece.transpose(2, 3)  # [Z, Q, U, d3]
        for q, c in enumerate(r.outs):
            contrib[c].append(piece[:, q].reshape(Z, g.U * r.d3))


def _uvu_run(r: UvuRun, y: Tensor, w: Tensor, U: int) -> Tensor:
    """The rows of run ``r`` in ``Y``, weighted (and summed over ``v``): ``[Z, Q, d3, U]``."""
    Z = y.shape[0]
    rows = y.narrow(1, r.k0, r.Q * r.V * r.d3)
    if r.V == 1:
        piece = rows.view(Z, r.Q, r.d3, U)
        if not r.weighted:
            return piece
        ws = w.narrow(-1, r.w_off, r.Q * U).unflatten(-1, (r.Q, U))  # [(Z,) Q, U]
        return piece * ws.unsqueeze(-2)
    piece = rows.view(Z, r.V, r.d3, U)  # a run of one path, rows (v, k)
    if not r.weighted:
        return piece.sum(1, keepdim=True)
    ws = w.narrow(-1, r.w_off, U * r.V).unflatten(-1, (U, r.V)).transpose(-1, -2)  # [(Z,) V, U]
    return (piece * ws.unsqueeze(-2)).sum(1, keepdim=True)


# --------------------------------------------------------------------------- uvw
def _uvw_weights(
    plan: TensorProductPlan, h: UvwGroup, xa: Tensor, ws: list[Tensor | None]
) -> list[Tensor]:
    """The weights ``[(Z,) U, V, Wo]`` of the group's paths (ones for an unweighted path)."""
    Wo = plan.irreps_out[h.c].mul
    out = []
    for i in h.paths:
        w = ws[i]
        if w is None:
            w = xa.new_ones(xa.shape[1], plan.irreps_in2[plan.paths[i].in2].mul, Wo)
        out.append(w)
    return out


def _uvw_x1(
    plan: TensorProductPlan,
    h: UvwGroup,
    Cs: list[Tensor],
    xa: Tensor,
    x2b: list[Tensor],
    ws: list[Tensor | None],
) -> Tensor:
    """x1 first: ``A[z, i, (b, v), w] = sum_u x1[z, u, i] w_b[u, v, w]``, then ``B`` (x2 times
    the Clebsch–Gordan tensors) and one ``bmm``. Returns ``[Z, d3, Wo]``."""
    Z, U, d1 = xa.shape
    Wo, d3 = plan.irreps_out[h.c].mul, plan.irreps_out[h.c].ir.dim
    wts = _uvw_weights(plan, h, xa, ws)
    Wcat = torch.cat([w.flatten(-2) for w in wts], dim=-1)  # [(Z,) U, sumV * Wo]
    xt = xa.transpose(1, 2)  # [Z, d1, U]
    if Wcat.ndim == 2:
        A = xt.reshape(Z * d1, U) @ Wcat  # [Z * d1, sumV * Wo]
    else:
        A = torch.bmm(xt, Wcat)  # [Z, d1, sumV * Wo]
    # B[z, k, i, (b, v)] = sum_j x2_b[z, v, j] C_b[i, j, k]
    Bs = []
    for i, C in zip(h.paths, Cs):
        xb = x2b[plan.paths[i].in2]  # [Z, V, d2]
        V = xb.shape[1]
        m = (xb.flatten(0, 1) @ C).reshape(Z, V, d3, d1)
        Bs.append(m.permute(0, 2, 3, 1))  # [Z, d3, d1, V]
    B = torch.cat(Bs, dim=3) if len(Bs) > 1 else Bs[0].contiguous()
    return torch.bmm(B.flatten(2), A.reshape(Z, B.shape[2] * B.shape[3], Wo))  # [Z, d3, Wo]


def _uvw_x2(
    plan: TensorProductPlan,
    h: UvwGroup,
    Cs: list[Tensor],
    xa: Tensor,
    x2b: list[Tensor],
    ws: list[Tensor | None],
) -> Tensor:
    """x2 first (one path): ``A[z, j, u, w] = sum_v x2[z, v, j] w[u, v, w]``, then
    ``B[z, k, j, u] = sum_i x1[z, u, i] C[i, j, k]`` and one ``bmm``. Returns ``[Z, d3, Wo]``."""
    Z, U, d1 = xa.shape
    Wo, d3 = plan.irreps_out[h.c].mul, plan.irreps_out[h.c].ir.dim
    xb = x2b[plan.paths[h.paths[0]].in2]  # [Z, V, d2]
    V, d2 = xb.shape[1], xb.shape[2]
    w = _uvw_weights(plan, h, xa, ws)[0]
    if w.ndim == 3:
        wv = w.transpose(0, 1).reshape(V, U * Wo)
        A = xb.transpose(1, 2).reshape(Z * d2, V) @ wv  # [Z * d2, U * Wo]
    else:
        A = torch.einsum("zvj,zuvw->zjuw", xb, w)  # [Z, d2, U, Wo]
    m = (xa.reshape(Z * U, d1) @ Cs[0]).reshape(Z, U, d3, d2)
    B = m.permute(0, 2, 3, 1).reshape(Z, d3, d2 * U)
    return torch.bmm(B, A.reshape(Z, d2 * U, Wo))  # [Z, d3, Wo]


def _uvw_out(
    plan: TensorProductPlan,
    h: UvwGroup,
    Cs: list[Tensor],
    xa: Tensor,
    x2b: list[Tensor],
    ws: list[Tensor | None],
) -> Tensor:
    """Output side first: ``T = M x1^T`` ``[Z, d3 * sumV, U]`` (``M`` from x2 and the
    Clebsch–Gordan tensors), then ``T`` times the stacked weights. ``T`` is the largest
    intermediate: it is formed again in the backward instead of being kept."""
    Z, U, d1 = xa.shape
    Wo, d3 = plan.irreps_out[h.c].mul, plan.irreps_out[h.c].ir.dim
    wts = _uvw_weights(plan, h, xa, ws)
    Ms, Wm = [], []
    for i, C, w in zip(h.paths, Cs, wts):
        xb = x2b[plan.paths[i].in2]  # [Z, V, d2]
        V = xb.shape[1]
        m = (xb.flatten(0, 1) @ C).reshape(Z, V, d3, d1)
        Ms.append(m.transpose(1, 2))  # [Z, d3, V, d1]
        Wm.append(w.transpose(-3, -2).reshape(*w.shape[:-3], V * U, Wo))  # rows (v, u)
    M = torch.cat(Ms, dim=2) if len(Ms) > 1 else Ms[0].contiguous()
    M = M.flatten(1, 2)  # [Z, d3 * sumV, d1]
    Wcat = torch.cat(Wm, dim=-2) if len(Wm) > 1 else Wm[0]  # [(Z,) sumV * U, Wo]
    if torch.compiler.is_compiling():
        return checkpoint(
            weighted_outer_contraction, M, xa.transpose(1, 2), Wcat, use_reentrant=False
        )
    return WeightedOuterContraction.apply(M, xa.transpose(1, 2), Wcat)  # [Z, d3, Wo]


_UVW = {"x1": _uvw_x1, "x2": _uvw_x2, "out": _uvw_out}


# --------------------------------------------------------------------------- other modes
def _pair_path(
    plan: TensorProductPlan,
    q: PairPath,
    C: Tensor,
    x1b: list[Tensor],
    x2b: list[Tensor],
    ws: list[Tensor | None],
    contrib: _Contrib,
) -> None:
    """A path of mode ``uuu``, ``uvuv``, ``uvv``, ``uuw``, ``u<vw`` or ``uvu<v`` into its
    block (``[Z, W * d3]``, ``W`` the output multiplicity)."""
    p = plan.paths[q.path]
    xa, xb = x1b[p.in1], x2b[p.in2]  # [Z, U, d1], [Z, V, d2]
    Z, U, V, d2 = xa.shape[0], xa.shape[1], xb.shape[1], xb.shape[2]
    d3 = plan.irreps_out[p.out].ir.dim
    t = (xa.flatten(0, 1) @ C).reshape(Z, U, d2, d3)
    w = ws[q.path]
    if w is not None:
        shape = plan.weights.shapes[q.path]
        w = w.expand(Z, *shape) if w.ndim == len(shape) else w  # [Z, *shape]
    if p.mode in ("uuu", "uuw"):
        r = (t * xb.unsqueeze(-1)).sum(2)  # [Z, U, d3]
        if p.mode == "uuu":
            if w is not None:
                r = r * w.unsqueeze(-1)
        elif w is not None:
            r = torch.einsum("zuk,zuw->zwk", r, w)  # [Z, W, d3]
        else:
            r = r.sum(1, keepdim=True)  # [Z, 1, d3]
    else:
        r = torch.einsum("zujk,zvj->zuvk", t, xb)  # [Z, U, V, d3]
        if p.mode == "uvuv":
            if w is not None:
                r = r * w.unsqueeze(-1)
        elif p.mode == "uvv":
            r = torch.einsum("zuvk,zuv->zvk", r, w) if w is not None else r.sum(1)
        else:  # the pairs u < v, row-major
            iu, iv = torch.triu_indices(U, V, 1, device=r.device)
            r = r[:, iu, iv]  # [Z, Q, d3]
            if p.mode == "u<vw":
                assert w is not None  # Path checks that u<vw paths are weighted
                r = torch.einsum("zqk,zqw->zwk", r, w)  # [Z, W, d3]
            elif w is not None:  # uvu<v
                r = r * w.unsqueeze(-1)
    contrib[p.out].append(r.flatten(1))
