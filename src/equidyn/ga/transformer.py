r"""The Geometric Algebra Transformer (GATr; Brehmer, de Haan, Behrends & Cohen 2023).

A GATr block, pre-norm with residual connections, on items ``(..., items, channels, 16)`` with
auxiliary scalars ``(..., items, scalars)``:

.. math::
    x &\leftarrow x + \mathrm{Attention}(\mathrm{LN}(x)) \\
    x &\leftarrow x + \phi_{\mathrm{out}}\circ\mathrm{GatedGELU}\circ
         \mathrm{Bilinear}(\mathrm{LN}(x);\, z)

with :math:`z` the mean of ``LN(x)`` over items and channels (the reference of the join).
:class:`GATrNet` is an input :class:`~equidyn.ga.linear.EquiLinear`, ``n_blocks`` blocks and an
output :class:`~equidyn.ga.linear.EquiLinear`. Every layer commutes with the Pin(3,0,1) action
on multivectors and with permutations of the items.

>>> import torch
>>> net = GATrNet(2, 1, in_scalars=1, out_scalars=0, channels=8, scalars=8, n_blocks=1)
>>> mv, s = net(torch.randn(3, 5, 2, 16), torch.randn(3, 5, 1))
>>> mv.shape, s
(torch.Size([3, 5, 1, 16]), None)
"""

from __future__ import annotations

from torch import Tensor, nn

from equidyn.ga.activation import GatedGELU
from equidyn.ga.attention import GeometricAttention
from equidyn.ga.bilinear import GeometricBilinear
from equidyn.ga.linear import EquiLinear
from equidyn.ga.norm import EquiLayerNorm

__all__ = ["GATrBlock", "GATrNet"]


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None or b is None:
        return a
    return a + b


class GATrBlock(nn.Module):
    """One GATr block (equations in the module docstring)."""

    def __init__(self, channels: int, scalars: int, *, n_heads: int = 4) -> None:
        super().__init__()
        hc, hs = max(1, channels // n_heads), max(1, scalars // n_heads) if scalars else 0
        self.norm = EquiLayerNorm()
        self.attention = GeometricAttention(
            channels, scalars, n_heads=n_heads, head_channels=hc, head_scalars=hs
        )
        self.bilinear = GeometricBilinear(
            channels, 2 * channels, in_scalars=scalars, out_scalars=2 * scalars
        )
        self.gate = GatedGELU()
        self.mlp_out = EquiLinear(
            2 * channels, channels, in_scalars=2 * scalars, out_scalars=scalars
        )

    def attention_step(self, mv: Tensor, s: Tensor | None) -> tuple[Tensor, Tensor | None]:
        a_mv, a_s = self.attention(*self.norm(mv, s))
        return mv + a_mv, _add(s, a_s)

    def mlp_step(self, mv: Tensor, s: Tensor | None) -> tuple[Tensor, Tensor | None]:
        n_mv, n_s = self.norm(mv, s)
        reference = n_mv.mean((-3, -2), keepdim=True)  # [..., 1, 1, 16]
        h_mv, h_s = self.gate(*self.bilinear(n_mv, n_s, reference))
        m_mv, m_s = self.mlp_out(h_mv, h_s)
        return mv + m_mv, _add(s, m_s)

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        return self.mlp_step(*self.attention_step(mv, scalars))


class GATrNet(nn.Module):
    """Multivectors ``(..., items, in_channels, 16)`` + scalars ``(..., items, in_scalars)``
    to ``(..., items, out_channels, 16)`` + ``(..., items, out_scalars)`` (``None`` if 0)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        in_scalars: int = 0,
        out_scalars: int = 0,
        channels: int = 16,
        scalars: int = 32,
        n_blocks: int = 4,
        n_heads: int = 4,
    ) -> None:
        super().__init__()
        if not isinstance(n_blocks, int) or n_blocks < 1:
            raise ValueError(f"n_blocks must be a positive int, got {n_blocks!r}")
        self.embed = EquiLinear(in_channels, channels, in_scalars=in_scalars, out_scalars=scalars)
        self.blocks = nn.ModuleList(
            GATrBlock(channels, scalars, n_heads=n_heads) for _ in range(n_blocks)
        )
        self.readout = EquiLinear(
            channels, out_channels, in_scalars=scalars, out_scalars=out_scalars
        )

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        h_mv, h_s = self.embed(mv, scalars)
        for block in self.blocks:
            h_mv, h_s = block(h_mv, h_s)
        return self.readout(h_mv, h_s)  # [..., items, out_channels, 16], [..., items, out_s]
