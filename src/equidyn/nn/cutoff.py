r"""Smooth cutoff envelopes :math:`f(r)` with :math:`f(0) = 1` and :math:`f(r) = 0` for
:math:`r \geq r_{\max}`.

**Polynomial** (the envelope of DimeNet, used by NequIP and MACE), with :math:`x = r/r_{\max}`:

.. math::  f_p(x) = 1 - \frac{(p+1)(p+2)}{2} x^p + p(p+2)\, x^{p+1} - \frac{p(p+1)}{2} x^{p+2}
           \quad (x < 1), \qquad f_p(x) = 0 \quad (x \geq 1).

The coefficients are the unique ones making :math:`f_p(1) = f_p'(1) = f_p''(1) = 0`: the
envelope is twice continuously differentiable at :math:`r_{\max}` (its third derivative jumps
by :math:`-p(p+1)(p+2)/r_{\max}^3`), and flat at the origin to order :math:`p - 1`
(:math:`f_p^{(k)}(0) = 0` for :math:`1 \leq k < p`). Energies built with it have continuous
forces and continuous force derivatives as atoms cross the cutoff.

**Cosine**: :math:`f(r) = \tfrac12\big(\cos(\pi r/r_{\max}) + 1\big)` for :math:`r < r_{\max}`;
value and first derivative vanish at :math:`r_{\max}`.
"""

from __future__ import annotations

import math

import torch

__all__ = ["PolynomialCutoff", "CosineCutoff"]


def _check_r_max(r_max: float) -> float:
    if isinstance(r_max, bool) or not isinstance(r_max, (int, float)) or not r_max > 0:
        raise ValueError(f"r_max must be a positive number, got {r_max!r}")
    return float(r_max)


def _check_r(r: torch.Tensor) -> None:
    if not isinstance(r, torch.Tensor) or not r.is_floating_point():
        raise TypeError(f"r must be a floating-point tensor of distances, got {r!r}")


class PolynomialCutoff(torch.nn.Module):
    r"""The polynomial envelope :math:`f_p(r / r_{\max})` (DimeNet, NequIP, MACE).

    Args:
        r_max: cutoff radius; :math:`f = 0` beyond it.
        p: the exponent, an int :math:`\geq 2` (NequIP's default 6, MACE's 5).

    Input ``r`` of any shape ``(...)``, output of the same shape.

    >>> import torch
    >>> cut = PolynomialCutoff(r_max=5.0, p=6)
    >>> cut(torch.tensor([0.0, 2.5, 5.0, 6.0])).tolist()
    [1.0, 0.85546875, 0.0, 0.0]
    """

    def __init__(self, r_max: float, p: int = 6) -> None:
        super().__init__()
        self.r_max = _check_r_max(r_max)
        if isinstance(p, bool) or not isinstance(p, int) or p < 2:
            raise ValueError(f"p must be an int >= 2, got {p!r}")
        self.p = p

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``(...)`` distances → ``(...)`` envelope values."""
        _check_r(r)
        p = self.p
        x = r / self.r_max
        xp = x**p
        f = (
            1.0
            - 0.5 * (p + 1) * (p + 2) * xp
            + p * (p + 2) * xp * x
            - 0.5 * p * (p + 1) * xp * x * x
        )
        return torch.where(x < 1.0, f, torch.zeros_like(f))  # [...]

    def extra_repr(self) -> str:
        return f"r_max={self.r_max}, p={self.p}"


class CosineCutoff(torch.nn.Module):
    r"""The cosine envelope :math:`\tfrac12(\cos(\pi r / r_{\max}) + 1)`, zero beyond
    :math:`r_{\max}`.

    >>> import torch
    >>> CosineCutoff(r_max=2.0)(torch.tensor([0.0, 1.0, 2.0, 3.0])).tolist()
    [1.0, 0.5, 0.0, 0.0]
    """

    def __init__(self, r_max: float) -> None:
        super().__init__()
        self.r_max = _check_r_max(r_max)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``(...)`` distances → ``(...)`` envelope values."""
        _check_r(r)
        f = 0.5 * (torch.cos(r * (math.pi / self.r_max)) + 1.0)
        return torch.where(r < self.r_max, f, torch.zeros_like(f))  # [...]

    def extra_repr(self) -> str:
        return f"r_max={self.r_max}"
