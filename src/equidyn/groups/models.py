r"""Group-equivariant CNN classifiers: :class:`GCNN`, its P4 / P4M instances and the plain CNN.

Architecture (Cohen & Welling 2016, §8, scaled to small images): a lifting convolution, then
``num_layers - 1`` group convolutions, each followed by group batch norm and ReLU, with a
spatial max pool (kernel 3, stride 2, padding 1) after the layers in ``pool_after``; then
max pooling over the group, mean over space and a linear read-out:

.. math::  \text{logits}(x) = W \,\mathrm{mean}_{p}\,\max_{h \in G}\, \Phi(x)(h, p) + b.

The features :math:`\Phi` are equivariant, the logits invariant. With ``Cyclic(1)`` the
model is a plain CNN (``Z2CNN``) with the same layout.

Exactness needs square inputs whose size stays odd at every pooling (``exact=True`` checks
and raises ``ValueError`` otherwise, e.g. for 8×8 or 10×10 images; pad to 9×9).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from equidyn.groups.conv import GroupConv, LiftingConv
from equidyn.groups.finite import Cyclic, Dihedral, FiniteGroup
from equidyn.groups.layers import GroupBatchNorm, GroupPool, SpatialMaxPool

__all__ = ["GCNN", "P4CNN", "P4MCNN", "Z2CNN"]


class GCNN(torch.nn.Module):
    r"""G-CNN image classifier over a finite rotation/reflection group.

    Args:
        group: :class:`~equidyn.groups.Cyclic` or :class:`~equidyn.groups.Dihedral`.
        in_channels: channels of the input images.
        num_classes: size of the output.
        channels: feature channels per group element in every hidden layer.
        num_layers: number of (lifting + group) convolutions, at least 1.
        kernel_size: odd filter size.
        pool_after: indices of the layers followed by a spatial max pool.
        exact: check that the input size keeps exact equivariance.

    >>> import torch
    >>> from equidyn.groups import P4CNN
    >>> model = P4CNN(in_channels=1, num_classes=10, channels=4, num_layers=3)
    >>> model(torch.randn(2, 1, 9, 9)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        group: FiniteGroup,
        *,
        in_channels: int,
        num_classes: int,
        channels: int = 10,
        num_layers: int = 4,
        kernel_size: int = 3,
        pool_after: Sequence[int] = (1,),
        exact: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers!r}")
        if kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd (an even one shifts the centre), got {kernel_size}"
            )
        self.group = group
        self.exact = exact and group.order > 1
        layers: list[torch.nn.Module] = []
        for i in range(num_layers):
            conv_cls = LiftingConv if i == 0 else GroupConv
            layers.append(
                conv_cls(group, in_channels if i == 0 else channels, channels, kernel_size)
            )
            layers += [GroupBatchNorm(channels), torch.nn.ReLU()]
            if i in pool_after:
                layers.append(SpatialMaxPool(exact=self.exact))
        self.features = torch.nn.Sequential(*layers)
        self.group_pool = GroupPool("max")
        self.readout = torch.nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of images ``(B, in_channels, H, W)``."""
        if self.exact:
            self._check_exact(x)
        h = self.group_pool(self.features(x))  # [B, C, H', W']
        return self.readout(h.mean(dim=(-2, -1)))  # [B, num_classes]

    def _check_exact(self, x: torch.Tensor) -> None:
        if x.dim() == 4 and x.shape[-1] != x.shape[-2]:
            raise ValueError(
                f"exact {self.group!r} equivariance needs square images, got {tuple(x.shape)} "
                "(pass exact=False to accept approximate equivariance)"
            )
        if x.dim() == 4 and x.shape[-1] % 2 == 0:
            raise ValueError(
                f"exact {self.group!r} equivariance needs odd image sizes, got {tuple(x.shape)}: "
                "pad the images by one pixel (or pass exact=False)"
            )


def P4CNN(**kwargs) -> GCNN:  # noqa: N802 - the model's name in the literature
    """:class:`GCNN` over :math:`C_4` (rotations by 90°); keyword arguments as GCNN's."""
    return GCNN(Cyclic(4), **kwargs)


def P4MCNN(**kwargs) -> GCNN:  # noqa: N802
    """:class:`GCNN` over :math:`D_4` (rotations by 90° and flips)."""
    return GCNN(Dihedral(4), **kwargs)


def Z2CNN(**kwargs) -> GCNN:  # noqa: N802
    """Plain CNN with the layout of :class:`GCNN` (the trivial group, ``Cyclic(1)``)."""
    return GCNN(Cyclic(1), **kwargs)
