"""Projective geometric algebra G(3,0,1) and the Geometric Algebra Transformer's layers.

Multivectors are tensors ``(..., 16)`` in the basis order of the ``clifford`` package
(:mod:`equidyn.ga.blades`); products and involutions are in :mod:`equidyn.ga.products`, the
Pin(3,0,1) action in :mod:`equidyn.ga.versors`, embeddings of points, planes, directions,
translations and rotations in :mod:`equidyn.ga.embedding`, and the equivariant layers of GATr
(Brehmer et al. 2023) in the other modules.

>>> import torch
>>> from equidyn import ga
>>> p = ga.embed_point(torch.tensor([1.0, 0.0, 0.0]))
>>> ga.extract_point(ga.sandwich(ga.embed_translation(torch.tensor([0.0, 2.0, 0.0])), p))
tensor([1., 2., 0.])
"""

from equidyn.ga.activation import GatedGELU
from equidyn.ga.attention import GeometricAttention
from equidyn.ga.bilinear import GeometricBilinear
from equidyn.ga.blades import BLADE_NAMES, GRADES
from equidyn.ga.embedding import (
    embed_direction,
    embed_plane,
    embed_point,
    embed_rotation,
    embed_scalar,
    embed_translation,
    extract_direction,
    extract_plane,
    extract_point,
    extract_rotation,
    extract_scalar,
    extract_translation,
)
from equidyn.ga.linear import EquiLinear, basis_maps
from equidyn.ga.norm import EquiLayerNorm
from equidyn.ga.products import (
    dual,
    equi_join,
    geometric_product,
    grade_involution,
    grade_project,
    inner_product,
    invariant_inner,
    join,
    outer_product,
    reverse,
    undual,
)
from equidyn.ga.transformer import GATrBlock, GATrNet
from equidyn.ga.versors import sandwich, versor_inverse, versor_matrix

__all__ = [
    "BLADE_NAMES",
    "GRADES",
    "GATrBlock",
    "GATrNet",
    "GatedGELU",
    "GeometricAttention",
    "GeometricBilinear",
    "EquiLayerNorm",
    "EquiLinear",
    "basis_maps",
    "dual",
    "embed_direction",
    "embed_plane",
    "embed_point",
    "embed_rotation",
    "embed_scalar",
    "embed_translation",
    "equi_join",
    "extract_direction",
    "extract_plane",
    "extract_point",
    "extract_rotation",
    "extract_scalar",
    "extract_translation",
    "geometric_product",
    "grade_involution",
    "grade_project",
    "inner_product",
    "invariant_inner",
    "join",
    "outer_product",
    "reverse",
    "sandwich",
    "undual",
    "versor_inverse",
    "versor_matrix",
]
