r"""Scalar-gated nonlinearity: :math:`x \mapsto \mathrm{GELU}(\langle x\rangle_0)\, x`.

The scalar component is invariant, so gating a whole multivector by a function of it is
equivariant; auxiliary scalars get a plain GELU.

>>> import torch
>>> mv, s = GatedGELU()(torch.randn(2, 3, 16), torch.randn(2, 4))
>>> mv.shape
torch.Size([2, 3, 16])
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from equidyn.ga.products import check_multivector

__all__ = ["GatedGELU"]


class GatedGELU(nn.Module):
    """``GELU(x_0) · x`` on multivectors ``(..., 16)``; ``GELU`` on scalars."""

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        check_multivector(mv, "mv")
        out = F.gelu(mv[..., :1]) * mv
        return out, (None if scalars is None else F.gelu(scalars))
