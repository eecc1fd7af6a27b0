"""The GATr paper's gravitational n-body data (src/equidyn/dynamics/planetary.py)."""

from __future__ import annotations

import pytest
import torch

from equidyn.dynamics import GravityNBody, PlanetaryNBodyDataset, sample_planetary_systems
from equidyn.dynamics.planetary import DT, N_STEPS, SOFTENING
from equidyn.dynamics.systems import angular_momentum, linear_momentum, simulate


def test_systems_follow_the_protocol():
    pos, vel, mass = sample_planetary_systems(200, 4, seed=0)
    assert pos.shape == vel.shape == (200, 5, 3) and mass.shape == (200, 5)
    assert pos.dtype == torch.float64
    assert ((mass[:, 0] >= 1) & (mass[:, 0] <= 2)).all()
    assert ((mass[:, 1:] >= 0.01) & (mass[:, 1:] <= 0.05)).all()
    assert linear_momentum(vel, mass).abs().max() < 1e-12  # centre of mass at rest
    radius = (pos[:, 1:] - pos[:, :1]).norm(dim=-1)  # the star moves a little off the centre
    assert radius.min() > 0.4 and radius.max() < 2.1
    centre = (mass[..., None] * pos).sum(1) / mass.sum(1)[:, None]
    assert 0.7 < centre.std() < 1.3  # the whole system shifted by N(0, 1)
    again = sample_planetary_systems(200, 4, seed=0)
    assert all(torch.equal(a, b) for a, b in zip((pos, vel, mass), again))
    assert not torch.equal(pos, sample_planetary_systems(200, 4, seed=1)[0])


def test_dataset_targets_are_the_simulated_final_state():
    ds = PlanetaryNBodyDataset(16, planets=3, seed=2, dtype=torch.float64)
    pos, vel, mass = sample_planetary_systems(16, 3, seed=2)
    system = GravityNBody(mass, softening=SOFTENING)
    xs, vs = simulate(system, pos, vel, dt=DT, n_steps=N_STEPS, save_every=N_STEPS,
                      integrator="rk4")  # fmt: skip
    assert torch.equal(ds.target_pos, xs[:, -1]) and torch.equal(ds.target_vel, vs[:, -1])
    assert torch.equal(ds.charges[..., 0], mass) and ds.future_pos.shape == (16, 1, 4, 3)
    # RK4 at dt = 0.01 conserves the energy and the angular momentum of these orbits closely
    e0, e1 = system.energy(pos, vel), system.energy(xs[:, -1], vs[:, -1])
    assert ((e1 - e0).abs() / e0.abs()).max() < 1e-4
    l0 = angular_momentum(pos, vel, mass)
    assert (angular_momentum(xs[:, -1], vs[:, -1], mass) - l0).abs().max() < 1e-8
    item = ds[3]
    assert set(item) == {"pos", "vel", "charges", "target_pos", "target_vel"}


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="n=0"):
        sample_planetary_systems(0)
    with pytest.raises(ValueError, match="planets=0"):
        PlanetaryNBodyDataset(4, planets=0)
