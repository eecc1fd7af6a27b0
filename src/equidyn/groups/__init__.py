r"""Finite groups on the plane and group-equivariant CNNs on images.

:math:`C_N` (rotations) and :math:`D_N` (rotations and reflections) with their regular and
irreducible representations, their actions on points, images and feature maps over the group,
lifting and group convolutions (Cohen & Welling 2016), group pooling and batch norm, and the
P4CNN / P4MCNN classifiers. N dividing 4 acts exactly on the pixel grid; N = 8 uses
interpolated rotations and is only approximately equivariant.

>>> import torch
>>> from equidyn import groups
>>> D4 = groups.Dihedral(4)
>>> model = groups.P4MCNN(in_channels=1, num_classes=3, channels=2, num_layers=2).double()
>>> x = torch.randn(1, 1, 9, 9, dtype=torch.float64)
>>> model.eval()(x).shape
torch.Size([1, 3])
>>> torch.allclose(model(groups.act_on_image(D4, 5, x)), model(x), atol=1e-12)
True
"""

from equidyn.groups.actions import (
    act_on_image,
    act_on_points,
    act_on_regular,
    interpolation_matrix,
    rotate_image,
)
from equidyn.groups.conv import GroupConv, LiftingConv, filter_transform
from equidyn.groups.finite import Cyclic, Dihedral, FiniteGroup, GroupIrrep
from equidyn.groups.layers import GroupBatchNorm, GroupPool, SpatialMaxPool, check_symmetric_grid
from equidyn.groups.models import GCNN, P4CNN, P4MCNN, Z2CNN

__all__ = [
    "Cyclic",
    "Dihedral",
    "FiniteGroup",
    "GroupIrrep",
    "act_on_image",
    "act_on_points",
    "act_on_regular",
    "interpolation_matrix",
    "rotate_image",
    "filter_transform",
    "LiftingConv",
    "GroupConv",
    "GroupPool",
    "SpatialMaxPool",
    "GroupBatchNorm",
    "check_symmetric_grid",
    "GCNN",
    "P4CNN",
    "P4MCNN",
    "Z2CNN",
]
