r"""Pin(3,0,1)-equivariant linear maps of multivector channels.

Every linear map :math:`\mathbb{R}^{16} \to \mathbb{R}^{16}` that commutes with the action of
Pin(3,0,1) is a combination of nine basis maps (Brehmer et al. 2023, prop. 2):

.. math::  \phi(x) = \sum_{k=0}^{4} w_k \langle x\rangle_k
           + \sum_{k=0}^{3} v_k\, e_0 \langle x\rangle_k

(the five grade projections and the four maps that multiply a grade by :math:`e_0`).
:class:`EquiLinear` mixes channels with one such map per (output, input) channel pair and,
optionally, mixes auxiliary scalar channels with the invariant scalar components.

>>> import torch
>>> layer = EquiLinear(4, 2, in_scalars=3, out_scalars=5)
>>> mv, s = layer(torch.randn(10, 4, 16), torch.randn(10, 3))
>>> mv.shape, s.shape
(torch.Size([10, 2, 16]), torch.Size([10, 5]))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equidyn.ga.blades import GRADES
from equidyn.ga.products import check_multivector, geometric_product

__all__ = ["EquiLinear", "basis_maps"]


def basis_maps(dtype: torch.dtype = torch.float64) -> Tensor:
    """The nine equivariant basis maps as matrices ``(9, 16, 16)``: ``y = maps[b] @ x``.

    >>> basis_maps().shape
    torch.Size([9, 16, 16])
    """
    grades = torch.tensor(GRADES)
    eye = torch.eye(16, dtype=torch.float64)
    proj = [torch.diag((grades == k).double()) for k in range(5)]
    e0 = eye[1]
    times_e0 = geometric_product(e0, eye).T  # [16 (out), 16 (in)]: column j is e0 e_j
    e0_maps = [times_e0 * (grades == k).double() for k in range(4)]
    return torch.stack(proj + e0_maps).to(dtype)


def _check_channels(x: Tensor, channels: int, name: str) -> None:
    check_multivector(x, name)
    if x.dim() < 2 or x.shape[-2] != channels:
        raise ValueError(f"{name} must have shape (..., {channels}, 16), got {tuple(x.shape)}")


class EquiLinear(nn.Module):
    """Equivariant linear layer: multivectors ``(..., in_channels, 16)`` and optional scalars
    ``(..., in_scalars)`` to ``(..., out_channels, 16)`` and ``(..., out_scalars)``.

    Output multivector ``o`` is ``Σ_c Σ_b W[o, c, b] maps[b](x_c)`` plus a bias and the input
    scalars on its scalar component; output scalars mix the input scalars and the scalar
    components of the input multivectors. The grade-projection weights start with variance
    ``1 / in_channels`` (unit-variance inputs give unit-variance outputs through them), the
    ``e0`` maps with a quarter of it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        in_scalars: int = 0,
        out_scalars: int = 0,
    ) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name, v in (("in_scalars", in_scalars), ("out_scalars", out_scalars)):
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_scalars, self.out_scalars = in_scalars, out_scalars
        self.register_buffer("maps", basis_maps(torch.get_default_dtype()), persistent=False)
        # grade projections carry the signal; the e0 maps start smaller (they add to e0 blades)
        scale = torch.tensor([1.0] * 5 + [0.5] * 4) / math.sqrt(in_channels)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 9) * scale)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        fan_s = in_scalars + in_channels
        self.s_to_mv = nn.Linear(in_scalars, out_channels, bias=False) if in_scalars else None
        self.mv_to_s = nn.Linear(in_channels, out_scalars, bias=False) if out_scalars else None
        self.s_to_s = nn.Linear(in_scalars, out_scalars) if in_scalars and out_scalars else None
        for lin in (self.s_to_mv, self.mv_to_s, self.s_to_s):
            if lin is not None:
                nn.init.normal_(lin.weight, std=1 / math.sqrt(fan_s))

    def matrix(self) -> Tensor:
        """The whole map on flattened channels, ``(in_channels · 16, out_channels · 16)``."""
        m = torch.einsum("ocb,bkj->cjok", self.weight, self.maps.to(self.weight.dtype))
        return m.reshape(self.in_channels * 16, self.out_channels * 16)

    def forward(self, mv: Tensor, scalars: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        _check_channels(mv, self.in_channels, "mv")
        if self.in_scalars and (scalars is None or scalars.shape[-1] != self.in_scalars):
            got = None if scalars is None else tuple(scalars.shape)
            raise ValueError(f"scalars must have shape (..., {self.in_scalars}), got {got}")
        out = (mv.flatten(-2) @ self.matrix()).unflatten(-1, (self.out_channels, 16))
        lift = self.bias
        if self.s_to_mv is not None:
            lift = lift + self.s_to_mv(scalars)  # [..., out_channels]
        out = torch.cat([out[..., :1] + lift.unsqueeze(-1), out[..., 1:]], -1)
        s_out = None
        if self.mv_to_s is not None:  # out_scalars > 0
            s_out = self.mv_to_s(mv[..., 0])  # [..., out_scalars]
            if self.s_to_s is not None:
                s_out = s_out + self.s_to_s(scalars)
        return out, s_out  # [..., out_channels, 16], [..., out_scalars] | None
