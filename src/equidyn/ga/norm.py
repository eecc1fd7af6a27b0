r"""Equivariant layer normalisation of multivector channels.

.. math::  x_c \mapsto \frac{x_c}{\sqrt{\frac1C \sum_{c'} \langle x_{c'}, x_{c'}\rangle + \epsilon}}

with the invariant inner product :math:`\langle x, x\rangle = \sum_{A \not\ni 0} x_A^2`;
auxiliary scalars get an ordinary (affine-free) layer norm.

>>> import torch
>>> mv, s = EquiLayerNorm()(torch.randn(4, 8, 16), torch.randn(4, 6))
>>> mv.shape, s.shape
(torch.Size([4, 8, 16]), torch.Size([4, 6]))
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from equidyn.ga.products import check_multivector, invariant_inner

__all__ = ["EquiLayerNorm"]


class EquiLayerNorm(nn.Module):
    """Normalise multivectors ``(..., channels, 16)`` and optional scalars ``(..., s)``."""

    def __init__(self, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = float(eps)

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        check_multivector(mv, "mv")
        sq = invariant_inner(mv, mv).mean(-1, keepdim=True)  # [..., 1]
        mv = mv / (sq + self.eps).sqrt().unsqueeze(-1)
        if scalars is not None and scalars.shape[-1] > 0:
            scalars = F.layer_norm(scalars, scalars.shape[-1:], eps=self.eps)
        return mv, scalars
