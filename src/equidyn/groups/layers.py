r"""Pooling and normalisation of feature maps over a group ``(B, C, |G|, H, W)``.

* :class:`GroupPool`: :math:`\max_h f(h, x)` or :math:`\frac{1}{|G|}\sum_h f(h, x)` — the
  result transforms as an image, :math:`[L_g f] \mapsto L_g[\text{pool} f]`: rotating the input
  only moves the pooled map, so a further spatial pooling gives invariants.
* :class:`SpatialMaxPool`: max pooling over space for each (channel, element) plane.
* :class:`GroupBatchNorm`: batch norm with statistics and affine parameters per channel,
  shared over the group and space (per-element statistics would break equivariance).

:func:`check_symmetric_grid` tells whether a strided window keeps exact equivariance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["GroupPool", "SpatialMaxPool", "GroupBatchNorm", "check_symmetric_grid"]


def check_symmetric_grid(size: int, kernel_size: int, stride: int, padding: int) -> None:
    r"""Raise ``ValueError`` unless a window sweep over ``size`` pixels is symmetric about the
    centre, i.e. :math:`(\text{size} + 2p - k) \bmod s = 0`, the condition for a strided
    convolution or pooling to commute exactly with flips and quarter turns.

    >>> check_symmetric_grid(9, kernel_size=3, stride=2, padding=1)
    >>> check_symmetric_grid(8, kernel_size=3, stride=2, padding=1)
    Traceback (most recent call last):
    ...
    ValueError: spatial size 8 is not compatible with exact equivariance ...
    """
    if (size + 2 * padding - kernel_size) % stride:
        raise ValueError(
            f"spatial size {size} is not compatible with exact equivariance for a window of "
            f"kernel_size={kernel_size}, stride={stride}, padding={padding}: "
            f"(size + 2*padding - kernel_size) must be divisible by the stride (for kernel 3, "
            "stride 2, padding 1: an odd size)"
        )


def _check_group_map(x: torch.Tensor, what: str) -> None:
    if x.dim() != 5:
        raise ValueError(f"{what} expects (batch, channels, |G|, H, W), got {tuple(x.shape)}")


class GroupPool(torch.nn.Module):
    """Pool over the group axis: ``(B, C, |G|, H, W)`` → ``(B, C, H, W)``.

    Args:
        reduce: ``"max"`` or ``"mean"``.

    >>> import torch
    >>> GroupPool("max")(torch.randn(2, 3, 4, 5, 5)).shape
    torch.Size([2, 3, 5, 5])
    """

    def __init__(self, reduce: str = "max") -> None:
        super().__init__()
        if reduce not in ("max", "mean"):
            raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_group_map(x, "GroupPool")
        return x.amax(2) if self.reduce == "max" else x.mean(2)  # [B, C, H, W]


class SpatialMaxPool(torch.nn.Module):
    """Spatial max pooling of ``(B, C, |G|, H, W)`` (each group plane separately).

    With ``exact=True`` an input size that breaks exact equivariance raises ``ValueError``
    (see :func:`check_symmetric_grid`); the default window (3, stride 2, padding 1) needs odd
    sizes.

    >>> import torch
    >>> SpatialMaxPool()(torch.randn(2, 3, 4, 9, 9)).shape
    torch.Size([2, 3, 4, 5, 5])
    """

    def __init__(
        self, kernel_size: int = 3, stride: int = 2, padding: int = 1, *, exact: bool = True
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.exact = (
            kernel_size,
            stride,
            padding,
            exact,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_group_map(x, "SpatialMaxPool")
        if self.exact:
            if x.shape[-1] != x.shape[-2]:
                raise ValueError(f"exact equivariance needs square maps, got {tuple(x.shape)}")
            check_symmetric_grid(x.shape[-1], self.kernel_size, self.stride, self.padding)
        B, C, G = x.shape[:3]
        y = F.max_pool2d(x.flatten(1, 2), self.kernel_size, self.stride, self.padding)
        return y.reshape(B, C, G, *y.shape[-2:])

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, exact={self.exact}"


class GroupBatchNorm(torch.nn.Module):
    r"""Batch norm of ``(B, C, |G|, H, W)``: per channel, statistics over batch, group, space.

    .. math::  y = \gamma_c \frac{x - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c

    >>> import torch
    >>> bn = GroupBatchNorm(3)
    >>> y = bn(torch.randn(4, 3, 8, 5, 5) * 7 + 2)
    >>> bool(y.mean().abs() < 1e-5), bool((y.std() - 1).abs() < 1e-2)
    (True, True)
    """

    def __init__(self, channels: int, *, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = torch.nn.BatchNorm1d(channels, eps=eps, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_group_map(x, "GroupBatchNorm")
        return self.bn(x.flatten(2)).reshape(x.shape)
