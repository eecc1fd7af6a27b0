"""The group O(3) and its representations: irreps, rotations, Wigner D, Clebsch–Gordan,
spherical harmonics, tensor products and equivariant linear maps.

The bases are e3nn's (l=1 components are (x, y, z), ``D^1(R) == R``).
"""

from equidyn.o3.irreps import Irrep, Irreps
from equidyn.o3.linear import Linear  # noqa: F401
from equidyn.o3.rotations import (  # noqa: F401
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
from equidyn.o3.spherical_harmonics import SphericalHarmonics, spherical_harmonics  # noqa: F401
from equidyn.o3.symmetric_contraction import SymmetricContraction  # noqa: F401
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
from equidyn.o3.wigner import so3_generators, wigner_3j, wigner_D, wigner_D_from_angles  # noqa: F401

__all__ = ["Irrep", "Irreps"]
