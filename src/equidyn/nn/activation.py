r"""Variance-preserving activations.

For a pointwise activation :math:`\sigma` the **second moment** under a standard normal input is

.. math::  m_2(\sigma) = \mathbb{E}_{z \sim \mathcal{N}(0, 1)}\big[\sigma(z)^2\big]
           = \int \sigma(z)^2 \, \frac{e^{-z^2/2}}{\sqrt{2\pi}} \, dz .

:func:`normalize2mom` returns :math:`\tilde\sigma = \sigma / \sqrt{m_2(\sigma)}`, so that
:math:`\mathbb{E}[\tilde\sigma(z)^2] = 1`: a unit-variance input gives a unit second moment output,
and stacked layers (:class:`~equidyn.nn.MLP`, :class:`~equidyn.nn.Gate`) keep the scale of their
signals at initialisation. The integral is computed **once**, numerically (Simpson's rule on
:math:`[-14, 14]` with :math:`2^{12}` intervals, float64: deterministic, error far below
:math:`10^{-8}` for the usual activations, a kink at 0 included) and cached per activation.

:func:`parity` tells whether an activation is even (:math:`\sigma(-z) = \sigma(z)`, ``+1``), odd
(``-1``) or neither (``0``); it decides the parity of a pseudoscalar after the activation.

>>> import torch
>>> act = normalize2mom(torch.tanh)
>>> round(act.cst, 4)
1.5925
>>> z = torch.randn(200_000, generator=torch.Generator().manual_seed(0))
>>> round(act(z).pow(2).mean().item(), 2)
1.0
>>> parity(torch.tanh), parity(torch.cos), parity(torch.sigmoid)
(-1, 1, 0)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["NormalizedActivation", "normalize2mom", "parity", "second_moment", "chi_moment"]

Activation = Callable[[torch.Tensor], torch.Tensor]

_CACHE: dict[tuple[object, str, int], float] = {}  # (act, kind, k) -> moment


def _eval(act: Activation, x: torch.Tensor) -> torch.Tensor:
    """Evaluate ``act`` in float64 where it allows, else in float32 (e.g. float32 modules)."""
    with torch.no_grad():
        try:
            y = act(x)
        except RuntimeError:
            y = act(x.float()).double()
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise TypeError(
            f"activation {act!r} must map a tensor to a tensor of the same shape, "
            f"got {type(y).__name__} {getattr(y, 'shape', '')}"
        )
    return y.double()


def _cache_key(act: Activation, kind: str, k: int) -> tuple[object, str, int] | None:
    if isinstance(act, torch.nn.Module):  # modules may carry parameters: never cache
        return None
    try:
        hash(act)
    except TypeError:
        return None
    return (act, kind, k)


_N_INTERVALS = 2**12  # even, so that 0 is a panel boundary of Simpson's rule


def _simpson(y: torch.Tensor, x: torch.Tensor) -> float:
    """Composite Simpson integral of samples ``y`` on the uniform grid ``x`` (odd length)."""
    w = torch.ones_like(x)
    w[1:-1:2] = 4.0
    w[2:-1:2] = 2.0
    return ((x[1] - x[0]) / 3.0 * (w * y).sum()).item()


def second_moment(act: Activation) -> float:
    r""":math:`\mathbb{E}[\sigma(z)^2]` for :math:`z \sim \mathcal{N}(0, 1)`, computed numerically.

    >>> round(second_moment(torch.relu), 6)
    0.5
    """
    key = _cache_key(act, "normal", 1)
    if key is not None and key in _CACHE:
        return _CACHE[key]
    z = torch.linspace(-14.0, 14.0, _N_INTERVALS + 1, dtype=torch.float64)
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    value = _simpson(_eval(act, z) ** 2 * pdf, z)
    if key is not None:
        _CACHE[key] = value
    return value


def chi_moment(act: Activation, k: int, power: int = 0) -> float:
    r""":math:`\mathbb{E}[(n^{\text{power}} \sigma(n))^2]` for :math:`n = |x|`,
    :math:`x \sim \mathcal{N}(0, I_k)`.

    The norm :math:`n` follows the chi distribution with :math:`k` degrees of freedom,
    density :math:`n^{k-1} e^{-n^2/2} / (2^{k/2-1}\Gamma(k/2))` on :math:`n \geq 0`.

    >>> round(chi_moment(torch.ones_like, 3, power=1), 6)  # E|x|^2 = k
    3.0
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    key = _cache_key(act, f"chi{power}", k)
    if key is not None and key in _CACHE:
        return _CACHE[key]
    n = torch.linspace(0.0, math.sqrt(k) + 14.0, _N_INTERVALS + 1, dtype=torch.float64)
    log_pdf = (k - 1) * torch.log(n.clamp(min=1e-300)) - 0.5 * n**2
    log_pdf = log_pdf - ((k / 2 - 1) * math.log(2) + math.lgamma(k / 2))
    pdf = torch.exp(log_pdf)
    if k == 1:
        pdf[0] = math.sqrt(2 / math.pi)
    else:
        pdf[0] = 0.0
    value = _simpson((n**power * _eval(act, n)) ** 2 * pdf, n)
    if key is not None:
        _CACHE[key] = value
    return value


def parity(act: Activation) -> int:
    """``+1`` if ``act`` is even, ``-1`` if odd, ``0`` otherwise (checked numerically).

    >>> parity(torch.nn.functional.silu)
    0
    """
    x = torch.linspace(0.0, 10.0, 257, dtype=torch.float64)
    y_pos, y_neg = _eval(act, x), _eval(act, -x)
    if torch.allclose(y_pos, y_neg, rtol=1e-6, atol=1e-6):
        return 1
    if torch.allclose(y_pos, -y_neg, rtol=1e-6, atol=1e-6):
        return -1
    return 0


class NormalizedActivation(torch.nn.Module):
    r"""The activation :math:`c\,\sigma(x)` with a fixed constant :math:`c`.

    Built by :func:`normalize2mom`; ``cst`` is a plain float (no buffer), ``act`` is kept as a
    submodule when it is a module so that it follows ``.to()``.

    >>> act = NormalizedActivation(torch.relu, 2.0)
    >>> act(torch.tensor([-1.0, 3.0])).tolist()
    [0.0, 6.0]
    """

    def __init__(self, act: Activation, cst: float) -> None:
        super().__init__()
        if not callable(act):
            raise TypeError(f"act must be callable, got {act!r}")
        self.act = act
        self.cst = float(cst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x) * self.cst

    def extra_repr(self) -> str:
        name = getattr(self.act, "__name__", None) or repr(self.act)
        return f"act={name}, cst={self.cst:.6f}"


def normalize2mom(act: Activation) -> NormalizedActivation:
    r"""Rescale ``act`` to :math:`\mathbb{E}[\sigma(z)^2] = 1` for :math:`z\sim\mathcal{N}(0,1)`.

    Already normalised activations are returned unchanged.

    Raises:
        ValueError: if the second moment is zero or not finite.

    >>> act = normalize2mom(torch.nn.functional.silu)
    >>> round(act.cst, 4)
    1.6765
    """
    if isinstance(act, NormalizedActivation):
        return act
    if not callable(act):
        raise TypeError(f"act must be callable (e.g. torch.tanh), got {act!r}")
    m2 = second_moment(act)
    if not math.isfinite(m2) or m2 <= 0:
        raise ValueError(f"activation {act!r} has second moment {m2} under N(0, 1): cannot rescale")
    return NormalizedActivation(act, m2**-0.5)
