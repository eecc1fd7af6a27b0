r"""Norm activation: scale every irrep by an activation of its own norm.

For each irrep copy :math:`x_u \in \mathbb{R}^{2l+1}` with norm :math:`n_u = |x_u|`,

.. math::
    \text{normalize=True:}\quad y_u = c_l\, \sigma(n_u + b_u)\, \frac{x_u}{n_u}, \qquad
    \text{normalize=False:}\quad y_u = c_l\, \sigma(n_u + b_u)\, x_u .

:math:`n_u` is invariant under O(3), so :math:`y_u` transforms exactly like :math:`x_u` (any
:math:`l`, any parity). The norm is computed as :math:`n_u = \sqrt{\max(|x_u|^2, \epsilon)}`, so
the output and its gradients (of every order) are finite at :math:`x_u = 0`.

The constant :math:`c_l` gives unit second moment per component for inputs with i.i.d.
:math:`\mathcal{N}(0, 1)` components (and :math:`b = 0`, the initialisation): with
:math:`k = 2l + 1` and :math:`n \sim \chi_k`,

.. math::  c_l = \sqrt{k / \mathbb{E}[\sigma(n)^2]} \;\;(\text{normalize}), \qquad
           c_l = \sqrt{k / \mathbb{E}[n^2 \sigma(n)^2]} \;\;(\text{otherwise}),

computed once by numerical integration (:func:`~equidyn.nn.activation.chi_moment`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from equidyn.nn._checks import check_features
from equidyn.nn.activation import chi_moment
from equidyn.o3 import Irreps

__all__ = ["NormActivation"]


class NormActivation(torch.nn.Module):
    r"""Scale each irrep by an activation of its norm (equivariant for every irrep).

    Args:
        irreps: irreps of the input (and output).
        act: the activation :math:`\sigma` applied to norms, e.g. ``torch.sigmoid``.
        normalize: divide by the norm (the output direction is that of the input, its length
            :math:`c_l\sigma(n)`); otherwise multiply the input by :math:`c_l\sigma(n)`.
        epsilon: lower bound on the squared norm, for finite gradients at zero.
        bias: a trainable bias :math:`b_u` (zero at init) added to each norm.

    >>> import torch
    >>> act = NormActivation("4x0e + 2x1o", torch.sigmoid)
    >>> x = torch.randn(100, act.irreps_in.dim)
    >>> act(x).shape
    torch.Size([100, 10])
    >>> act(torch.zeros(1, 10)).abs().max().item()
    0.0
    """

    def __init__(
        self,
        irreps: Irreps | str,
        act: Callable[[torch.Tensor], torch.Tensor],
        normalize: bool = True,
        epsilon: float = 1e-8,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if not callable(act):
            raise TypeError(f"act must be callable (e.g. torch.sigmoid), got {act!r}")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        self.irreps_in = Irreps(irreps)
        self.irreps_out = self.irreps_in
        self.act = act
        self.normalize = bool(normalize)
        self.epsilon = float(epsilon)
        power = 0 if self.normalize else 1
        self._csts: list[float] = []
        for _, ir in self.irreps_in:
            m2 = chi_moment(act, ir.dim, power=power)
            if not m2 > 0:
                raise ValueError(
                    f"activation {act!r} vanishes on the norms of {ir}: cannot normalise it"
                )
            self._csts.append((ir.dim / m2) ** 0.5)
        if bias:
            self.bias = torch.nn.Parameter(torch.zeros(self.irreps_in.num_irreps))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., irreps.dim)`` → ``(..., irreps.dim)``."""
        check_features(x, self.irreps_in)
        batch = x.shape[:-1]
        parts, start, u = [], 0, 0
        for (mul, ir), cst in zip(self.irreps_in, self._csts, strict=True):
            d = mul * ir.dim
            xb = x[..., start : start + d].reshape(*batch, mul, ir.dim)  # [..., mul, 2l+1]
            n = xb.pow(2).sum(-1).clamp(min=self.epsilon).sqrt()  # [..., mul]
            arg = n if self.bias is None else n + self.bias[u : u + mul]
            factor = self.act(arg) * cst
            if self.normalize:
                factor = factor / n
            parts.append((xb * factor[..., None]).reshape(*batch, d))
            start, u = start + d, u + mul
        if not parts:
            return x
        return torch.cat(parts, dim=-1)  # [..., irreps.dim]

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, normalize={self.normalize}, epsilon={self.epsilon}"
