r"""Analytic test potentials for transition path sampling.

The Müller–Brown surface (Müller & Brown 1979) is a sum of four anisotropic Gaussians,

.. math::

    U(x, y) = \sum_{k=1}^{4} A_k \exp\!\big(a_k (x - x_k)^2 + b_k (x - x_k)(y - y_k)
    + c_k (y - y_k)^2\big),

with three minima (energies −146.70, −108.17 and −80.77), and the minimum-energy path from the
deepest one (A, upper left) to the second one (B, lower right) passes the shallow middle
minimum and two saddles (energies −40.66 and −72.25): its barrier from A is 106.0.

>>> import torch
>>> mb = MullerBrown()
>>> round(float(mb(mb.minimum_a)), 2), round(float(mb(mb.minimum_b)), 2)
(-146.7, -108.17)
>>> mb(torch.zeros(5, 2)).shape      # any leading shape; the last axis is (x, y)
torch.Size([5])
"""

from __future__ import annotations

import torch

__all__ = ["MullerBrown"]

# The constants of Müller & Brown (1979), one row per Gaussian: A, a, b, c, x0, y0.
_MB = (
    (-200.0, -1.0, 0.0, -10.0, 1.0, 0.0),
    (-100.0, -1.0, 0.0, -10.0, 0.0, 0.5),
    (-170.0, -6.5, 11.0, -6.5, -0.5, 1.5),
    (15.0, 0.7, 0.6, 0.7, -1.0, 1.0),
)


class MullerBrown(torch.nn.Module):
    r"""The Müller–Brown potential :math:`U: \mathbb{R}^2 \to \mathbb{R}` (see the module).

    ``forward(x)`` takes ``(..., 2)`` coordinates and returns ``(...)`` energies, in the
    input's dtype and device. :attr:`minimum_a`, :attr:`minimum_b` and :attr:`minimum_c` are
    the three minima (deepest first; C is the shallow one between A and B), located to 1e-8.
    """

    params: torch.Tensor
    minimum_a: torch.Tensor
    minimum_b: torch.Tensor
    minimum_c: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("params", torch.tensor(_MB, dtype=torch.float64), persistent=False)
        self.register_buffer(
            "minimum_a", torch.tensor([-0.55822366, 1.44172582], dtype=torch.float64)
        )
        self.register_buffer(
            "minimum_b", torch.tensor([0.62349940, 0.02803776], dtype=torch.float64)
        )
        self.register_buffer(
            "minimum_c", torch.tensor([-0.05001083, 0.46669410], dtype=torch.float64)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1:] != (2,):
            raise ValueError(f"Müller–Brown takes (..., 2) coordinates, got shape {tuple(x.shape)}")
        p = self.params.to(x.dtype)
        dx = x[..., 0:1] - p[:, 4]  # (..., 4)
        dy = x[..., 1:2] - p[:, 5]
        expo = p[:, 1] * dx * dx + p[:, 2] * dx * dy + p[:, 3] * dy * dy
        return (p[:, 0] * torch.exp(expo)).sum(-1)  # (...)
