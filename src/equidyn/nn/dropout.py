r"""Dropout of whole irreps.

In training mode every irrep copy :math:`x_u` of every sample is kept with probability
:math:`1 - p` and rescaled, or zeroed:

.. math::  y_u = \frac{m_u}{1 - p}\, x_u, \qquad m_u \sim \operatorname{Bernoulli}(1 - p),

one mask value per irrep copy (shared by its :math:`2l+1` components), so that
:math:`\mathbb{E}[y] = x` and, for any mask, :math:`y` transforms like :math:`x`: the layer is
equivariant. Dropping single components of a vector would not be. In evaluation mode it is the
identity.
"""

from __future__ import annotations

import torch

from equidyn.nn._checks import check_features, component_index
from equidyn.o3 import Irreps

__all__ = ["Dropout"]


class Dropout(torch.nn.Module):
    r"""Zero whole irreps with probability ``p`` during training, rescale the rest by
    :math:`1/(1-p)`.

    Args:
        irreps: irreps of the features (input = output).
        p: probability of dropping each irrep copy, in ``[0, 1]``.

    >>> import torch
    >>> drop = Dropout("2x1o", p=0.5)
    >>> _ = torch.manual_seed(0)
    >>> y = drop(torch.ones(1, 6))
    >>> sorted(set(y.flatten().tolist())) in ([0.0, 2.0], [2.0], [0.0])
    True
    >>> drop.eval()(torch.ones(1, 6)).tolist()
    [[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]
    """

    def __init__(self, irreps: Irreps | str, p: float) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        self.irreps_in = Irreps(irreps)
        self.irreps_out = self.irreps_in
        self.p = float(p)
        self.register_buffer("index", component_index(self.irreps_in), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., irreps.dim)`` → ``(..., irreps.dim)``."""
        check_features(x, self.irreps_in)
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return torch.zeros_like(x)
        shape = x.shape[:-1] + (self.irreps_in.num_irreps,)
        keep = torch.bernoulli(torch.full(shape, 1.0 - self.p, dtype=x.dtype, device=x.device))
        mask = keep[..., self.index] / (1.0 - self.p)  # [..., irreps.dim]
        return x * mask

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, p={self.p}"
