r"""The norm of every irrep of a feature vector, an invariant.

For a feature :math:`x` of irreps :math:`\bigoplus_b U_b \times (l_b, p_b)` the output has one
scalar per copy,

.. math::
    n_{b u} = \Big(\sum_{m=-l_b}^{l_b} x_{b u m}^2\Big)^{1/2}
    \qquad(\text{or its square with } \texttt{squared=True}),

invariant under O(3) because every :math:`D^l` is orthogonal and a parity sign squares to one.
The input irreps are simplified first (consecutive equal blocks merged), and the output irreps
are ``sum_b U_b x 0e`` simplified, as in e3nn's ``o3.Norm``. The gradient of the norm at
:math:`x_{bu} = 0` is taken as zero.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn.o3.irreps import Irreps

__all__ = ["Norm"]


class Norm(nn.Module):
    r"""Euclidean norm of every irrep copy (formula in the module docstring).

    Args:
        irreps_in: the irreps of the input (simplified: ``irreps_in`` is the simplified one).
        squared: return the squared norms (smooth everywhere) instead of the norms.

    Called on ``(..., irreps_in.dim)``; returns ``(..., irreps_out.dim)``, one scalar per
    copy of an irrep.

    >>> norm = Norm("1x0e + 2x1o")
    >>> norm.irreps_out
    3x0e
    >>> norm(torch.tensor([-2.0, 3.0, 0.0, 4.0, 1.0, 0.0, 0.0]))
    tensor([2., 5., 1.])
    """

    def __init__(self, irreps_in: Irreps | str, squared: bool = False) -> None:
        super().__init__()
        if not isinstance(squared, bool):
            raise TypeError(f"squared must be a bool, got {squared!r}")
        self.irreps_in = Irreps(irreps_in).simplify()
        self.irreps_out = Irreps([(mul, "0e") for mul, _ in self.irreps_in]).simplify()
        self.squared = squared

    def forward(self, x: Tensor) -> Tensor:
        dim = self.irreps_in.dim
        if x.ndim < 1 or x.shape[-1] != dim:
            raise ValueError(
                f"input has shape {tuple(x.shape)}, expected (..., {dim}) for irreps "
                f"{self.irreps_in}"
            )
        lead = x.shape[:-1]
        parts = [
            block.reshape(*lead, mul, ir.dim).pow(2).sum(-1)  # [..., mul]
            for block, (mul, ir) in zip(
                torch.split(x, [mi.dim for mi in self.irreps_in], dim=-1), self.irreps_in
            )
        ]
        if not parts:
            return x.new_zeros(*lead, 0)
        sq = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]  # [..., irreps_out.dim]
        if self.squared:
            return sq
        # relu before sqrt: its backward masks the infinite slope of sqrt at 0 to a zero
        return sq.relu().sqrt()  # [..., irreps_out.dim]

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, squared={self.squared}"
