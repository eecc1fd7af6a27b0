"""Tests of equidyn.o3.rotations: random rotations, validation, conversions (against e3nn 0.6
and by round trips), group operations, special rotations (identity, angle pi, gimbal lock)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from equidyn.o3 import rotations as rot

F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _special_rotations(dtype=F64) -> torch.Tensor:
    """Identity, angle pi about axes, gimbal lock (beta = 0, pi), tiny angles."""
    pi = torch.tensor(math.pi, dtype=dtype)
    axes = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [1, -2, 0.5]], dtype=dtype)
    mats = [torch.eye(3, dtype=dtype)]
    mats += [rot.axis_angle_to_matrix(a, pi) for a in axes]
    mats += [rot.axis_angle_to_matrix(a, torch.tensor(1e-9, dtype=dtype)) for a in axes]
    a, c = torch.tensor(0.3, dtype=dtype), torch.tensor(0.5, dtype=dtype)
    mats += [rot.angles_to_matrix(a, 0 * pi, c), rot.angles_to_matrix(a, pi, c)]
    return torch.stack([m.to(dtype) for m in mats])  # [n, 3, 3]


def _is_rotation(R: torch.Tensor, tol: float) -> bool:
    eye = torch.eye(3, dtype=R.dtype)
    orth = (R.transpose(-1, -2) @ R - eye).abs().max() < tol
    return bool(orth and (torch.linalg.det(R) - 1).abs().max() < tol)


# ------------------------------------------------------------------ rand_matrix, check_rotation


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_rand_matrix_proper_rotations(dtype):
    R = rot.rand_matrix(4, 5, generator=_gen(), dtype=dtype)
    assert R.shape == (4, 5, 3, 3) and R.dtype == dtype
    assert _is_rotation(R, 1e-5 if dtype == torch.float32 else 1e-13)
    assert rot.rand_matrix(2).dtype == torch.get_default_dtype()
    assert rot.rand_matrix().shape == (3, 3)
    assert torch.equal(rot.rand_matrix(3, generator=_gen(7)), rot.rand_matrix(3, generator=_gen(7)))


def test_rand_matrix_is_haar():
    # for Haar measure on SO(3): E[R] = 0, E[tr R] = 0, E[(tr R)^2] = 1
    R = rot.rand_matrix(40000, generator=_gen(1), dtype=F64)
    tr = R.diagonal(dim1=-2, dim2=-1).sum(-1)
    assert R.mean(0).abs().max() < 0.02
    assert abs(tr.mean().item()) < 0.02
    assert abs((tr**2).mean().item() - 1) < 0.03
    # Euler angles of Haar rotations: alpha, gamma uniform, cos(beta) uniform
    a, b, c = rot.rand_angles(40000, generator=_gen(2), dtype=F64)
    tr2 = rot.angles_to_matrix(a, b, c).diagonal(dim1=-2, dim2=-1).sum(-1)
    assert abs(tr2.mean().item()) < 0.02 and abs((tr2**2).mean().item() - 1) < 0.03


def test_check_rotation_returns_det():
    R = rot.rand_matrix(3, generator=_gen(), dtype=F64)
    assert torch.equal(rot.check_rotation(R), torch.ones(3, dtype=F64))
    Rm = torch.cat([R, -R])
    assert torch.equal(
        rot.check_rotation(Rm, allow_improper=True), torch.tensor([1.0] * 3 + [-1.0] * 3, dtype=F64)
    )
    assert rot.check_rotation(torch.zeros(0, 3, 3)).shape == (0,)


def test_check_rotation_errors():
    R = rot.rand_matrix(2, generator=_gen(), dtype=F64)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3, 3\).*\(2, 3, 4\)"):
        rot.check_rotation(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="shape"):
        rot.check_rotation(torch.zeros(3))
    with pytest.raises(TypeError, match="floating"):
        rot.check_rotation(torch.eye(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        rot.check_rotation([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(
        ValueError, match=r"not orthogonal: max \|R\^T R - I\| = 0\.21 > tolerance 1e-08"
    ):
        rot.check_rotation(R * 1.1)
    with pytest.raises(ValueError, match="not orthogonal"):
        rot.check_rotation(R * float("nan"))
    with pytest.raises(ValueError, match=r"pos contains 1 improper rotation\(s\) \(det = -1\)"):
        rot.check_rotation(torch.stack([R[0], -R[1]]), name="pos")


def test_check_rotation_tolerances():
    R = rot.rand_matrix(50, generator=_gen(), dtype=F64)
    rot.check_rotation(R.float())  # float32 rounding passes
    rot.check_rotation(R.float().double().float())
    noisy = R + 1e-6 * torch.randn(R.shape, generator=_gen(1), dtype=F64)
    rot.check_rotation(noisy.float())  # 1e-6 < 1e-4 in float32
    with pytest.raises(ValueError, match="tolerance 1e-08"):
        rot.check_rotation(noisy)  # but not in float64
    assert rot.rotation_tolerance(torch.float32) == 1e-4
    with pytest.raises(TypeError):
        rot.rotation_tolerance(torch.int32)


def test_check_rotation_keeps_autograd_and_compiles():
    R = rot.rand_matrix(3, generator=_gen(), dtype=F64).requires_grad_()
    det = rot.check_rotation(R)
    assert not det.requires_grad
    (R * 2).sum().backward()
    assert R.grad is not None

    def f(R):
        return rot.check_rotation(R, allow_improper=True)[:, None, None] * R

    torch._dynamo.reset()
    g = torch.compile(f, fullgraph=True, backend="eager")  # dynamo tracing is what is tested
    Rm = torch.cat([R.detach(), -R.detach()])
    assert torch.equal(g(Rm), f(Rm))


# ------------------------------------------------------------------------- against e3nn 0.6


@pytest.fixture
def e3nn_o3():
    o3 = pytest.importorskip("e3nn.o3")
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)  # e3nn builds some constants in the default dtype
    yield o3
    torch.set_default_dtype(old)


def test_conversions_agree_with_e3nn(e3nn_o3):
    o3 = e3nn_o3
    q = rot.rand_quaternion(200, generator=_gen(3), dtype=F64)
    q2 = rot.rand_quaternion(200, generator=_gen(4), dtype=F64)
    R = rot.quaternion_to_matrix(q)
    a, b, c = rot.rand_angles(200, generator=_gen(5), dtype=F64)
    axis, angle = rot.rand_axis_angle(200, generator=_gen(6), dtype=F64)
    tol = 1e-12

    def close(x, y):
        if isinstance(x, tuple):
            return all(close(u, v) for u, v in zip(x, y))
        return (x - y).abs().max().item() < tol

    assert close(rot.quaternion_to_matrix(q), o3.quaternion_to_matrix(q))
    assert close(rot.matrix_to_quaternion(R), o3.matrix_to_quaternion(R))
    assert close(rot.matrix_to_angles(R), o3.matrix_to_angles(R))
    assert close(rot.angles_to_matrix(a, b, c), o3.angles_to_matrix(a, b, c))
    assert close(rot.matrix_to_axis_angle(R), o3.matrix_to_axis_angle(R))
    assert close(rot.axis_angle_to_matrix(axis, angle), o3.axis_angle_to_matrix(axis, angle))
    assert close(
        rot.axis_angle_to_quaternion(axis, angle), o3.axis_angle_to_quaternion(axis, angle)
    )
    assert close(rot.quaternion_to_axis_angle(q), o3.quaternion_to_axis_angle(q))
    assert close(rot.angles_to_quaternion(a, b, c), o3.angles_to_quaternion(a, b, c))
    assert close(rot.quaternion_to_angles(q), o3.quaternion_to_angles(q))
    assert close(rot.angles_to_axis_angle(a, b, c), o3.angles_to_axis_angle(a, b, c))
    assert close(rot.axis_angle_to_angles(axis, angle), o3.axis_angle_to_angles(axis, angle))
    assert close(rot.compose_quaternion(q, q2), o3.compose_quaternion(q, q2))
    assert close(rot.inverse_quaternion(q), o3.inverse_quaternion(q))
    assert close(rot.compose_angles(a, b, c, c, a, b), o3.compose_angles(a, b, c, c, a, b))
    assert close(rot.inverse_angles(a, b, c), o3.inverse_angles(a, b, c))
    assert close(rot.angles_to_xyz(a, b), o3.angles_to_xyz(a, b))
    assert close(rot.xyz_to_angles(R[:, 0]), o3.xyz_to_angles(R[:, 0]))
    for name in ["matrix_x", "matrix_y", "matrix_z"]:
        assert close(getattr(rot, name)(a), getattr(o3, name)(a))
    ax2, an2 = rot.compose_axis_angle(axis, angle, axis.flip(-1), angle / 2)
    ax3, an3 = o3.compose_axis_angle(axis, angle, axis.flip(-1), angle / 2)
    assert close(rot.axis_angle_to_matrix(ax2, an2), o3.axis_angle_to_matrix(ax3, an3))


# ------------------------------------------------------------------- round trips and algebra


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_round_trips(dtype):
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    R = torch.cat([rot.rand_matrix(100, generator=_gen(), dtype=dtype), _special_rotations(dtype)])
    q = rot.matrix_to_quaternion(R)
    assert (q.norm(dim=-1) - 1).abs().max() < tol and (q[:, 0] >= 0).all()
    assert (rot.quaternion_to_matrix(q) - R).abs().max() < tol
    assert (rot.angles_to_matrix(*rot.matrix_to_angles(R)) - R).abs().max() < tol
    axis, angle = rot.matrix_to_axis_angle(R)
    assert (angle >= 0).all() and (angle <= math.pi + tol).all()
    assert (axis.norm(dim=-1) - 1).abs().max() < tol
    assert (rot.axis_angle_to_matrix(axis, angle) - R).abs().max() < 4 * tol
    w = rot.matrix_to_rotation_vector(R)
    expm = torch.linalg.matrix_exp(
        torch.einsum("...i,ijk->...jk", w, _levi_civita_generators(dtype))
    )
    assert (expm - R).abs().max() < 4 * tol
    assert (
        rot.quaternion_to_matrix(rot.angles_to_quaternion(*rot.matrix_to_angles(R))) - R
    ).abs().max() < tol


def _levi_civita_generators(dtype):
    L = torch.zeros(3, 3, 3, dtype=dtype)  # (L_a)_bc = -eps_abc, L_a x = e_a cross x
    for a, b, c in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        L[a, b, c], L[a, c, b] = -1.0, 1.0
    return L


def test_elementary_rotations_and_euler_convention():
    t = torch.tensor(0.7, dtype=F64)
    L = _levi_civita_generators(F64)
    for k, f in enumerate([rot.matrix_x, rot.matrix_y, rot.matrix_z]):
        assert torch.allclose(f(t), torch.linalg.matrix_exp((t * L[k])[None])[0], atol=1e-14)
    a, b, c = (torch.tensor(v, dtype=F64) for v in (0.3, 1.1, -2.0))
    R = rot.angles_to_matrix(a, b, c)
    assert torch.allclose(R, rot.matrix_y(a) @ rot.matrix_x(b) @ rot.matrix_y(c))
    ey = torch.tensor([0.0, 1.0, 0.0], dtype=F64)
    assert torch.allclose(R @ ey, rot.angles_to_xyz(a, b))
    # quaternion of a rotation about an axis
    assert torch.allclose(
        rot.quaternion_to_matrix(rot.axis_angle_to_quaternion(ey, t)), rot.matrix_y(t)
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(
        lambda v: sum(x * x for x in v) > 1e-3
    ),
    st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(
        lambda v: sum(x * x for x in v) > 1e-3
    ),
)
def test_quaternion_group_law(v1, v2):
    q1 = torch.tensor(v1, dtype=F64)
    q2 = torch.tensor(v2, dtype=F64)
    q1, q2 = q1 / q1.norm(), q2 / q2.norm()
    R1, R2 = rot.quaternion_to_matrix(q1), rot.quaternion_to_matrix(q2)
    assert torch.allclose(
        rot.quaternion_to_matrix(rot.compose_quaternion(q1, q2)), R1 @ R2, atol=1e-12
    )
    assert torch.allclose(rot.quaternion_to_matrix(rot.inverse_quaternion(q1)), R1.T, atol=1e-12)
    # unnormalized quaternions give the same rotation
    assert torch.allclose(rot.quaternion_to_matrix(3.0 * q1), R1, atol=1e-12)
    # matrix -> quaternion recovers q up to sign
    q = rot.matrix_to_quaternion(R1)
    assert min((q - q1).abs().max(), (q + q1).abs().max()) < 1e-12
    a, b, c = rot.matrix_to_angles(R1)
    a2, b2, c2 = rot.compose_angles(a, b, c, *rot.matrix_to_angles(R2))
    assert torch.allclose(rot.angles_to_matrix(a2, b2, c2), R1 @ R2, atol=1e-12)
    ai, bi, ci = rot.inverse_angles(a, b, c)
    assert torch.allclose(rot.angles_to_matrix(ai, bi, ci), R1.T, atol=1e-12)


def test_identity_and_special():
    assert torch.equal(
        rot.identity_quaternion(2, dtype=F64), torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=F64)
    )
    a, b, c = rot.identity_angles(3, dtype=F64)
    assert torch.equal(rot.angles_to_matrix(a, b, c), torch.eye(3, dtype=F64).expand(3, 3, 3))
    axis, angle = rot.matrix_to_axis_angle(torch.eye(3, dtype=F64))
    assert angle.item() == 0 and torch.equal(axis, torch.tensor([0.0, 1.0, 0.0], dtype=F64))
    assert torch.equal(
        rot.matrix_to_rotation_vector(torch.eye(3, dtype=F64)), torch.zeros(3, dtype=F64)
    )
    axis, angle = rot.rand_axis_angle(5, generator=_gen(), dtype=F64)
    assert axis.shape == (5, 3) and angle.shape == (5,)


def test_gradients_finite_at_special_rotations():
    R = _special_rotations().requires_grad_()
    for f in [rot.matrix_to_quaternion, rot.matrix_to_rotation_vector]:
        (g,) = torch.autograd.grad(f(R).pow(2).sum() + f(R).sum(), R)
        assert torch.isfinite(g).all()
    q = rot.rand_quaternion(3, generator=_gen(), dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda q: rot.matrix_to_rotation_vector(rot.quaternion_to_matrix(q)), (q,)
    )
    # the rotation vector is smooth through the identity (series branch)
    w = (1e-5 * torch.randn(4, 3, generator=_gen(1), dtype=F64)).requires_grad_()
    L = _levi_civita_generators(F64)
    f = lambda w: rot.matrix_to_rotation_vector(
        torch.linalg.matrix_exp(torch.einsum("ni,ijk->njk", w, L))
    )
    assert torch.autograd.gradcheck(f, (w,))
    assert torch.allclose(f(w), w, atol=1e-15)


def test_compile_conversions():
    R = rot.rand_matrix(5, generator=_gen(), dtype=F64)

    def f(R):
        q = rot.matrix_to_quaternion(R)
        a, b, c = rot.matrix_to_angles(R)
        return (
            rot.quaternion_to_matrix(q)
            + rot.angles_to_matrix(a, b, c)
            + rot.matrix_to_rotation_vector(R)[..., None]
        )

    torch._dynamo.reset()
    g = torch.compile(f, fullgraph=True, backend="eager")  # dynamo tracing is what is tested
    assert torch.allclose(g(R), f(R), atol=1e-12)
