r"""Rotations of 3D space: random rotations, validation, and conversions between rotation
matrices, unit quaternions, axis–angle pairs and Euler angles.

Conventions (identical to e3nn 0.6, so numbers can be exchanged with it):

* A rotation matrix :math:`R \in SO(3)` acts on column vectors, :math:`x \mapsto R x`.
* **Euler angles** :math:`(\alpha, \beta, \gamma)` mean
  :math:`R = Y(\alpha)\, X(\beta)\, Y(\gamma)`, with :math:`X(\theta)`, :math:`Y(\theta)`,
  :math:`Z(\theta)` the right-handed rotations by :math:`\theta` about the x, y, z axes
  (:func:`matrix_x`, :func:`matrix_y`, :func:`matrix_z`). The y axis is the polar axis:
  :math:`R e_y = (\sin\alpha \sin\beta, \cos\beta, \cos\alpha \sin\beta)`
  (:func:`angles_to_xyz`).
* **Quaternions** are stored real part first, :math:`q = (w, x, y, z)`, and act by
  :math:`v \mapsto q v q^*` (Hamilton product), so that
  :math:`R(q_1 q_2) = R(q_1) R(q_2)` (:func:`compose_quaternion`).
* **Axis–angle** :math:`(n, \theta)`: right-handed rotation by :math:`\theta` about the unit
  vector :math:`n`, :math:`R = \exp(\theta [n]_\times)` (Rodrigues).

All functions are batched over leading dimensions, differentiable, and work in float32 and
float64. Matrix inputs of the conversions are assumed to be proper rotations; use
:func:`check_rotation` to validate user input.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "rand_matrix",
    "check_rotation",
    "rotation_tolerance",
    "matrix_x",
    "matrix_y",
    "matrix_z",
    "angles_to_matrix",
    "matrix_to_angles",
    "angles_to_xyz",
    "xyz_to_angles",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "quaternion_to_axis_angle",
    "axis_angle_to_quaternion",
    "angles_to_quaternion",
    "quaternion_to_angles",
    "angles_to_axis_angle",
    "axis_angle_to_angles",
    "matrix_to_rotation_vector",
    "compose_quaternion",
    "inverse_quaternion",
    "compose_angles",
    "inverse_angles",
    "compose_axis_angle",
    "rand_quaternion",
    "rand_axis_angle",
    "rand_angles",
    "identity_angles",
    "identity_quaternion",
]


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------

try:
    _compiling = torch.compiler.is_compiling
except AttributeError:  # torch < 2.3
    from torch._dynamo import is_compiling as _compiling


def _is_compiling() -> bool:
    """True while torch.compile traces the caller."""
    return bool(_compiling())


_TOLERANCES = {
    torch.float64: 1e-8,
    torch.float32: 1e-4,
    torch.float16: 2e-2,
    torch.bfloat16: 5e-2,
}


def rotation_tolerance(dtype: torch.dtype) -> float:
    r"""The largest :math:`\max |R^\top R - I|` that :func:`check_rotation` accepts for ``dtype``.

    float64: ``1e-8``, float32: ``1e-4``, float16: ``2e-2``, bfloat16: ``5e-2``.

    >>> rotation_tolerance(torch.float64)
    1e-08
    """
    if dtype not in _TOLERANCES:
        raise TypeError(f"rotation matrices must have a floating dtype, got {dtype}")
    return _TOLERANCES[dtype]


def check_rotation(R: Tensor, *, allow_improper: bool = False, name: str = "R") -> Tensor:
    r"""Check that ``R`` is a batch of orthogonal 3×3 matrices and return :math:`\det R = \pm 1`.

    ``R`` must have shape ``(..., 3, 3)``, a floating dtype, and satisfy
    :math:`\max |R^\top R - I| \le \epsilon` with :math:`\epsilon` =
    :func:`rotation_tolerance` (``1e-8`` in float64, ``1e-4`` in float32). Unless
    ``allow_improper`` is true, every :math:`\det R` must be :math:`+1` (proper rotations,
    :math:`SO(3)`); otherwise reflections (:math:`\det R = -1`, :math:`O(3)`) are allowed.

    Raises ``TypeError``/``ValueError`` naming the problem. The check never touches the autograd
    graph of ``R``; under ``torch.compile`` the (data dependent) checks are skipped and only the
    determinant signs are returned.

    Returns the determinants rounded to :math:`\pm 1`, shape ``(...)``, dtype of ``R``.

    >>> R = rand_matrix(2)
    >>> check_rotation(R)
    tensor([1., 1.])
    >>> check_rotation(-R, allow_improper=True)
    tensor([-1., -1.])
    >>> check_rotation(2 * R)
    Traceback (most recent call last):
    ...
    ValueError: R is not orthogonal: max |R^T R - I| = 3 > tolerance 0.0001 ...
    """
    if not isinstance(R, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (..., 3, 3), got {type(R)}")
    if R.dim() < 2 or R.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must have shape (..., 3, 3), got shape {tuple(R.shape)}")
    if not R.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {R.dtype}")
    Rd = R.detach()
    # det = r0 . (r1 x r2), written out: works for every floating dtype and under compile
    det = (Rd[..., 0, :] * torch.linalg.cross(Rd[..., 1, :], Rd[..., 2, :], dim=-1)).sum(-1)
    sign = torch.where(det < 0, -1.0, 1.0).to(R.dtype)  # (...)
    if _is_compiling():
        return sign
    tol = rotation_tolerance(R.dtype)
    if R.numel() == 0:
        return sign
    with torch.no_grad():
        eye = torch.eye(3, dtype=R.dtype, device=R.device)
        err = (Rd.transpose(-1, -2) @ Rd - eye).abs().amax().item()
    if not err <= tol:  # also catches NaN
        raise ValueError(
            f"{name} is not orthogonal: max |R^T R - I| = {err:.3g} > tolerance {tol:g} for "
            f"{R.dtype}; expected rotation matrices of shape (..., 3, 3)"
        )
    if not allow_improper:
        n_bad = int((det < 0).sum().item())
        if n_bad > 0:
            raise ValueError(
                f"{name} contains {n_bad} improper rotation(s) (det = -1); expected proper "
                f"rotations (det = +1)"
            )
    return sign


# ---------------------------------------------------------------------------------------------
# elementary rotations and Euler angles
# ---------------------------------------------------------------------------------------------


def _as_tensor(x: Tensor | float) -> Tensor:
    if isinstance(x, Tensor):
        return x
    return torch.as_tensor(x, dtype=torch.get_default_dtype())


def _from_rows(rows: list[list[Tensor]]) -> Tensor:
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)  # (..., 3, 3)


def matrix_x(angle: Tensor) -> Tensor:
    r"""Rotation by ``angle`` about the x axis,
    :math:`X(\theta) = \begin{pmatrix}1&0&0\\0&\cos\theta&-\sin\theta\\0&\sin\theta&\cos\theta
    \end{pmatrix}`. Shape ``(..., 3, 3)``.

    >>> (matrix_x(torch.tensor(math.pi / 2)) @ torch.tensor([0.0, 1.0, 0.0])).round() + 0.0
    tensor([0., 0., 1.])
    """
    angle = _as_tensor(angle)
    c, s = angle.cos(), angle.sin()
    o, z = torch.ones_like(c), torch.zeros_like(c)
    return _from_rows([[o, z, z], [z, c, -s], [z, s, c]])  # (..., 3, 3)


def matrix_y(angle: Tensor) -> Tensor:
    r"""Rotation by ``angle`` about the y axis,
    :math:`Y(\theta) = \begin{pmatrix}\cos\theta&0&\sin\theta\\0&1&0\\-\sin\theta&0&\cos\theta
    \end{pmatrix}`. Shape ``(..., 3, 3)``.

    >>> (matrix_y(torch.tensor(math.pi / 2)) @ torch.tensor([0.0, 0.0, 1.0])).round() + 0.0
    tensor([1., 0., 0.])
    """
    angle = _as_tensor(angle)
    c, s = angle.cos(), angle.sin()
    o, z = torch.ones_like(c), torch.zeros_like(c)
    return _from_rows([[c, z, s], [z, o, z], [-s, z, c]])  # (..., 3, 3)


def matrix_z(angle: Tensor) -> Tensor:
    r"""Rotation by ``angle`` about the z axis,
    :math:`Z(\theta) = \begin{pmatrix}\cos\theta&-\sin\theta&0\\\sin\theta&\cos\theta&0\\0&0&1
    \end{pmatrix}`. Shape ``(..., 3, 3)``.

    >>> (matrix_z(torch.tensor(math.pi / 2)) @ torch.tensor([1.0, 0.0, 0.0])).round() + 0.0
    tensor([0., 1., 0.])
    """
    angle = _as_tensor(angle)
    c, s = angle.cos(), angle.sin()
    o, z = torch.ones_like(c), torch.zeros_like(c)
    return _from_rows([[c, -s, z], [s, c, z], [z, z, o]])  # (..., 3, 3)


def angles_to_matrix(alpha: Tensor, beta: Tensor, gamma: Tensor) -> Tensor:
    r"""Euler angles to matrix, :math:`R = Y(\alpha) X(\beta) Y(\gamma)` (e3nn's convention).

    The angles broadcast together; the result has shape ``(..., 3, 3)``.

    >>> R = angles_to_matrix(torch.tensor(0.1), torch.tensor(0.2), torch.tensor(0.3))
    >>> torch.allclose(R @ R.T, torch.eye(3), atol=1e-6)
    True
    """
    alpha, beta, gamma = torch.broadcast_tensors(
        _as_tensor(alpha), _as_tensor(beta), _as_tensor(gamma)
    )
    return matrix_y(alpha) @ matrix_x(beta) @ matrix_y(gamma)  # (..., 3, 3)


def angles_to_xyz(alpha: Tensor, beta: Tensor) -> Tensor:
    r"""Point on the unit sphere with polar angle :math:`\beta` (from the y axis) and azimuth
    :math:`\alpha` (from the z axis towards x):
    :math:`(\sin\alpha\sin\beta,\ \cos\beta,\ \cos\alpha\sin\beta) = Y(\alpha) X(\beta) e_y`.

    >>> angles_to_xyz(torch.tensor(0.0), torch.tensor(0.0))
    tensor([0., 1., 0.])
    """
    alpha, beta = torch.broadcast_tensors(_as_tensor(alpha), _as_tensor(beta))
    sb = beta.sin()
    return torch.stack([alpha.sin() * sb, beta.cos(), alpha.cos() * sb], dim=-1)  # (..., 3)


def xyz_to_angles(xyz: Tensor) -> tuple[Tensor, Tensor]:
    r"""Inverse of :func:`angles_to_xyz`: :math:`\alpha = \operatorname{atan2}(x, z)`,
    :math:`\beta = \operatorname{atan2}(\sqrt{x^2+z^2}, y)` (the input need not be normalized).

    Returns ``(alpha, beta)`` with ``alpha`` in :math:`(-\pi, \pi]` and ``beta`` in
    :math:`[0, \pi]`, each of shape ``(...)``.

    >>> a, b = xyz_to_angles(torch.tensor([1.0, 0.0, 0.0]))
    >>> round(a.item(), 4), round(b.item(), 4)
    (1.5708, 1.5708)
    """
    x, y, z = xyz.unbind(-1)
    alpha = torch.atan2(x, z)
    beta = torch.atan2(torch.sqrt(x * x + z * z), y)
    return alpha, beta


def matrix_to_angles(R: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Euler angles of a proper rotation, inverse of :func:`angles_to_matrix`.

    :math:`\alpha, \beta` are the spherical angles of :math:`R e_y` (:func:`xyz_to_angles`) and
    :math:`\gamma` is read from :math:`Y(\alpha)^\top R = X(\beta) Y(\gamma)`, whose first row
    is :math:`(\cos\gamma, 0, \sin\gamma)`. At :math:`\beta \in \{0, \pi\}` (gimbal lock) the
    split between :math:`\alpha` and :math:`\gamma` is arbitrary but the angles still
    reproduce :math:`R`. Returns three tensors of shape ``(...)``.

    >>> a, b, c = matrix_to_angles(angles_to_matrix(0.1, 0.2, 0.3))
    >>> [round(t.item(), 4) for t in (a, b, c)]
    [0.1, 0.2, 0.3]
    """
    alpha, beta = xyz_to_angles(R[..., :, 1])
    ca, sa = alpha.cos(), alpha.sin()
    # first row of Y(alpha)^T R = ca * R[0] - sa * R[2]
    row = ca[..., None] * R[..., 0, :] - sa[..., None] * R[..., 2, :]  # (..., 3)
    gamma = torch.atan2(row[..., 2], row[..., 0])
    return alpha, beta, gamma


# ---------------------------------------------------------------------------------------------
# quaternions and axis-angle
# ---------------------------------------------------------------------------------------------


def quaternion_to_matrix(q: Tensor) -> Tensor:
    r"""Rotation matrix of a quaternion :math:`q = (w, x, y, z)`,
    :math:`R = I + 2 w [v]_\times + 2 [v]_\times^2` for :math:`|q| = 1`, :math:`v = (x, y, z)`.

    ``q`` need not be normalized: the homogeneous form (divided by :math:`|q|^2`) is used.
    Shape ``(..., 4) -> (..., 3, 3)``.

    >>> quaternion_to_matrix(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    tensor([[1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.]])
    """
    w, x, y, z = q.unbind(-1)
    s = 2.0 / (q * q).sum(-1)
    xx, yy, zz = s * x * x, s * y * y, s * z * z
    xy, xz, yz = s * x * y, s * x * z, s * y * z
    wx, wy, wz = s * w * x, s * w * y, s * w * z
    return _from_rows(
        [
            [1 - yy - zz, xy - wz, xz + wy],
            [xy + wz, 1 - xx - zz, yz - wx],
            [xz - wy, yz + wx, 1 - xx - yy],
        ]
    )  # (..., 3, 3)


def matrix_to_quaternion(R: Tensor) -> Tensor:
    r"""Unit quaternion :math:`(w, x, y, z)` with :math:`w \ge 0` of a proper rotation matrix.

    Uses the numerically stable branch (Shepperd's method): of
    :math:`4w^2 = 1 + \operatorname{tr}R` and :math:`4x^2 = 1 + 2R_{xx} - \operatorname{tr}R`
    (and y, z alike), the largest is computed by a square root and the other components from
    the off-diagonal sums/differences. Accurate and differentiable for every rotation
    (including angle :math:`\pi`). Shape ``(..., 3, 3) -> (..., 4)``.

    >>> matrix_to_quaternion(matrix_x(torch.tensor(math.pi / 2)))
    tensor([0.7071, 0.7071, 0.0000, 0.0000])
    """
    r00, r01, r02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    r10, r11, r12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    r20, r21, r22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    tr = r00 + r11 + r22
    # 4 * (w^2, x^2, y^2, z^2); the largest is >= 1 for a rotation
    sq = torch.stack([1 + tr, 1 + 2 * r00 - tr, 1 + 2 * r11 - tr, 1 + 2 * r22 - tr], dim=-1)
    # every candidate is computed on a clamped value (no NaN), only the chosen one is used
    root = torch.sqrt(sq.clamp(min=0.25))  # (..., 4) = 2 * |component|
    d_x, d_y, d_z = r21 - r12, r02 - r20, r10 - r01
    s_xy, s_xz, s_yz = r01 + r10, r02 + r20, r12 + r21
    cand = torch.stack(
        [
            torch.stack([root[..., 0] * root[..., 0], d_x, d_y, d_z], dim=-1),
            torch.stack([d_x, root[..., 1] * root[..., 1], s_xy, s_xz], dim=-1),
            torch.stack([d_y, s_xy, root[..., 2] * root[..., 2], s_yz], dim=-1),
            torch.stack([d_z, s_xz, s_yz, root[..., 3] * root[..., 3]], dim=-1),
        ],
        dim=-2,
    ) / (2 * root[..., :, None])  # (..., 4 candidates, 4 components)
    best = sq.argmax(dim=-1)  # (...)
    idx = best[..., None, None].expand(*best.shape, 1, 4)
    q = torch.gather(cand, -2, idx).squeeze(-2)  # (..., 4)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def axis_angle_to_matrix(axis: Tensor, angle: Tensor) -> Tensor:
    r"""Rodrigues' formula :math:`R = I + \sin\theta\, K + (1 - \cos\theta) K^2`,
    :math:`K = [n]_\times` with :math:`n` = ``axis`` normalized.

    ``axis`` has shape ``(..., 3)`` and ``angle`` shape ``(...)`` (broadcast together).

    >>> R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 1.0]), torch.tensor(math.pi / 2))
    >>> torch.allclose(R, matrix_z(torch.tensor(math.pi / 2)))
    True
    """
    angle = _as_tensor(angle).to(axis.dtype)
    n = axis / axis.norm(dim=-1, keepdim=True)
    x, y, z = n.unbind(-1)
    x, y, z, angle = torch.broadcast_tensors(x, y, z, angle)
    c, s = angle.cos(), angle.sin()
    t = 1 - c
    return _from_rows(
        [
            [c + t * x * x, t * x * y - s * z, t * x * z + s * y],
            [t * x * y + s * z, c + t * y * y, t * y * z - s * x],
            [t * x * z - s * y, t * y * z + s * x, c + t * z * z],
        ]
    )  # (..., 3, 3)


def _vector_part_to_axis_angle(w: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    norm_v = v.norm(dim=-1)  # (...)
    angle = 2 * torch.atan2(norm_v, w)
    safe = torch.where(norm_v > 0, norm_v, torch.ones_like(norm_v))
    ey = torch.zeros_like(v)
    ey[..., 1] = 1
    axis = torch.where((norm_v > 0)[..., None], v / safe[..., None], ey)
    return axis, angle


def quaternion_to_axis_angle(q: Tensor) -> tuple[Tensor, Tensor]:
    r"""Axis and angle of a quaternion: :math:`\theta = 2\operatorname{atan2}(|v|, w)` in
    :math:`[0, 2\pi]`, :math:`n = v / |v|` (:math:`n = e_y` when :math:`v = 0`).

    Shape ``(..., 4) -> ((..., 3), (...))``.

    >>> axis, angle = quaternion_to_axis_angle(torch.tensor([0.0, 0.0, 0.0, 1.0]))
    >>> axis, round(angle.item(), 4)
    (tensor([0., 0., 1.]), 3.1416)
    """
    return _vector_part_to_axis_angle(q[..., 0], q[..., 1:])


def axis_angle_to_quaternion(axis: Tensor, angle: Tensor) -> Tensor:
    r""":math:`q = (\cos\frac\theta2,\ \sin\frac\theta2\, n)` with :math:`n` = ``axis``
    normalized. Shapes ``(..., 3)``, ``(...)`` -> ``(..., 4)``.

    >>> axis_angle_to_quaternion(torch.tensor([1.0, 0.0, 0.0]), torch.tensor(math.pi / 3))
    tensor([0.8660, 0.5000, 0.0000, 0.0000])
    """
    angle = _as_tensor(angle).to(axis.dtype)
    n = axis / axis.norm(dim=-1, keepdim=True)
    n, angle = torch.broadcast_tensors(n, angle[..., None])
    half = angle[..., :1] / 2
    return torch.cat([half.cos(), half.sin() * n], dim=-1)  # (..., 4)


def matrix_to_axis_angle(R: Tensor) -> tuple[Tensor, Tensor]:
    r"""Axis :math:`n` and angle :math:`\theta \in [0, \pi]` of a proper rotation,
    :math:`R = \exp(\theta [n]_\times)`, computed through :func:`matrix_to_quaternion` (accurate
    near :math:`\theta = 0` and :math:`\theta = \pi`). At :math:`\theta = 0` the axis is
    :math:`e_y` by convention. Shape ``(..., 3, 3) -> ((..., 3), (...))``.

    >>> axis, angle = matrix_to_axis_angle(matrix_y(torch.tensor(0.5)))
    >>> axis, round(angle.item(), 4)
    (tensor([0., 1., 0.]), 0.5)
    """
    return quaternion_to_axis_angle(matrix_to_quaternion(R))


def matrix_to_rotation_vector(R: Tensor) -> Tensor:
    r"""Rotation vector :math:`\omega = \theta n` of a proper rotation, so that
    :math:`R = \exp([\omega]_\times)` with :math:`|\omega| = \theta \in [0, \pi]`.

    Computed from the quaternion :math:`(w, v)`, :math:`w \ge 0`, as
    :math:`\omega = v \cdot 2\operatorname{atan2}(|v|, w) / |v|`; the factor is evaluated with a
    series near :math:`v = 0`, so the map is smooth (and differentiable) at the identity.
    Shape ``(..., 3, 3) -> (..., 3)``.

    >>> matrix_to_rotation_vector(matrix_z(torch.tensor(0.25)))
    tensor([0.0000, 0.0000, 0.2500])
    """
    q = matrix_to_quaternion(R)  # (..., 4), w >= 0
    w, v = q[..., 0], q[..., 1:]
    s2 = (v * v).sum(-1)  # sin^2(theta/2)
    small = s2 < 1e-6
    s2_safe = torch.where(small, torch.ones_like(s2), s2)
    s = s2_safe.sqrt()
    big_factor = 2 * torch.atan2(s, w) / s
    # for w ~ 1: 2 atan2(s, w) / s = (2 / w) (1 - s^2 / (3 w^2) + s^4 / (5 w^4) ...)
    r = s2 / (w * w)
    small_factor = (2 / w) * (1 - r / 3 + r * r / 5)
    factor = torch.where(small, small_factor, big_factor)  # (...)
    return v * factor[..., None]  # (..., 3)


def quaternion_to_angles(q: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Euler angles :math:`(\alpha, \beta, \gamma)` of a quaternion (through the matrix).

    >>> a, b, c = quaternion_to_angles(angles_to_quaternion(0.1, 0.2, 0.3))
    >>> [round(t.item(), 4) for t in (a, b, c)]
    [0.1, 0.2, 0.3]
    """
    return matrix_to_angles(quaternion_to_matrix(q))


def angles_to_quaternion(alpha: Tensor, beta: Tensor, gamma: Tensor) -> Tensor:
    r"""Quaternion of :math:`Y(\alpha) X(\beta) Y(\gamma)`:
    :math:`q_y(\alpha)\, q_x(\beta)\, q_y(\gamma)` with :math:`q_n(\theta)` =
    :func:`axis_angle_to_quaternion`. Shape ``(..., 4)``.

    >>> angles_to_quaternion(0.0, 0.0, 0.0)
    tensor([1., 0., 0., 0.])
    """
    alpha, beta, gamma = torch.broadcast_tensors(
        _as_tensor(alpha), _as_tensor(beta), _as_tensor(gamma)
    )
    ex = torch.tensor([1.0, 0.0, 0.0], dtype=alpha.dtype, device=alpha.device)
    ey = torch.tensor([0.0, 1.0, 0.0], dtype=alpha.dtype, device=alpha.device)
    qa = axis_angle_to_quaternion(ey, alpha)
    qb = axis_angle_to_quaternion(ex, beta)
    qc = axis_angle_to_quaternion(ey, gamma)
    return compose_quaternion(compose_quaternion(qa, qb), qc)  # (..., 4)


def angles_to_axis_angle(alpha: Tensor, beta: Tensor, gamma: Tensor) -> tuple[Tensor, Tensor]:
    r"""Axis and angle of :math:`Y(\alpha) X(\beta) Y(\gamma)`.

    >>> axis, angle = angles_to_axis_angle(0.3, 0.0, 0.0)
    >>> axis, round(angle.item(), 4)
    (tensor([0., 1., 0.]), 0.3)
    """
    return matrix_to_axis_angle(angles_to_matrix(alpha, beta, gamma))


def axis_angle_to_angles(axis: Tensor, angle: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Euler angles of the rotation by ``angle`` about ``axis``.

    >>> a, b, c = axis_angle_to_angles(torch.tensor([1.0, 0.0, 0.0]), torch.tensor(0.5))
    >>> round(b.item(), 4)
    0.5
    """
    return matrix_to_angles(axis_angle_to_matrix(axis, angle))


# ---------------------------------------------------------------------------------------------
# group operations
# ---------------------------------------------------------------------------------------------


def compose_quaternion(q1: Tensor, q2: Tensor) -> Tensor:
    r"""Hamilton product :math:`q_1 q_2`, the quaternion of :math:`R(q_1) R(q_2)`.

    :math:`(w_1, v_1)(w_2, v_2) = (w_1 w_2 - v_1\cdot v_2,\ w_1 v_2 + w_2 v_1 + v_1 \times v_2)`.
    Shapes broadcast, ``(..., 4)``.

    >>> i = torch.tensor([0.0, 1.0, 0.0, 0.0]); j = torch.tensor([0.0, 0.0, 1.0, 0.0])
    >>> compose_quaternion(i, j)
    tensor([0., 0., 0., 1.])
    """
    q1, q2 = torch.broadcast_tensors(q1, q2)
    w1, v1 = q1[..., :1], q1[..., 1:]
    w2, v2 = q2[..., :1], q2[..., 1:]
    w = w1 * w2 - (v1 * v2).sum(-1, keepdim=True)
    v = w1 * v2 + w2 * v1 + torch.linalg.cross(v1, v2, dim=-1)
    return torch.cat([w, v], dim=-1)  # (..., 4)


def inverse_quaternion(q: Tensor) -> Tensor:
    r"""Conjugate :math:`(w, -v)`: the inverse of a unit quaternion. Shape ``(..., 4)``.

    >>> inverse_quaternion(torch.tensor([0.5, 0.5, 0.5, 0.5]))
    tensor([ 0.5000, -0.5000, -0.5000, -0.5000])
    """
    return torch.cat([q[..., :1], -q[..., 1:]], dim=-1)


def compose_angles(
    a1: Tensor, b1: Tensor, c1: Tensor, a2: Tensor, b2: Tensor, c2: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Euler angles of :math:`R(a_1, b_1, c_1)\, R(a_2, b_2, c_2)`.

    >>> a, b, c = compose_angles(0.1, 0.0, 0.0, 0.2, 0.0, 0.0)
    >>> round((a + c).item(), 4), round(b.item(), 4)
    (0.3, 0.0)
    """
    R = angles_to_matrix(a1, b1, c1) @ angles_to_matrix(a2, b2, c2)
    return matrix_to_angles(R)


def inverse_angles(a: Tensor, b: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Euler angles of the inverse rotation:
    :math:`(Y(a) X(b) Y(c))^{-1} = Y(-c) X(-b) Y(-a)`.

    >>> inverse_angles(torch.tensor(0.1), torch.tensor(0.2), torch.tensor(0.3))
    (tensor(-0.3000), tensor(-0.2000), tensor(-0.1000))
    """
    return -_as_tensor(c), -_as_tensor(b), -_as_tensor(a)


def compose_axis_angle(
    axis1: Tensor, angle1: Tensor, axis2: Tensor, angle2: Tensor
) -> tuple[Tensor, Tensor]:
    r"""Axis and angle of :math:`R(n_1, \theta_1) R(n_2, \theta_2)` (through quaternions).

    >>> ez = torch.tensor([0.0, 0.0, 1.0])
    >>> axis, angle = compose_axis_angle(ez, torch.tensor(0.1), ez, torch.tensor(0.2))
    >>> axis, round(angle.item(), 4)
    (tensor([0., 0., 1.]), 0.3)
    """
    q = compose_quaternion(
        axis_angle_to_quaternion(axis1, angle1), axis_angle_to_quaternion(axis2, angle2)
    )
    return quaternion_to_axis_angle(q)


# ---------------------------------------------------------------------------------------------
# random and identity elements
# ---------------------------------------------------------------------------------------------


def _dtype(dtype: torch.dtype | None) -> torch.dtype:
    return torch.get_default_dtype() if dtype is None else dtype


def rand_quaternion(
    *shape: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Haar-uniform random unit quaternions (a normalized standard Gaussian in
    :math:`\mathbb{R}^4` is uniform on :math:`S^3`), sign fixed so that :math:`w \ge 0`.
    Shape ``(*shape, 4)``.

    >>> q = rand_quaternion(5, generator=torch.Generator().manual_seed(0))
    >>> q.shape, torch.allclose(q.norm(dim=-1), torch.ones(5))
    (torch.Size([5, 4]), True)
    """
    q = torch.randn(*shape, 4, generator=generator, dtype=_dtype(dtype), device=device)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)  # (*shape, 4)


def rand_matrix(
    *shape: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""Haar-uniform random proper rotation matrices (:math:`\det R = +1`), shape
    ``(*shape, 3, 3)``, the matrices of :func:`rand_quaternion`.

    ``dtype`` defaults to ``torch.get_default_dtype()``; pass a ``torch.Generator`` for
    reproducible draws.

    >>> R = rand_matrix(10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    >>> R.shape, bool(torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=R.dtype)))
    (torch.Size([10, 3, 3]), True)
    """
    return quaternion_to_matrix(
        rand_quaternion(*shape, generator=generator, dtype=dtype, device=device)
    )  # (*shape, 3, 3)


def rand_axis_angle(
    *shape: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Axis and angle of Haar-uniform random rotations (angle in :math:`[0, \pi]`).
    Shapes ``(*shape, 3)`` and ``(*shape)``.

    >>> axis, angle = rand_axis_angle(4, generator=torch.Generator().manual_seed(0))
    >>> axis.shape, angle.shape
    (torch.Size([4, 3]), torch.Size([4]))
    """
    return quaternion_to_axis_angle(
        rand_quaternion(*shape, generator=generator, dtype=dtype, device=device)
    )


def rand_angles(
    *shape: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Euler angles of Haar-uniform random rotations: :math:`\alpha, \gamma` uniform in
    :math:`[0, 2\pi)` and :math:`\cos\beta` uniform in :math:`[-1, 1]`. Three tensors of shape
    ``shape``.

    >>> a, b, c = rand_angles(3, generator=torch.Generator().manual_seed(0))
    >>> a.shape
    torch.Size([3])
    """
    u = torch.rand(3, *shape, generator=generator, dtype=_dtype(dtype), device=device)
    alpha = 2 * math.pi * u[0]
    beta = torch.acos(2 * u[1] - 1)
    gamma = 2 * math.pi * u[2]
    return alpha, beta, gamma


def identity_angles(
    *shape: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Euler angles :math:`(0, 0, 0)` of the identity, three tensors of shape ``shape``.

    >>> identity_angles(2)
    (tensor([0., 0.]), tensor([0., 0.]), tensor([0., 0.]))
    """
    z = torch.zeros(3, *shape, dtype=_dtype(dtype), device=device)
    return z[0], z[1], z[2]


def identity_quaternion(
    *shape: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> Tensor:
    r"""The unit quaternion :math:`(1, 0, 0, 0)`, shape ``(*shape, 4)``.

    >>> identity_quaternion()
    tensor([1., 0., 0., 0.])
    """
    q = torch.zeros(*shape, 4, dtype=_dtype(dtype), device=device)
    q[..., 0] = 1
    return q
