"""GATr particle model (src/equidyn/models/gatr.py): E(3) and permutation equivariance of the
predicted positions and velocities, training lowers the loss, clear errors on bad input."""

from __future__ import annotations

import pytest
import torch

from equidyn.dynamics.systems import sample_gravity, simulate
from equidyn.ga import extract_direction
from equidyn.models.gatr import GATr
from equidyn.testing import assert_equivariant, equivariance_error


def make_inputs(dtype: torch.dtype, batch: int = 2, n: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(batch, n, 3, generator=g, dtype=torch.float64)
    vel = torch.randn(batch, n, 3, generator=g, dtype=torch.float64)
    mass = torch.rand(batch, n, 1, generator=g, dtype=torch.float64)
    return pos.to(dtype), vel.to(dtype), mass.to(dtype)


def small_model(dtype: torch.dtype = torch.float64) -> GATr:
    torch.manual_seed(0)
    return GATr(node_attr_dim=1, num_features=4, num_scalars=4, num_layers=2, num_heads=2).to(dtype)


SPECS = dict(
    irreps_in=["cartesian_points", "1o", "1x0e"],
    translations=True,
    permutations=True,
    node_dims_in=1,
    node_dims_out=1,
)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_positions_and_velocities_are_e3_and_permutation_equivariant(dtype):
    model = small_model(dtype)
    args = list(make_inputs(dtype))
    assert_equivariant(model, irreps_out=["cartesian_points"], args_in=args, **SPECS)
    assert_equivariant(
        lambda p, v, m: model.forward_state(p, v, m)[1], irreps_out=["1o"], args_in=args, **SPECS
    )


def test_without_the_involution_average_reflections_break():
    # the bare network on Euclidean embeddings is equivariant under rotations only: mirrored
    # data embeds as +P where the Pin action gives −P (see the module docstring)
    model = small_model()

    def bare(p, v, m):
        out, _ = model.net(model.embed(p, v), m)
        return extract_direction(out[..., 0, :]) - out[..., 0, 14:15] * p + p

    err = equivariance_error(
        bare, irreps_out=["cartesian_points"], args_in=list(make_inputs(torch.float64)), **SPECS
    )
    assert err["proper rotation"] < 1e-10
    assert err["improper rotation"] > 1e-8  # (vs ~1e-16 for the averaged model)


def test_training_on_gravity_lowers_the_loss():
    system, x0, v0 = sample_gravity(8, 4, seed=0)
    pos, _ = simulate(system, x0, v0, dt=0.01, n_steps=50, save_every=50)
    x0, v0, target = x0.float(), v0.float(), pos[:, -1].float()
    mass = system.masses.float()[..., None]
    model = small_model(torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = ((model(x0, v0, mass) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_bad_inputs():
    with pytest.raises(ValueError, match="edge_attr_dim=1"):
        GATr(edge_attr_dim=1)
    model = small_model()
    pos, vel, mass = make_inputs(torch.float64)
    with pytest.raises(ValueError, match="node_attr"):
        model(pos, vel, mass[..., :0])
    with pytest.raises(ValueError, match="vel"):
        model(pos, vel[:, :4], mass)
    with pytest.raises(ValueError, match="NaN"):
        model(pos * float("nan"), vel, mass)
