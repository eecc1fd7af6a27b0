"""The group O(3) and its representations: irreps, rotations, Wigner D, Clebsch–Gordan,
spherical harmonics, tensor products and equivariant linear maps.

The bases are e3nn's (l=1 components are (x, y, z), ``D^1(R) == R``).
"""

from equidyn.o3.irreps import Irrep, Irreps
from equidyn.o3.linear import Linear  # noqa: F401
from equidyn.o3.spherical_harmonics import SphericalHarmonics, spherical_harmonics  # noqa: F401
from equidyn.o3.tensor_product import (  # noqa: F401
    ChannelwiseTensorProduct,
    ElementwiseTensorProduct,
    FullTensorProduct,
    FullyConnectedTensorProduct,
    Path,
    TensorProduct,
    TensorSquare,
    tensor_product_irreps,
)

__all__ = ["Irrep", "Irreps"]
