"""EGNN (src/equidyn/models/egnn.py): E(3) and permutation equivariance, training, bad input."""

from __future__ import annotations

import pytest
import torch

from equidyn.models import EGNN
from equidyn.testing import assert_equivariant


def make_inputs(batch=2, n=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    vel = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    q = (torch.randint(0, 2, (batch, n, 1), generator=g) * 2 - 1).to(dtype)
    return pos, vel, q


def as_fn(model, node_attr_dim=0):
    """(pos, vel, charges) -> positions, edge attributes [q_i q_j] built from the charges, so
    that permuting the particles permutes every input along one axis."""

    def fn(pos, vel, q):
        node = q if node_attr_dim else pos.new_zeros(*pos.shape[:2], 0)
        return model(pos, vel, node, q[:, :, None, :] * q[:, None, :, :])

    return fn


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("velocity", [True, False])
def test_e3_and_permutation_equivariance(dtype, velocity):
    torch.manual_seed(0)
    model = EGNN(num_features=16, num_layers=2, node_attr_dim=1, edge_attr_dim=1, velocity=velocity)
    model = model.to(dtype)
    with torch.no_grad():  # make the coordinate updates large, so that a bug would show
        for layer in model.layers:
            layer.phi_x[-1].weight.mul_(300.0)
    assert_equivariant(
        as_fn(model, node_attr_dim=1),
        irreps_in=["cartesian_points", "1o", "0e"],
        irreps_out=["cartesian_points"],
        args_in=make_inputs(dtype=dtype),
        translations=True,
        permutations=True,
        node_dims_in=1,
        node_dims_out=1,
    )


def test_velocity_head_is_equivariant():
    torch.manual_seed(0)
    model = EGNN(num_features=16, num_layers=2, edge_attr_dim=1, predict_velocity=True).double()

    def fn(pos, vel, q):
        node, edge = pos.new_zeros(*pos.shape[:2], 0), q[:, :, None, :] * q[:, None, :, :]
        return model.forward_state(pos, vel, node, edge)

    assert_equivariant(
        fn,
        irreps_in=["cartesian_points", "1o", "0e"],
        irreps_out=["cartesian_points", "1o"],
        args_in=make_inputs(),
        translations=True,
        permutations=True,
        node_dims_in=1,
        node_dims_out=1,
    )


def test_init_is_close_to_linear_motion():
    model = EGNN(num_features=16, num_layers=2, velocity=False, edge_attr_dim=0)
    pos, vel, _ = make_inputs(dtype=torch.float32)
    out = model(pos, vel, pos.new_zeros(2, 5, 0))
    assert (out - pos).abs().max() < 0.05


def test_short_training_lowers_the_loss():
    from equidyn.dynamics.systems import simulate_charged_nbody

    d = simulate_charged_nbody(16, n_steps=1101, seed=0)
    pos, vel = d["pos"][:, 0].float(), d["vel"][:, 0].float()
    target = d["pos"][:, 9].float()
    q = d["charges"].float()[..., None]
    torch.manual_seed(0)
    model = EGNN(num_features=16, num_layers=2, edge_attr_dim=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    node, edge = pos.new_zeros(16, 5, 0), q[:, :, None] * q[:, None, :]
    losses = []
    for _ in range(30):
        loss = ((model(pos, vel, node, edge) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_bad_input():
    model = EGNN(num_features=8, num_layers=1, edge_attr_dim=1)
    pos, vel, q = make_inputs(dtype=torch.float32)
    node, edge = pos.new_zeros(2, 5, 0), q[:, :, None] * q[:, None, :]
    with pytest.raises(ValueError, match="pos must have shape"):
        model(pos[..., :2], vel, node, edge)
    with pytest.raises(ValueError, match="vel must have the shape of pos"):
        model(pos, vel[:, :4], node, edge)
    with pytest.raises(ValueError, match="edge_attr must have shape"):  # 4 particles vs 5
        model(pos, vel, node, edge[:, :4, :4])
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        model(pos, vel, node, None)
    with pytest.raises(ValueError, match="node_attr must have shape"):
        model(pos, vel, pos.new_zeros(2, 5, 1), edge)
    bad = pos.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="pos contains NaN"):
        model(bad, vel, node, edge)
    with pytest.raises(ValueError, match="predict_velocity"):
        model.forward_state(pos, vel, node, edge)
