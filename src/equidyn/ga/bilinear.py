r"""Geometric bilinear layer: the geometric product and the equivariant join of channels.

.. math::  \mathrm{out} = \phi_{\mathrm{out}}\big(\,\phi_1(x)\,\phi_2(x) \;\oplus\;
           z_{0123}\,(\phi_3(x) \vee \phi_4(x))\big)

with :math:`\phi_i` equivariant linear maps (:class:`~equidyn.ga.linear.EquiLinear`), the
products taken channel by channel and :math:`z` a reference multivector (the mean of the data
in a GATr block) whose pseudoscalar makes the join reflection-equivariant.

>>> import torch
>>> layer = GeometricBilinear(3, 4, in_scalars=2, out_scalars=2)
>>> x, ref = torch.randn(5, 3, 16), torch.randn(5, 1, 16)
>>> [t.shape[-1] for t in layer(x, torch.randn(5, 2), ref)]
[16, 2]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn.ga.linear import EquiLinear
from equidyn.ga.products import equi_join, geometric_product

__all__ = ["GeometricBilinear"]


class GeometricBilinear(nn.Module):
    """Multivectors ``(..., in_channels, 16)`` (+ scalars) to ``(..., out_channels, 16)``:
    ``out_channels − out_channels // 2`` geometric-product channels and ``out_channels // 2``
    join channels, mixed by a final equivariant linear map that also carries the scalars."""

    def __init__(
        self, in_channels: int, out_channels: int, *, in_scalars: int = 0, out_scalars: int = 0
    ) -> None:
        super().__init__()
        if not isinstance(out_channels, int) or out_channels < 2:
            raise ValueError(f"out_channels must be an int >= 2, got {out_channels!r}")
        n_gp, n_join = out_channels - out_channels // 2, out_channels // 2
        self.left = EquiLinear(in_channels, n_gp + n_join, in_scalars=in_scalars)
        self.right = EquiLinear(in_channels, n_gp + n_join, in_scalars=in_scalars)
        self.n_gp = n_gp
        self.out = EquiLinear(
            out_channels, out_channels, in_scalars=in_scalars, out_scalars=out_scalars
        )

    def forward(
        self, mv: Tensor, scalars: Tensor | None, reference: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        a, _ = self.left(mv, scalars)  # [..., out_channels, 16]
        b, _ = self.right(mv, scalars)
        n = self.n_gp
        gp = geometric_product(a[..., :n, :], b[..., :n, :])
        jn = equi_join(a[..., n:, :], b[..., n:, :], reference)
        return self.out(torch.cat([gp, jn], -2), scalars)
