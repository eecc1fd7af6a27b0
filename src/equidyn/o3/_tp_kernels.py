r"""Eager-mode fast kernel for channelwise (``uvu``, ``mul2 = 1``) tensor products.

This is the convolution of NequIP/MACE: for every input block :math:`a` (``U`` channels,
dimension :math:`d_1`) and the paths :math:`p = (a, b, c)` that start from it,

.. math::
    M_{z} = x^{(2)}_z\, C_a \in \mathbb{R}^{d_1 \times K}, \qquad
    Y_z = X^{(1)}_{a,z} M_z \in \mathbb{R}^{U \times K}, \qquad
    z^{(c)}_{z, u k} \mathrel{+}= w_{z, p, u}\, Y_{z, u, (p, k)}

with :math:`C_a` all normalized Clebsch–Gordan tensors of those paths side by side
(:math:`K = \sum_p d_3`). The functional version (plain differentiable torch ops) lives in
:mod:`equidyn.o3.tensor_product` and is what ``torch.compile`` traces; this module computes
the same numbers in eager mode with fewer passes over memory: the products are written
straight into the preallocated output, and the backward writes straight into preallocated
gradients (``out=`` views). When a graph of the backward is requested
(``create_graph=True``, e.g. a loss on forces), the backward instead differentiates the
functional version, so higher derivatives are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class ConvPath:
    k0: int  # first column in Y
    d3: int
    out_off: int  # first column of the output block
    w_off: int  # first weight
    first: bool  # first contribution to its output block


@dataclass(frozen=True)
class ConvGroup:
    x1_off: int
    U: int
    d1: int
    K: int
    paths: tuple[ConvPath, ...]


@dataclass(frozen=True)
class ConvPlan:
    groups: tuple[ConvGroup, ...]
    dim_out: int
    dim1: int
    dim2: int
    numel: int
    covered: bool  # every output column written by some path


def _group_indices(g: ConvGroup, device: torch.device) -> tuple[Tensor, Tensor]:
    """For every entry ``(u, k)`` of Y (flattened ``u * K + k``): its output column and the
    index of its weight (path of column ``k``, channel ``u``)."""
    dst = torch.empty(g.U, g.K, dtype=torch.long)
    wcol = torch.empty(g.U, g.K, dtype=torch.long)
    u = torch.arange(g.U)[:, None]
    for p in g.paths:
        k = torch.arange(p.d3)[None, :]
        dst[:, p.k0 : p.k0 + p.d3] = p.out_off + u * p.d3 + k
        wcol[:, p.k0 : p.k0 + p.d3] = p.w_off + u
    return dst.reshape(-1).to(device), wcol.reshape(-1).to(device)


def _expanded_weights(g: ConvGroup, w: Tensor, wcol: Tensor) -> Tensor:
    """``w_exp[(z,) u, k] = w[(z,) w_off(path(k)) + u]``: ``[(Z,) U, K]``."""
    return w.index_select(-1, wcol).view(*w.shape[:-1], g.U, g.K)


class ConvFunction(torch.autograd.Function):
    """``out = conv(x1, x2, w)`` with the functional fallback ``reference`` for double
    backward. Inputs: x1 ``[Z, dim1]``, x2 ``[Z, dim2]``, w ``[Z, numel]`` or ``[numel]``,
    then one constant ``C_a`` ``[dim2, d1 * K]`` per group. Every elementwise step runs on
    whole contiguous ``[Z, U, K]`` tensors; outputs are placed with one column scatter per
    group."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        plan: ConvPlan,
        reference: Callable[..., Tensor],
        x1: Tensor,
        x2: Tensor,
        w: Tensor,
        *Cs: Tensor,
    ) -> Tensor:
        Z = x1.shape[0]
        single = plan.covered and all(p.first for g in plan.groups for p in g.paths)
        out = x1.new_empty(Z, plan.dim_out) if single else x1.new_zeros(Z, plan.dim_out)
        ys = []
        for g, C in zip(plan.groups, Cs):
            dst, wcol = _group_indices(g, x1.device)
            xa = x1.narrow(1, g.x1_off, g.U * g.d1).unflatten(1, (g.U, g.d1))  # [Z, U, d1]
            M = (x2 @ C).view(Z, g.d1, g.K)  # [Z, d1, K]
            y = xa * M if g.d1 == 1 else torch.bmm(xa, M)  # [Z, U, K]
            ys.append(y)
            yw = (y * _expanded_weights(g, w, wcol)).view(Z, g.U * g.K)
            if single:
                out.index_copy_(1, dst, yw)
            else:
                out.index_add_(1, dst, yw)
        ctx.plan = plan
        ctx.reference = reference
        ctx.save_for_backward(x1, x2, w, *Cs, *ys)
        return out  # [Z, dim_out]

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        plan: ConvPlan = ctx.plan
        saved = ctx.saved_tensors
        x1, x2, w = saved[:3]
        n = len(plan.groups)
        Cs, ys = saved[3 : 3 + n], saved[3 + n :]
        need = ctx.needs_input_grad[2:5]
        if torch.is_grad_enabled():
            # a graph of the backward is requested: differentiate the functional version
            inputs = [t for t, r in zip((x1, x2, w), need) if r]
            with torch.enable_grad():
                out = ctx.reference(x1, x2, w)
            grads = iter(torch.autograd.grad(out, inputs, g, create_graph=True, allow_unused=True))
            res = [next(grads) if r else None for r in need]
            return (None, None, *res, *([None] * n))
        Z = x1.shape[0]
        gx1 = torch.zeros_like(x1) if need[0] else None
        gx2 = torch.zeros_like(x2) if need[1] else None
        gw = torch.zeros_like(w) if need[2] else None
        for grp, C, y in zip(plan.groups, Cs, ys):
            dst, wcol = _group_indices(grp, x1.device)
            G = g.index_select(1, dst).view(Z, grp.U, grp.K)  # [Z, U, K]
            gy = G * _expanded_weights(grp, w, wcol)  # [Z, U, K]
            if gw is not None:
                s = (G * y).view(Z, grp.U * grp.K)
                if w.ndim == 1:
                    gw.index_add_(0, wcol, s.sum(0))
                else:
                    gw.index_add_(1, wcol, s)
            if gx1 is None and gx2 is None:
                continue
            M = (x2 @ C).view(Z, grp.d1, grp.K)
            if gx1 is not None:
                ga = gx1.narrow(1, grp.x1_off, grp.U * grp.d1).unflatten(1, (grp.U, grp.d1))
                ga.copy_(torch.bmm(gy, M.transpose(1, 2)))
            if gx2 is not None:
                xa = x1.narrow(1, grp.x1_off, grp.U * grp.d1).unflatten(1, (grp.U, grp.d1))
                gM = torch.bmm(xa.transpose(1, 2), gy)  # [Z, d1, K]
                gx2.addmm_(gM.reshape(Z, grp.d1 * grp.K), C.t())
        return (None, None, gx1, gx2, gw, *([None] * n))
