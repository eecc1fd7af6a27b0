r"""Radial bases: expand a distance :math:`r` into ``num_basis`` smooth functions.

**Bessel** (DimeNet, NequIP): the :math:`l = 0` spherical Bessel functions that vanish at
:math:`r_{\max}`, normalised on :math:`[0, r_{\max}]`,

.. math::  b_n(r) = \sqrt{\frac{2}{r_{\max}}}\; \frac{\sin(\omega_n r)}{r},
           \qquad \omega_n = \frac{n\pi}{r_{\max}}, \quad n = 1, \dots, N.

At :math:`r \to 0`, :math:`b_n \to \sqrt{2/r_{\max}}\,\omega_n`; the ratio
:math:`\sin(a)/a` is evaluated with its Taylor series for :math:`|a| < 10^{-2}`, so values and
derivatives of every order are finite at :math:`r = 0` (no ``0/0``). With ``trainable=True`` the
frequencies :math:`\omega_n` are parameters initialised as above.

**Gaussian**: :math:`g_k(r) = \exp\!\big(-\tfrac12 ((r - \mu_k)/\sigma)^2\big)` with centres
:math:`\mu_k` evenly spaced on :math:`[r_{\min}, r_{\max}]` and width :math:`\sigma` (default:
the spacing of the centres).
"""

from __future__ import annotations

import math

import torch

from equidyn.o3 import Irreps

__all__ = ["BesselBasis", "GaussianBasis", "sinc"]


def sinc(a: torch.Tensor) -> torch.Tensor:
    r""":math:`\sin(a)/a` (unnormalised), with finite derivatives of every order at 0.

    >>> import torch
    >>> sinc(torch.tensor([0.0, math.pi / 2])).tolist()
    [1.0, 0.6366197466850281]
    """
    small = a.abs() < 1e-2
    a_safe = torch.where(small, torch.ones_like(a), a)
    a2 = a * a
    taylor = 1.0 - a2 / 6.0 * (1.0 - a2 / 20.0 * (1.0 - a2 / 42.0))
    return torch.where(small, taylor, torch.sin(a_safe) / a_safe)


def _check_num_basis(num_basis: int) -> int:
    if isinstance(num_basis, bool) or not isinstance(num_basis, int) or num_basis < 1:
        raise ValueError(f"num_basis must be an int >= 1, got {num_basis!r}")
    return num_basis


def _check_r(r: torch.Tensor) -> None:
    if not isinstance(r, torch.Tensor) or not r.is_floating_point():
        raise TypeError(f"r must be a floating-point tensor of distances, got {r!r}")


class BesselBasis(torch.nn.Module):
    r"""Bessel radial basis :math:`\sqrt{2/r_{\max}}\,\sin(n\pi r/r_{\max})/r`, :math:`n=1..N`.

    Args:
        r_max: the radius where every basis function vanishes.
        num_basis: number of functions :math:`N`.
        trainable: learn the frequencies :math:`\omega_n`.

    Input ``r`` of shape ``(...)``, output ``(..., num_basis)``.

    >>> import torch
    >>> basis = BesselBasis(r_max=5.0, num_basis=4)
    >>> basis(torch.tensor([0.0, 1.0])).shape
    torch.Size([2, 4])
    >>> [round(v, 4) for v in basis(torch.tensor([0.0]))[0].tolist()]
    [0.3974, 0.7948, 1.1922, 1.5896]
    """

    def __init__(self, r_max: float, num_basis: int = 8, trainable: bool = False) -> None:
        super().__init__()
        if isinstance(r_max, bool) or not isinstance(r_max, (int, float)) or not r_max > 0:
            raise ValueError(f"r_max must be a positive number, got {r_max!r}")
        self.r_max = float(r_max)
        self.num_basis = _check_num_basis(num_basis)
        self.irreps_out = Irreps(f"{num_basis}x0e")
        self.prefactor = math.sqrt(2.0 / self.r_max)
        if trainable:
            self.freqs = torch.nn.Parameter(torch.arange(1.0, num_basis + 1) * (math.pi / r_max))
        else:  # computed in the dtype of the input: exact in float64 too
            self.register_parameter("freqs", None)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``(...)`` → ``(..., num_basis)``."""
        _check_r(r)
        if self.freqs is None:
            n = torch.arange(1, self.num_basis + 1, dtype=r.dtype, device=r.device)
            w = n * (math.pi / self.r_max)
        else:
            w = self.freqs.to(r.dtype)
        return self.prefactor * w * sinc(r[..., None] * w)  # [..., num_basis]

    def extra_repr(self) -> str:
        return f"r_max={self.r_max}, num_basis={self.num_basis}"


class GaussianBasis(torch.nn.Module):
    r"""Gaussians :math:`\exp(-\frac12((r - \mu_k)/\sigma)^2)` on evenly spaced centres.

    Args:
        r_min: first centre.
        r_max: last centre (``> r_min``).
        num_basis: number of Gaussians (``>= 2``).
        width: :math:`\sigma`; default the spacing :math:`(r_{\max} - r_{\min})/(N - 1)`.
        trainable: learn the centres.

    >>> import torch
    >>> basis = GaussianBasis(0.0, 4.0, num_basis=5)
    >>> [round(v, 4) for v in basis(torch.tensor([1.0]))[0].tolist()]
    [0.6065, 1.0, 0.6065, 0.1353, 0.0111]
    """

    def __init__(
        self,
        r_min: float,
        r_max: float,
        num_basis: int,
        width: float | None = None,
        trainable: bool = False,
    ) -> None:
        super().__init__()
        if not r_max > r_min:
            raise ValueError(f"need r_max > r_min, got r_min={r_min!r}, r_max={r_max!r}")
        if _check_num_basis(num_basis) < 2:
            raise ValueError(f"GaussianBasis needs num_basis >= 2, got {num_basis}")
        self.r_min, self.r_max, self.num_basis = float(r_min), float(r_max), num_basis
        spacing = (self.r_max - self.r_min) / (num_basis - 1)
        self.width = float(width) if width is not None else spacing
        if not self.width > 0:
            raise ValueError(f"width must be > 0, got {width!r}")
        self.irreps_out = Irreps(f"{num_basis}x0e")
        if trainable:
            self.centers = torch.nn.Parameter(torch.linspace(self.r_min, self.r_max, num_basis))
        else:  # computed in the dtype of the input
            self.register_parameter("centers", None)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """``r``: ``(...)`` → ``(..., num_basis)``."""
        _check_r(r)
        if self.centers is None:
            centers = torch.linspace(
                self.r_min, self.r_max, self.num_basis, dtype=r.dtype, device=r.device
            )
        else:
            centers = self.centers.to(r.dtype)
        z = (r[..., None] - centers) / self.width
        return torch.exp(-0.5 * z * z)  # [..., num_basis]

    def extra_repr(self) -> str:
        return f"r_min={self.r_min}, r_max={self.r_max}, num_basis={self.num_basis}"
