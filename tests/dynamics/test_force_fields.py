"""PairForceField (src/equidyn/dynamics/force_fields.py): symmetry, physics, learning."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn.dynamics import ChargedNBody, PairForceField
from equidyn.testing import assert_equivariant


def make_inputs(batch=3, n=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    vel = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    q = (torch.randint(0, 2, (batch, n, 1), generator=g) * 2 - 1).to(dtype)
    return pos, vel, q


def randomized(field, seed=0):
    """Non-trivial weights: the last layer starts at zero, which would pass any test."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in field.parameters():
            if p.dim() > 0:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return field


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_field_is_e3_and_permutation_equivariant(dtype):
    field = randomized(PairForceField(8, 2, node_attr_dim=1, edge_attr_dim=1)).to(dtype)

    def fn(pos, vel, q):
        return field(pos, vel, q, q[:, :, None, :] * q[:, None, :, :])

    assert_equivariant(
        fn,
        irreps_in=["cartesian_points", "1o", "0e"],
        irreps_out=["1o"],
        args_in=make_inputs(dtype=dtype),
        translations=True,
        permutations=True,
        node_dims_in=1,
        node_dims_out=1,
    )


def test_reflection_breaking_field_is_caught():
    """Negative control: the same check fails for a field with a fixed preferred axis."""
    field = randomized(PairForceField(8, 1, edge_attr_dim=1)).double()
    axis = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)

    def fn(pos, vel, q):
        return field(pos, vel, pos.new_zeros(*pos.shape[:2], 0), q[:, :, None] * q[:, None]) + axis

    with pytest.raises(AssertionError):
        assert_equivariant(
            fn,
            irreps_in=["cartesian_points", "1o", "0e"],
            irreps_out=["1o"],
            args_in=make_inputs(),
            node_dims_in=1,
            node_dims_out=1,
        )


def test_newtons_third_law_and_pair_structure():
    field = randomized(PairForceField(8, 2, edge_attr_dim=1, saturation=None)).double()
    pos, vel, q = make_inputs()
    acc = field(pos, vel, pos.new_zeros(3, 5, 0), q[:, :, None] * q[:, None])
    # momentum conservation: the pair forces cancel
    torch.testing.assert_close(acc.sum(1), torch.zeros(3, 3, dtype=torch.float64))
    # two particles: the force is along the line between them
    two = pos[:, :2]
    a2 = field(two, vel[:, :2], two.new_zeros(3, 2, 0), torch.ones(3, 2, 2, 1, dtype=two.dtype))
    d = two[:, 0] - two[:, 1]
    torch.testing.assert_close(torch.linalg.cross(a2[:, 0], d), torch.zeros_like(d))


def test_saturation_bounds_the_acceleration():
    field = randomized(PairForceField(8, 1, edge_attr_dim=0, saturation=2.0)).double()
    with torch.no_grad():
        field.log_saturation.fill_(math.log(2.0))
    pos, vel, _ = make_inputs()
    pos[:, 1] = pos[:, 0] + 1e-3  # a close encounter: huge pair force
    acc = field(pos, vel, pos.new_zeros(3, 5, 0))
    assert acc.norm(dim=-1).max() <= 2.0 + 1e-9


def test_learns_coulomb_forces():
    """A hundred Adam steps fit the clipped Coulomb field of the charged N-body system."""
    torch.manual_seed(0)
    pos, vel, q = make_inputs(batch=16, dtype=torch.float32, seed=1)
    pos = pos * 1.5
    edge = q[:, :, None] * q[:, None]
    target = ChargedNBody(q[..., 0], clamp=100.0).acceleration(pos, None)
    field = PairForceField(16, 2, edge_attr_dim=1)
    node = pos.new_zeros(16, 5, 0)
    opt = torch.optim.Adam(field.parameters(), lr=2e-2)
    first = None
    for _ in range(100):
        loss = ((field(pos, vel, node, edge) - target) ** 2).mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first  # 1e-4 when written


def test_bad_arguments():
    with pytest.raises(ValueError, match="softening must be positive"):
        PairForceField(softening=0.0)
    with pytest.raises(ValueError, match="saturation must be positive"):
        PairForceField(saturation=-1.0)
    field = PairForceField(edge_attr_dim=1)
    pos, vel, _ = make_inputs(dtype=torch.float32)
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        field(pos, vel, pos.new_zeros(3, 5, 0), None)


def test_state_dict_carries_softening():
    field = randomized(PairForceField(8, 1, edge_attr_dim=1, softening=0.2))
    field.softening = 0.1  # as after `equidyn nbody --softening 0.1`
    fresh = PairForceField(8, 1, edge_attr_dim=1, softening=0.2)
    fresh.load_state_dict(field.state_dict())
    assert fresh.softening == 0.1
    pos, vel, q = make_inputs(dtype=torch.float32)
    args = (pos, vel, pos.new_zeros(3, 5, 0), q[:, :, None] * q[:, None])
    torch.testing.assert_close(fresh(*args), field(*args))
