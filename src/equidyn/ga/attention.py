r"""Geometric multi-head self-attention over items (tokens) of multivector channels.

For each head the attention logit between items :math:`i` and :math:`j` is

.. math::  \frac{1}{\sqrt d}\Big(\sum_c \langle q_{ic}, k_{jc}\rangle
           \;-\; \sum_c \big| w^k_{jc}\, p^q_{ic} - w^q_{ic}\, p^k_{jc} \big|^2
           \;+\; \sum_s q^s_{is} k^s_{js}\Big)

with :math:`\langle\cdot,\cdot\rangle` the invariant inner product, :math:`(w, p)` the
:math:`e_{123}` weight and ideal part of the trivector (point) components — for two points the
middle term is minus their squared distance, so attention sees positions, not only
translation-invariant parts (the distance-aware attention of Brehmer et al. 2023, app. C) —
and :math:`q^s, k^s` auxiliary scalar channels. All three terms are dot products of feature
vectors, so one call of ``scaled_dot_product_attention`` computes them; values are the
flattened multivectors and scalars, which the softmax weights average equivariantly.

>>> import torch
>>> attn = GeometricAttention(4, 3, n_heads=2, head_channels=2, head_scalars=4)
>>> mv, s = attn(torch.randn(5, 7, 4, 16), torch.randn(5, 7, 3))
>>> mv.shape, s.shape
(torch.Size([5, 7, 4, 16]), torch.Size([5, 7, 3]))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from equidyn.ga.blades import EUCLIDEAN_BLADES
from equidyn.ga.linear import EquiLinear

__all__ = ["GeometricAttention"]


def _distance_features(mv: Tensor) -> tuple[Tensor, Tensor]:
    """``φ(q) = (|p|², w², √2 w p)`` and ``ψ(k) = (−w², −|p|², √2 w p)`` ``(..., c, 5)``:
    ``φ(q)·ψ(k) = −|w_k p_q − w_q p_k|²``."""
    p, w = mv[..., 11:14], mv[..., 14:15]
    p2, w2, wp = (p * p).sum(-1, keepdim=True), w * w, math.sqrt(2.0) * w * p
    return torch.cat([p2, w2, wp], -1), torch.cat([-w2, -p2, wp], -1)


class GeometricAttention(nn.Module):
    """Self-attention on ``mv (..., items, channels, 16)`` and ``scalars (..., items, s)``."""

    def __init__(
        self,
        channels: int,
        scalars: int,
        *,
        n_heads: int,
        head_channels: int,
        head_scalars: int,
    ) -> None:
        super().__init__()
        if not isinstance(n_heads, int) or n_heads < 1:
            raise ValueError(f"n_heads must be a positive int, got {n_heads!r}")
        self.h, self.hc, self.hs = n_heads, head_channels, head_scalars
        self.qkv = EquiLinear(
            channels,
            3 * n_heads * head_channels,
            in_scalars=scalars,
            out_scalars=3 * n_heads * head_scalars,
        )
        self.out = EquiLinear(
            n_heads * head_channels,
            channels,
            in_scalars=n_heads * head_scalars,
            out_scalars=scalars,
        )

    def _heads(self, mv: Tensor, s: Tensor | None, part: int) -> tuple[Tensor, Tensor]:
        """Part ``part`` of q, k, v as ``(..., heads, items, head_channels, 16)`` and
        ``(..., heads, items, head_scalars)``."""
        h, hc, hs = self.h, self.hc, self.hs
        m = mv[..., part * h * hc : (part + 1) * h * hc, :].unflatten(-2, (h, hc))
        if s is None:
            sc = mv.new_zeros(mv.shape[:-2] + (h, 0))
        else:
            sc = s[..., part * h * hs : (part + 1) * h * hs].unflatten(-1, (h, hs))
        return m.movedim(-3, -4), sc.movedim(-2, -3)

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        qkv, s = self.qkv(mv, scalars)
        (qm, qs), (km, ks), (vm, vs) = (self._heads(qkv, s, i) for i in range(3))
        idx = EUCLIDEAN_BLADES.to(mv.device)
        phi, _ = _distance_features(qm)
        _, psi = _distance_features(km)
        q = torch.cat([qm[..., idx].flatten(-2), phi.flatten(-2), qs], -1)
        k = torch.cat([km[..., idx].flatten(-2), psi.flatten(-2), ks], -1)
        v = torch.cat([vm.flatten(-2), vs], -1)  # [..., heads, items, hc * 16 + hs]
        o = F.scaled_dot_product_attention(q, k, v)  # [..., heads, items, hc * 16 + hs]
        o = o.movedim(-3, -2)  # [..., items, heads, hc * 16 + hs]
        o_mv = o[..., : self.hc * 16].unflatten(-1, (self.hc, 16)).flatten(-3, -2)
        o_s = o[..., self.hc * 16 :].flatten(-2)  # [..., items, heads * hs]
        return self.out(o_mv, o_s if self.hs else None)
