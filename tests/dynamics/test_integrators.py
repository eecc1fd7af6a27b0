"""Integrators (src/equidyn/dynamics/integrators.py): order of accuracy, conservation, errors."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn.dynamics.integrators import INTEGRATORS, integrate
from equidyn.dynamics.systems import (
    ChargedNBody,
    GravityNBody,
    angular_momentum,
    linear_momentum,
    sample_gravity,
)

ORDER = {"semi_implicit_euler": 1, "velocity_verlet": 2, "rk4": 4}


def _final(name: str, dt: float, system: GravityNBody, x0, v0, t_end: float = 0.5):
    n = round(t_end / dt)
    xs, vs = integrate(x0, v0, system.acceleration, dt, n, save_every=n, integrator=name)
    return xs[-1], vs[-1]


@pytest.mark.parametrize("name", sorted(ORDER))
def test_global_error_order_by_halving_dt(name):
    # smooth (softened) gravity: the global error must shrink by 2**order when dt halves
    system, x0, v0 = sample_gravity(4, 4, seed=1, softening=0.5)
    ref, _ = _final("rk4", 2.5e-3, system, x0, v0)
    dt = 0.02 if name == "rk4" else 0.01
    e1 = (_final(name, dt, system, x0, v0)[0] - ref).abs().max().item()
    e2 = (_final(name, dt / 2, system, x0, v0)[0] - ref).abs().max().item()
    order = math.log2(e1 / e2)
    assert abs(order - ORDER[name]) < 0.35, (name, e1, e2, order)


@pytest.mark.parametrize("name", sorted(ORDER))
def test_charged_energy_and_momentum_without_clamp(name):
    # unclamped Coulomb forces: energy conserved to the integrator's order, P and L exactly
    g = torch.Generator().manual_seed(3)
    q = torch.tensor([[1.0, -1.0, 1.0, -1.0]], dtype=torch.float64)
    x0 = 2.0 * torch.randn(1, 4, 3, generator=g, dtype=torch.float64)
    v0 = 0.2 * torch.randn(1, 4, 3, generator=g, dtype=torch.float64)
    system = ChargedNBody(q, clamp=None)
    e0 = system.energy(x0, v0)

    def drift(dt: float) -> float:
        n = round(0.4 / dt)
        xs, vs = integrate(x0, v0, system.acceleration, dt, n, save_every=1, integrator=name)
        p = linear_momentum(vs)
        assert (p - linear_momentum(v0)).abs().max() < 1e-12
        # L is quadratic: exact for the symplectic methods, to the method's order for RK4
        l_tol = 1e-8 if name == "rk4" else 1e-11
        assert (angular_momentum(xs, vs) - angular_momentum(x0, v0)).abs().max() < l_tol
        return (system.energy(xs.flatten(0, 1), vs.flatten(0, 1)) - e0).abs().max().item()

    dt = 0.02 if name == "rk4" else 0.004
    d1, d2 = drift(dt), drift(dt / 2)
    assert d1 < 0.05
    # symplectic methods: bounded energy error of order dt^p; rk4: dt^4
    assert math.log2(d1 / d2) > ORDER[name] - 0.5, (name, d1, d2)


def test_integrate_saves_and_validates():
    xs, vs = integrate(torch.zeros(3), torch.ones(3), lambda x, v: 0 * x, 0.1, 10, save_every=5)
    assert xs.shape == (2, 3) and torch.allclose(xs[-1], torch.ones(3))
    with pytest.raises(ValueError, match="unknown integrator"):
        integrate(torch.zeros(3), torch.ones(3), lambda x, v: x, 0.1, 1, integrator="leapfrogg")
    with pytest.raises(ValueError, match="same shape"):
        integrate(torch.zeros(3), torch.ones(2), lambda x, v: x, 0.1, 1)
    with pytest.raises(ValueError, match="save_every"):
        integrate(torch.zeros(3), torch.ones(3), lambda x, v: x, 0.1, 1, save_every=0)
    assert set(INTEGRATORS) == set(ORDER)
