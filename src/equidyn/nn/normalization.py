r"""Equivariant normalisation layers: :class:`LayerNorm` and :class:`BatchNorm`.

Only invariant statistics may be used, and only invariant quantities may be subtracted. For a
block ``mul x ir`` of the features, write :math:`x_u \in \mathbb{R}^{2l+1}` for copy :math:`u`.

* **Even scalars** (``0e``) are centred and scaled like ordinary features:
  :math:`y_u = (x_u - \mu) / \sqrt{\sigma^2 + \epsilon}\; w_u + b_u`.
* **Every other irrep** (``l > 0``, and pseudoscalars ``0o`` whose sign flips under reflections)
  is only rescaled by the root mean square of its components, never centred and never given a
  bias: :math:`y_u = x_u / \sqrt{\nu + \epsilon}\; w_u` with
  :math:`\nu = \operatorname{mean}\, |x_u|^2 / (2l+1)`.

A rotation (or reflection) leaves :math:`|x_u|`, :math:`\mu` and :math:`\sigma` unchanged, so both
layers are equivariant. :class:`LayerNorm` takes the statistics over the copies :math:`u` of each
block of one sample; :class:`BatchNorm` takes them over the batch, per copy, and keeps running
averages for evaluation.
"""

from __future__ import annotations

import torch

from equidyn.nn._checks import check_features
from equidyn.o3 import Irrep, Irreps

__all__ = ["LayerNorm", "BatchNorm"]

_SCALAR = Irrep("0e")


def _check_eps(eps: float) -> float:
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps!r}")
    return float(eps)


