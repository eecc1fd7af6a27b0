r"""Eager-mode fast kernel for channelwise (``uvu``, ``mul2 = 1``) tensor products.

This is the convolution of NequIP/MACE: for every input block :math:`a` (``U`` channels,
dimension :math:`d_1`) and the paths :math:`p = (a, b, c)` that start from it,

.. math::
    M_{z} = x^{(2)}_z\, C_a \in \mathbb{R}^{K \times d_1}, \qquad
    Y_z = M_z X^{(1)\top}_{a,z} \in \mathbb{R}^{K \times U}, \qquad
    z^{(c)}_{z, u k} \mathrel{+}= w_{z, p, u}\, Y_{z, (p, k), u}

with :math:`C_a` all normalized Clebsch–Gordan tensors of those paths stacked (:math:`K = \sum_p
d_3`). Inside the kernel the channel index :math:`u` is the fastest one ("ir_mul" layout,
:math:`Y` is ``[Z, K, U]``): the per-sample products are ``[K, d1] @ [d1, U]`` matrices with
``U`` contiguous outputs, and the weights ``w[z, p, :]`` are contiguous rows that broadcast over
the :math:`d_3` rows of a path. The plan (groups of paths, their constants :math:`C_a` and runs)
is the ``uvu`` part of :class:`equidyn.o3._tp_plan.TensorProductPlan`, which the native kernel
and the functional version read too. The paths of a group are ordered by output position, and
**runs** of paths with the same :math:`d_3` whose output blocks and weights are both adjacent
are handled as one unit (in ``ChannelwiseTensorProduct`` every run is a single path). One
strided multiplication per run writes :math:`Y \cdot w` straight into the run's slab of the
output, transposing to the ``mul_ir`` layout on the way (no scatter, no gathered weights). Tiny
per-sample products with a short contraction use broadcast multiply-adds (:func:`_bmm`).

The backward uses the same layout: the weighted output gradient
:math:`\bar G_z = (w \odot G)_z` (``[K, U]``, built run by run from strided views of the
output gradient) gives :math:`\partial X^{(1)\top} = M^\top \bar G` and
:math:`\partial M = \bar G X^{(1)}` with one batched matmul each, and
:math:`\partial w_{z,p,u} = \sum_k G_{z,(p,k),u} Y_{z,(p,k),u}` uses the saved :math:`Y`.

The functional version (plain differentiable torch ops) lives in
:mod:`equidyn.o3._tp_functional` and is what ``torch.compile`` traces; this module computes
the same numbers in eager mode. When a graph of the backward is requested
(``create_graph=True``, e.g. a loss on forces), the backward instead differentiates the
functional version, so higher derivatives are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from equidyn.o3._tp_plan import UvuGroup, UvuPlan, UvuRun


def _run_weights(w: Tensor, r: UvuRun, U: int) -> Tensor:
    """``w[(z,) q, u]`` of the paths of run ``r`` (adjacent in ``w``): a ``[(Z,) Q, U]`` view."""
    return w.narrow(-1, r.w_off, r.Q * U).unflatten(-1, (r.Q, U))


def _out_view(t: Tensor, r: UvuRun, U: int) -> Tensor:
    """The slab of run ``r`` in a ``[Z, dim_out]`` tensor, as ``[Z, Q, d3, U]`` (strided)."""
    slab = t.narrow(1, r.out_off, r.Q * U * r.d3)  # [Z, Q * U * d3]
    return slab.view(t.shape[0], r.Q, U, r.d3).transpose(2, 3)


def _x1_t(x1: Tensor, g: UvuGroup) -> Tensor:
    """Block ``a`` of x1 in ``ir_mul`` order, contiguous: ``[Z, d1, U]``."""
    xa = x1.narrow(1, g.x1_off, g.U * g.d1).unflatten(1, (g.U, g.d1))  # [Z, U, d1]
    return xa.transpose(1, 2).contiguous()


def _bmm(a: Tensor, b: Tensor, inplace: bool = True) -> Tensor:
    """``torch.bmm(a, b)`` (``[Z, m, c] @ [Z, c, n]``), except for tiny matrices with a short
    contraction (``m c n < 400``, ``c <= 7``): there ATen's batched matmul falls back to a
    scalar loop (torch 2.x CPU) that is 2-4x slower than ``c`` broadcast multiply-adds on
    whole ``[Z, m, n]`` tensors (measured for conv-1, where ``[Z, 4, 3] @ [Z, 3, 32]``
    dominated), and that ``torch.compile`` cannot fuse. ``inplace=False`` accumulates
    out of place (for code that autograd or ``torch.compile`` traces).

    >>> a, b = torch.randn(5, 4, 3), torch.randn(5, 3, 8)
    >>> bool(torch.allclose(_bmm(a, b), torch.bmm(a, b), atol=1e-6))
    True
    """
    m, c = a.shape[1], a.shape[2]
    n = b.shape[2]
    if m * c * n >= 400 or c > 7 or c == 0:
        return torch.bmm(a, b)
    y = a[:, :, 0, None] * b[:, None, 0, :]  # [Z, m, n]
    for i in range(1, c):
        if inplace:
            y.addcmul_(a[:, :, i, None], b[:, None, i, :])
        else:
            y = torch.addcmul(y, a[:, :, i, None], b[:, None, i, :])
    return y


def graph_backward(
    reference: Callable[..., Tensor],
    g: Tensor,
    x1: Tensor,
    x2: Tensor,
    w: Tensor,
    need: tuple[bool, ...],
) -> list[Tensor | None]:
    """Gradients of ``reference(x1, x2, w)`` against ``g`` with a graph (``create_graph``), so
    that the fast kernels' backward is itself differentiable (forces in a loss)."""
    inputs = [t for t, r in zip((x1, x2, w), need) if r]
    with torch.enable_grad():
        out = reference(x1, x2, w)
    grads = iter(torch.autograd.grad(out, inputs, g, create_graph=True, allow_unused=True))
    return [next(grads) if r else None for r in need]


