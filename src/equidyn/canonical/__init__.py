r"""Learned canonicalization: any backbone made equivariant by an equivariant canonicalizer
(Kaba et al. 2023).

:math:`f(x) = \rho(h(x))\, p(\rho(h(x))^{-1} x)` with :math:`h` an
:class:`ImageCanonicalizer` (finite groups of the plane, straight-through argmax over a small
G-CNN's scores) or a :class:`PointCanonicalizer` (O(3)/SO(3) and translations of point sets,
Gram–Schmidt on equivariantly predicted vectors).

>>> import torch
>>> from equidyn.canonical import Canonicalized, PointCanonicalizer
>>> from equidyn.o3 import rand_matrix
>>> mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(15, 1))  # not invariant
>>> model = Canonicalized(PointCanonicalizer(inputs=["points"], outputs=["scalars"]), mlp)
>>> model = model.double()
>>> x = torch.randn(4, 5, 3, dtype=torch.float64)
>>> Q = -rand_matrix(dtype=torch.float64)  # a rotation composed with the inversion
>>> torch.allclose(model(x @ Q.T + 1.0), model(x), atol=1e-10)
True
"""

from equidyn.canonical.discrete import DiscreteFrame, ImageCanonicalizer
from equidyn.canonical.euclidean import EuclideanFrame, PointCanonicalizer, gram_schmidt_frame
from equidyn.canonical.wrapper import Canonicalized, Canonicalizer, Frame

__all__ = [
    "Canonicalized",
    "Canonicalizer",
    "Frame",
    "DiscreteFrame",
    "ImageCanonicalizer",
    "EuclideanFrame",
    "PointCanonicalizer",
    "gram_schmidt_frame",
]