class LayerNorm(torch.nn.Module):
    r"""Equivariant layer normalisation, per sample and per block of irreps.

    For a block ``mul x ir`` of one sample:
    ``0e``: :math:`y_u = (x_u - \bar x)/\sqrt{\operatorname{var}_u x_u + \epsilon}\,w_u + b_u`;
    others: :math:`y_u = x_u / \sqrt{\frac{1}{\text{mul}}\sum_v |x_v|^2/(2l+1) + \epsilon}\,w_u`.

    Args:
        irreps: irreps of the features (input = output).
        eps: added to the variance.
        affine: learnable per-copy scales :math:`w` (ones) and ``0e`` biases :math:`b` (zeros).

    >>> import torch
    >>> norm = LayerNorm("8x0e + 4x1o")
    >>> y = norm(3 * torch.randn(5, 20) + 1)
    >>> round(y[:, :8].mean().item(), 5), round(y[:, :8].pow(2).mean().item(), 3)
    (0.0, 1.0)
    >>> round(y[:, 8:].pow(2).mean().item(), 3)
    1.0
    """

    def __init__(self, irreps: Irreps | str, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.irreps_in = Irreps(irreps)
        self.irreps_out = self.irreps_in
        self.eps = _check_eps(eps)
        self.affine = bool(affine)
        n_scalars = sum(mul for mul, ir in self.irreps_in if ir == _SCALAR)
        if self.affine:
            self.weight = torch.nn.Parameter(torch.ones(self.irreps_in.num_irreps))
            self.bias = torch.nn.Parameter(torch.zeros(n_scalars))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., irreps.dim)`` → ``(..., irreps.dim)``."""
        check_features(x, self.irreps_in)
        batch = x.shape[:-1]
        parts, start, iw, ib = [], 0, 0, 0
        for mul, ir in self.irreps_in:
            d = mul * ir.dim
            if mul == 0:
                continue
            xb = x[..., start : start + d].reshape(*batch, mul, ir.dim)  # [..., mul, 2l+1]
            if ir == _SCALAR:
                xb = xb - xb.mean(dim=-2, keepdim=True)
            var = xb.pow(2).mean(dim=(-2, -1), keepdim=True)  # [..., 1, 1]
            yb = xb * torch.rsqrt(var + self.eps)
            if self.weight is not None:
                yb = yb * self.weight[iw : iw + mul, None]
                if ir == _SCALAR:
                    yb = yb + self.bias[ib : ib + mul, None]
            parts.append(yb.reshape(*batch, d))
            start, iw = start + d, iw + mul
            ib += mul if ir == _SCALAR else 0
        if not parts:
            return x
        return torch.cat(parts, dim=-1)  # [..., irreps.dim]

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, eps={self.eps}, affine={self.affine}"


class BatchNorm(torch.nn.Module):
    r"""Equivariant batch normalisation, per irrep copy, statistics over the batch.

    With the mean :math:`\langle\cdot\rangle` over all leading dimensions of the input:
    ``0e`` copies: :math:`y_u = (x_u - \langle x_u\rangle)/\sqrt{\langle (x_u - \langle x_u
    \rangle)^2\rangle + \epsilon}\,w_u + b_u`; other copies:
    :math:`y_u = x_u / \sqrt{\langle |x_u|^2 \rangle/(2l+1) + \epsilon}\,w_u`.

    In training mode the batch statistics are used and the running estimates updated,
    :math:`s \leftarrow (1 - \text{momentum})\,s + \text{momentum}\,s_{\text{batch}}`
    (biased batch variances, as used for normalising); in evaluation mode the running
    estimates are used (``running_mean`` starts at 0, ``running_var`` at 1).

    Args:
        irreps: irreps of the features (input = output).
        eps: added to the variances.
        momentum: weight of a new batch in the running statistics, in ``[0, 1]``.
        affine: learnable per-copy scales :math:`w` (ones) and ``0e`` biases :math:`b` (zeros).

    >>> import torch
    >>> bn = BatchNorm("2x0e + 1x1o")
    >>> y = bn(5 + 2 * torch.randn(1000, 5))
    >>> round(y[:, :2].mean().item(), 5), round(y[:, :2].var(unbiased=False).item(), 3)
    (0.0, 1.0)
    >>> bn.running_mean.shape, bn.running_var.shape
    (torch.Size([2]), torch.Size([3]))
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(
        self,
        irreps: Irreps | str,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__()
        self.irreps_in = Irreps(irreps)
        self.irreps_out = self.irreps_in
        self.eps = _check_eps(eps)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        self.momentum = float(momentum)
        self.affine = bool(affine)
        n_scalars = sum(mul for mul, ir in self.irreps_in if ir == _SCALAR)
        n_irreps = self.irreps_in.num_irreps
        self.register_buffer("running_mean", torch.zeros(n_scalars))
        self.register_buffer("running_var", torch.ones(n_irreps))
        if self.affine:
            self.weight = torch.nn.Parameter(torch.ones(n_irreps))
            self.bias = torch.nn.Parameter(torch.zeros(n_scalars))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., irreps.dim)`` → ``(..., irreps.dim)``; training needs a batch."""
        check_features(x, self.irreps_in)
        batch = x.shape[:-1]
        xf = x.reshape(-1, x.shape[-1])  # [n, irreps.dim]
        if self.training and xf.shape[0] < 1:
            raise ValueError(f"BatchNorm in training mode needs a non-empty batch, got {x.shape}")
        parts, new_means, new_vars = [], [], []
        start, iw, ib = 0, 0, 0
        for mul, ir in self.irreps_in:
            d = mul * ir.dim
            if mul == 0:
                continue
            xb = xf[:, start : start + d].reshape(-1, mul, ir.dim)  # [n, mul, 2l+1]
            scalar = ir == _SCALAR
            if self.training:
                if scalar:
                    mean = xb.mean(dim=(0, 2))  # [mul]
                    new_means.append(mean.detach())
                    xb = xb - mean[:, None]
                var = xb.pow(2).mean(dim=(0, 2))  # [mul]
                new_vars.append(var.detach())
            else:
                if scalar:
                    xb = xb - self.running_mean[ib : ib + mul, None]
                var = self.running_var[iw : iw + mul]
            yb = xb * torch.rsqrt(var + self.eps)[:, None]
            if self.weight is not None:
                yb = yb * self.weight[iw : iw + mul, None]
                if scalar:
                    yb = yb + self.bias[ib : ib + mul, None]
            parts.append(yb.reshape(-1, d))
            start, iw = start + d, iw + mul
            ib += mul if scalar else 0
        if self.training:
            with torch.no_grad():
                m = self.momentum
                if new_means:
                    self.running_mean.mul_(1 - m).add_(torch.cat(new_means), alpha=m)
                if new_vars:
                    self.running_var.mul_(1 - m).add_(torch.cat(new_vars), alpha=m)
        if not parts:
            return x
        return torch.cat(parts, dim=-1).reshape(*batch, x.shape[-1])  # [..., irreps.dim]

    def extra_repr(self) -> str:
        return f"{self.irreps_in}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