class ConvFunction(torch.autograd.Function):
    """``out = conv(x1, x2, w)`` with the functional fallback ``reference`` for double
    backward. Inputs: x1 ``[Z, dim1]``, x2 ``[Z, dim2]``, w ``[Z, numel]`` or ``[numel]``,
    then one constant ``C_a`` ``[dim2, K * d1]`` (columns ``(k, i)``) per group."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        plan: UvuPlan,
        reference: Callable[..., Tensor],
        x1: Tensor,
        x2: Tensor,
        w: Tensor,
        *Cs: Tensor,
    ) -> Tensor:
        Z = x1.shape[0]
        single = plan.covered and all(r.first for g in plan.groups for r in g.runs)
        out = x1.new_empty(Z, plan.dim_out) if single else x1.new_zeros(Z, plan.dim_out)
        keep_y = ctx.needs_input_grad[4]
        Ms, xts, ys = [], [], []
        for g, C in zip(plan.groups, Cs):
            U = g.U
            xt = _x1_t(x1, g)  # [Z, d1, U]
            MT = (x2 @ C).view(Z, g.K, g.d1)  # [Z, K, d1]
            Ms.append(MT)
            xts.append(xt)
            y = None if g.d1 == 1 else _bmm(MT, xt)  # [Z, K, U]
            if y is not None and keep_y:
                ys.append(y)
            for r in g.runs:
                ws = _run_weights(w, r, U)  # [(Z,) Q, U]
                if y is None:  # scalar block: outer product M x (x1 * w)
                    a = MT.narrow(1, r.k0, r.Q * r.d3).view(Z, r.Q, r.d3, 1)
                    b = (xt * ws).unsqueeze(-2)  # [Z, Q, 1, U]
                else:
                    a = y.narrow(1, r.k0, r.Q * r.d3).view(Z, r.Q, r.d3, U)
                    b = ws.unsqueeze(-2)  # [(Z,) Q, 1, U]
                dst = _out_view(out, r, U)  # [Z, Q, d3, U]
                if r.first:
                    torch.mul(a, b, out=dst)
                else:
                    dst.addcmul_(a, b)
        ctx.plan = plan
        ctx.reference = reference
        ctx.save_for_backward(x1, x2, w, *Cs, *Ms, *xts, *ys)
        return out  # [Z, dim_out]

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        plan: UvuPlan = ctx.plan
        saved = ctx.saved_tensors
        x1, x2, w = saved[:3]
        n = len(plan.groups)
        Cs, Ms, xts = saved[3 : 3 + n], saved[3 + n : 3 + 2 * n], saved[3 + 2 * n : 3 + 3 * n]
        ys = iter(saved[3 + 3 * n :])
        need = ctx.needs_input_grad[2:5]
        if torch.is_grad_enabled():
            # a graph of the backward is requested: differentiate the functional version
            res = graph_backward(ctx.reference, g, x1, x2, w, need)
            return (None, None, *res, *([None] * n))
        Z = x1.shape[0]
        gx1 = gx2 = gw = None
        if need[0]:
            gx1 = torch.empty_like(x1) if plan.x1_covered else torch.zeros_like(x1)
        if need[1]:
            gx2 = torch.zeros_like(x2)
        if need[2]:
            gw = torch.empty_like(w) if plan.w_covered and w.ndim > 1 else torch.zeros_like(w)
        if Z == 0:
            return (None, None, gx1, gx2, gw, *([None] * n))
        for grp, C, MT, xt in zip(plan.groups, Cs, Ms, xts):
            y = next(ys) if (gw is not None and grp.d1 > 1) else None
            _group_backward(grp, g, w, C, MT, xt, y, gx1, gx2, gw)
        return (None, None, gx1, gx2, gw, *([None] * n))


def _group_backward(
    grp: UvuGroup,
    g: Tensor,
    w: Tensor,
    C: Tensor,
    MT: Tensor,
    xt: Tensor,
    y: Tensor | None,
    gx1: Tensor | None,
    gx2: Tensor | None,
    gw: Tensor | None,
) -> None:
    """Add the gradients of one group (``MT`` ``[Z, K, d1]``, ``xt`` ``[Z, d1, U]``, the kept
    ``y`` ``[Z, K, U]`` or ``None``) into ``gx1``, ``gx2`` and ``gw`` (where not ``None``)."""
    Z, (U, d1, K) = g.shape[0], (grp.U, grp.d1, grp.K)
    GW = g.new_empty(Z, K, U)  # weighted output gradient
    scratch = None
    for r in grp.runs:
        G = _out_view(g, r, U)  # [Z, Q, d3, U] (strided view of g)
        ws = _run_weights(w, r, U)  # [(Z,) Q, U]
        gwr = GW.narrow(1, r.k0, r.Q * r.d3).unflatten(1, (r.Q, r.d3))
        torch.mul(G, ws.unsqueeze(-2), out=gwr)
        if gw is None:
            continue
        if scratch is None:
            scratch = g.new_empty(Z * K * U)
        _run_weight_grad(r, G, MT, xt, y, scratch, gw)
    if gx1 is not None:
        gxa = gx1.narrow(1, grp.x1_off, U * d1).unflatten(1, (U, d1))
        gxa.copy_(_bmm(MT.transpose(1, 2), GW).transpose(1, 2))  # [Z, U, d1]
    if gx2 is not None:
        gM = _bmm(xt, GW.transpose(1, 2))  # [Z, d1, K]
        Ct = C.view(-1, K, d1).transpose(1, 2).reshape(-1, d1 * K)  # columns (i, k)
        gx2.addmm_(gM.view(Z, d1 * K), Ct.t())


def _run_weight_grad(
    r: UvuRun, G: Tensor, MT: Tensor, xt: Tensor, y: Tensor | None, scratch: Tensor, gw: Tensor
) -> None:
    """``gw[(z,) p, u] = sum_k G[z, p, k, u] Y[z, (p, k), u]`` for the paths of run ``r``
    (``Y = M x1`` for a scalar block, where ``y`` is ``None``)."""
    Z, U = G.shape[0], xt.shape[2]
    if y is None:  # scalar block: Y = M x1
        m = MT.narrow(1, r.k0, r.Q * r.d3).view(Z, r.Q, r.d3, 1)
    else:
        m = y.narrow(1, r.k0, r.Q * r.d3).view(Z, r.Q, r.d3, U)
    prod = scratch[: Z * r.Q * r.d3 * U].view(Z, r.Q, r.d3, U)
    torch.mul(G, m, out=prod)
    if gw.ndim == 1:  # shared weights
        s = prod.sum((0, 2)) if y is not None else (prod.sum(2) * xt).sum(0)
        gw.narrow(0, r.w_off, r.Q * U).view(r.Q, U).add_(s)
    else:
        dst = gw.narrow(1, r.w_off, r.Q * U).view(Z, r.Q, U)
        if y is None:
            torch.mul(prod.sum(2), xt, out=dst)
        else:
            torch.sum(prod, 2, out=dst)


def _outer_t(M: Tensor, xt: Tensor) -> Tensor:
    """``T = M @ xt`` (``[Z, R, d1] @ [Z, d1, U] -> [Z, R, U]``), a broadcast product when
    ``d1 = 1``."""
    return M * xt if M.shape[2] == 1 else torch.bmm(M, xt)


def weighted_outer_contraction(M: Tensor, x: Tensor, W: Tensor) -> Tensor:
    """What :class:`WeightedOuterContraction` computes, in plain differentiable ops."""
    Z, VU = M.shape[0], W.shape[-2]
    d3 = M.shape[1] * x.shape[2] // VU
    T = _outer_t(M, x).reshape(Z, d3, VU)
    if W.ndim == 2:
        return (T.reshape(Z * d3, VU) @ W).reshape(Z, d3, W.shape[-1])
    return torch.bmm(T, W)  # [Z, d3, Wo]


class WeightedOuterContraction(torch.autograd.Function):
    r"""The ``uvw`` contraction whose intermediate is formed on the output side,

    .. math::
        T_{z,k,(v,u)} = \sum_i M_{z,(k,v),i}\, x_{z,i,u}, \qquad
        r_{z,k,w} = \sum_{(v,u)} T_{z,k,(v,u)}\, W_{(z,)(v,u),w},

    that saves only ``M``, ``x`` and ``W`` and forms ``T`` again in the backward. ``T``
    (``[Z, d3 V, U]``) is the largest tensor of the product and autograd would keep it until
    the backward; recomputing it costs :math:`d_1 / W` of the forward's main matmul (at most
    5/32 for ``l <= 2`` and 32 channels). The backward is written in differentiable torch ops,
    so a graph of it (``create_graph=True``: a loss on forces) gives exact higher derivatives.

    Inputs: ``M`` ``[Z, d3 * V, d1]`` (rows ``(k, v)``), ``x`` ``[Z, d1, U]``, ``W``
    ``[V * U, Wo]`` (shared) or ``[Z, V * U, Wo]`` (per sample). Output ``[Z, d3, Wo]``.

    >>> M, x, W = torch.randn(4, 6, 3), torch.randn(4, 3, 5), torch.randn(10, 7)
    >>> r = WeightedOuterContraction.apply(M, x, W)
    >>> bool(torch.allclose(r, (M @ x).reshape(4, 3, 10) @ W, atol=1e-5))
    True
    """

    @staticmethod
    def forward(ctx: Any, M: Tensor, x: Tensor, W: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(M, x, W)
        return weighted_outer_contraction(M, x, W)  # [Z, d3, Wo]

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        M, x, W = ctx.saved_tensors
        need_m, need_x, need_w = ctx.needs_input_grad
        Z, d3, Wo = g.shape
        VU = W.shape[-2]
        gM = gx = gW = None
        if need_w:
            T = _outer_t(M, x).reshape(Z, d3, VU)  # formed again
            if W.ndim == 2:
                gW = T.reshape(Z * d3, VU).t() @ g.reshape(Z * d3, Wo)
            else:
                gW = torch.bmm(T.transpose(1, 2), g)
            del T
        if need_m or need_x:
            if W.ndim == 2:
                gT = g.reshape(Z * d3, Wo) @ W.t()
            else:
                gT = torch.bmm(g, W.transpose(1, 2))
            gT = gT.reshape(Z, M.shape[1], x.shape[2])  # [Z, d3 * V, U]
            if need_m:
                gM = (gT * x).sum(2, keepdim=True) if x.shape[1] == 1 else gT @ x.transpose(1, 2)
            if need_x:
                gx = (M * gT).sum(1, keepdim=True) if M.shape[2] == 1 else M.transpose(1, 2) @ gT
        return gM, gx, gW
