"""The group O(3) and its representations: irreps, rotations, Wigner D, Clebsch–Gordan,
spherical harmonics, tensor products and equivariant linear maps.

The bases are e3nn's (l=1 components are (x, y, z), ``D^1(R) == R``).

>>> import torch
>>> from equidyn import o3
>>> R = o3.rand_matrix(2, dtype=torch.float64)
>>> torch.allclose(o3.wigner_D(1, R), R)
True
>>> o3.tensor_product_irreps("1o", "1o")
1x0e+1x1e+1x2e
"""

from equidyn.o3.cartesian_tensor import CartesianTensor
from equidyn.o3.from_e3nn import from_e3nn
from equidyn.o3.irreps import Irrep, Irreps
from equidyn.o3.linear import Linear
from equidyn.o3.norm import Norm
from equidyn.o3.reduced_tensor_products import ReducedTensorProducts
from equidyn.o3.rotations import (
    angles_to_axis_angle,
    angles_to_matrix,
    angles_to_quaternion,
    angles_to_xyz,
    axis_angle_to_angles,
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    check_rotation,
    compose_angles,
    compose_axis_angle,
    compose_quaternion,
    identity_angles,
    identity_quaternion,
    inverse_angles,
    inverse_quaternion,
    matrix_to_angles,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rotation_vector,
    matrix_x,
    matrix_y,
    matrix_z,
    quaternion_to_angles,
    quaternion_to_axis_angle,
    quaternion_to_matrix,
    rand_angles,
    rand_axis_angle,
    rand_matrix,
    rand_quaternion,
    rotation_tolerance,
    xyz_to_angles,
)
from equidyn.o3.so2 import (
    SO2Convolution,
    SO2Linear,
    edge_frame,
    edge_wigner_D,
    rotate_from_edge_frame,
    rotate_to_edge_frame,
)
from equidyn.o3.spherical_harmonics import SphericalHarmonics, spherical_harmonics
from equidyn.o3.symmetric_contraction import SymmetricContraction
from equidyn.o3.tensor_product import (
    ChannelwiseTensorProduct,
    ElementwiseTensorProduct,
    FullTensorProduct,
    FullyConnectedTensorProduct,
    Path,
    TensorProduct,
    TensorSquare,
    tensor_product_irreps,
)
from equidyn.o3.wigner import so3_generators, wigner_3j, wigner_D, wigner_D_from_angles

__all__ = [
    "angles_to_axis_angle",
    "angles_to_matrix",
    "angles_to_quaternion",
    "angles_to_xyz",
    "axis_angle_to_angles",
    "axis_angle_to_matrix",
    "axis_angle_to_quaternion",
    "CartesianTensor",
    "ChannelwiseTensorProduct",
    "check_rotation",
    "compose_angles",
    "compose_axis_angle",
    "compose_quaternion",
    "ElementwiseTensorProduct",
    "from_e3nn",
    "FullTensorProduct",
    "FullyConnectedTensorProduct",
    "identity_angles",
    "identity_quaternion",
    "inverse_angles",
    "inverse_quaternion",
    "Irrep",
    "Irreps",
    "Linear",
    "matrix_to_angles",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rotation_vector",
    "matrix_x",
    "matrix_y",
    "matrix_z",
    "Norm",
    "edge_frame",
    "edge_wigner_D",
    "rotate_from_edge_frame",
    "rotate_to_edge_frame",
    "SO2Convolution",
    "SO2Linear",
    "Path",
    "quaternion_to_angles",
    "quaternion_to_axis_angle",
    "quaternion_to_matrix",
    "rand_angles",
    "rand_axis_angle",
    "rand_matrix",
    "rand_quaternion",
    "ReducedTensorProducts",
    "rotation_tolerance",
    "so3_generators",
    "spherical_harmonics",
    "SphericalHarmonics",
    "SymmetricContraction",
    "tensor_product_irreps",
    "TensorProduct",
    "TensorSquare",
    "wigner_3j",
    "wigner_D",
    "wigner_D_from_angles",
    "xyz_to_angles",
]
