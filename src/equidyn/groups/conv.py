r"""Group convolutions on images (Cohen & Welling, *Group Equivariant Convolutional Networks*,
ICML 2016).

Lifting convolution :math:`\mathbb{Z}^2 \to G` and group convolution :math:`G \to G`
(cross-correlations, as ``conv2d``):

.. math::  [f \star \psi](g, x) = \sum_{y \in \mathbb{Z}^2} \sum_c f_c(y)\, \psi_c(g^{-1}(y - x)),
           \qquad
           [f \star \psi](g, x) = \sum_{h \in G} \sum_y \sum_c f_c(h, y)\,
           \psi_c(g^{-1}h,\ g^{-1}(y - x)).

Both are equivariant: :math:`[L_u f] \star \psi = L_u [f \star \psi]`, with :math:`L_u` the
regular action on the output (:func:`~equidyn.groups.act_on_regular`). The sum over ``g``
is one ``conv2d``: the filter bank holds :math:`L_g\psi` for every ``g``, stacked along the
output channels. Those transformed filters are gathered from the learned ones with an index
table precomputed once (exact groups, as in GrouPy) or an interpolation matrix (N = 8:
approximate, see :mod:`equidyn.groups.actions`).

Feature maps over the group have shape ``(batch, channels, |G|, H, W)``.

**What keeps exactness.** Odd kernel sizes with ``padding = kernel_size // 2`` and stride 1
on square inputs give exact equivariance for every element of the group when N divides 4.
A stride ``s`` keeps it only when ``(size + 2·padding − kernel_size)`` is divisible by ``s``
(the sampled grid must be symmetric about the centre; e.g. odd sizes for kernel 3, stride 2,
padding 1); even kernel sizes shift the centre by half a pixel and break it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from equidyn.groups.actions import interpolation_matrix
from equidyn.groups.finite import FiniteGroup

__all__ = ["LiftingConv", "GroupConv", "filter_transform"]


def filter_transform(group: FiniteGroup, kernel_size: int, regular_input: bool) -> torch.Tensor:
    r"""Matrices :math:`T_g` with :math:`\mathrm{vec}(L_g\psi) = T_g \mathrm{vec}(\psi)`,
    shape ``(|G|, n, n)``, ``n = k²`` (lifting) or ``|G| k²`` (group input), float64.

    Exact groups give permutation matrices.

    >>> from equidyn.groups import Cyclic
    >>> T = filter_transform(Cyclic(4), 3, regular_input=True)
    >>> T.shape, bool((T.sum(-1) == 1).all())
    (torch.Size([4, 36, 36]), True)
    """
    mats = []
    for g in group.elements():
        S = interpolation_matrix(kernel_size, group.matrix(g))  # [k², k²]
        if regular_input:
            P = group.regular_representation(g)  # e_h -> e_gh: psi(g^-1 h) lands at h
            S = torch.kron(P, S)  # [|G| k², |G| k²]
        mats.append(S)
    return torch.stack(mats)  # [|G|, n, n]


class _GroupConvBase(torch.nn.Module):
    regular_input: bool  # input over the group (GroupConv) or over the plane (LiftingConv)

    def __init__(
        self,
        group: FiniteGroup,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        bias: bool = True,
        padding: int | None = None,
        stride: int = 1,
    ) -> None:
        super().__init__()
        regular_input = self.regular_input
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride)):  # fmt: skip
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.group = group
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = kernel_size // 2 if padding is None else padding
        g_in = group.order if regular_input else 1
        self.weight = torch.nn.Parameter(
            torch.randn(out_channels, in_channels, g_in * kernel_size * kernel_size)
        )
        self.bias = torch.nn.Parameter(torch.zeros(out_channels)) if bias else None
        self._fan_in = in_channels * g_in * kernel_size * kernel_size
        T = filter_transform(group, kernel_size, regular_input)
        if group.exact_on_grid:
            self.register_buffer("index", T.argmax(-1), persistent=False)  # [|G|, n]
            self.transform = None
        else:
            self.index = None
            self.register_buffer("transform", T.to(torch.get_default_dtype()), persistent=False)

    def stacked_filters(self) -> torch.Tensor:
        """The filter bank ``(C_out·|G|, C_in·|G_in|, k, k)`` of the transformed filters."""
        w = self.weight / math.sqrt(self._fan_in)  # [C_out, C_in, n]
        if self.index is not None:
            bank = w[:, :, self.index]  # [C_out, C_in, |G|, n]
            bank = bank.permute(0, 2, 1, 3)
        else:
            transform = self.transform
            if transform is None:  # one of index / transform is always set in __init__
                raise RuntimeError("group convolution has neither an index nor a transform")
            bank = torch.einsum("gpq,oiq->ogip", transform.to(w), w)
        k = self.kernel_size
        return bank.reshape(self.out_channels * self.group.order, -1, k, k)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C_in·|G_in|, H, W]
        out = F.conv2d(x, self.stacked_filters(), stride=self.stride, padding=self.padding)
        out = out.reshape(x.shape[0], self.out_channels, self.group.order, *out.shape[-2:])
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1, 1)
        return out  # [B, C_out, |G|, H', W']

    def extra_repr(self) -> str:
        return (
            f"{self.group!r}, {self.in_channels}, {self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        )


class LiftingConv(_GroupConvBase):
    r"""Lifting convolution: images ``(B, C_in, H, W)`` → feature maps ``(B, C_out, |G|, H, W)``.

    Weights :math:`\psi \sim \mathcal{N}(0, 1)` scaled by :math:`1/\sqrt{C_{in} k^2}` in the
    forward pass (unit output variance for unit-variance inputs); one bias per output channel,
    shared over the group (a per-element bias would break equivariance).

    >>> import torch
    >>> from equidyn.groups import Cyclic, LiftingConv
    >>> conv = LiftingConv(Cyclic(4), 1, 8, kernel_size=3)
    >>> conv(torch.randn(2, 1, 9, 9)).shape
    torch.Size([2, 8, 4, 9, 9])
    """

    regular_input = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"LiftingConv expects images (batch, {self.in_channels}, H, W), "
                f"got shape {tuple(x.shape)}"
            )
        return self._conv(x)


class GroupConv(_GroupConvBase):
    r"""Group convolution: ``(B, C_in, |G|, H, W)`` → ``(B, C_out, |G|, H, W)``.

    Weights scaled by :math:`1/\sqrt{C_{in} |G| k^2}`; one bias per output channel.

    >>> import torch
    >>> from equidyn.groups import Dihedral, GroupConv
    >>> conv = GroupConv(Dihedral(4), 3, 5)
    >>> conv(torch.randn(2, 3, 8, 7, 7)).shape
    torch.Size([2, 5, 8, 7, 7])
    """

    regular_input = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[2] != self.group.order:
            raise ValueError(
                f"GroupConv over {self.group!r} expects (batch, {self.in_channels}, "
                f"{self.group.order}, H, W), got shape {tuple(x.shape)}: a group axis of another "
                "size means the features belong to another group"
            )
        return self._conv(x.flatten(1, 2))
