"""Transition path sampling: the Müller–Brown surface, the Gaussian path marginal, Doob's
Lagrangian and the two-way shooting baseline."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn.paths import (
    GaussianPathMarginal,
    MullerBrown,
    OverdampedLangevin,
    doob_lagrangian,
    fit_doob,
    path_statistics,
    sample_paths,
    two_way_shooting,
)

F64 = torch.float64
SADDLE_BARRIER = -40.66 - (-146.70)  # the lower of the two saddles on the way A -> C -> B


@pytest.fixture
def mb():
    return MullerBrown()


def _perturbed(q: GaussianPathMarginal, seed: int = 0) -> GaussianPathMarginal:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in q.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
    return q


# --- the potential --------------------------------------------------------------------------


def test_muller_brown_minima_are_stationary_with_the_known_energies(mb):
    for name, energy in (("minimum_a", -146.6995), ("minimum_b", -108.1667)):
        x = getattr(mb, name).clone().requires_grad_()
        (grad,) = torch.autograd.grad(mb(x), x)
        assert grad.abs().max() < 1e-3
        assert float(mb(x).detach()) == pytest.approx(energy, abs=1e-3)
    assert float(mb(mb.minimum_c)) == pytest.approx(-80.7678, abs=1e-3)


def test_muller_brown_follows_dtype_and_rejects_bad_shapes(mb):
    assert mb(torch.zeros(3, 2, dtype=torch.float32)).dtype == torch.float32
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        mb(torch.zeros(4, 3))


# --- the dynamics ---------------------------------------------------------------------------


def test_path_log_likelihood_is_the_sum_of_gaussian_steps(mb):
    dyn = OverdampedLangevin(mb, kT=10.0, gamma=2.0)
    g = torch.Generator().manual_seed(0)
    path = dyn.simulate(mb.minimum_a.expand(3, 2), n_steps=5, dt=1e-4, generator=g)
    expected = torch.zeros(3, dtype=F64)
    for i in range(5):
        mean = path[i] + dyn.drift(path[i]) * 1e-4
        std = math.sqrt(2 * dyn.diffusion * 1e-4)
        expected += torch.distributions.Normal(mean, std).log_prob(path[i + 1]).sum(-1)
    assert torch.allclose(dyn.path_log_likelihood(path, 1e-4), expected, rtol=1e-12)


def test_dynamics_count_every_gradient_and_check_their_arguments(mb):
    dyn = OverdampedLangevin(mb, kT=5.0)
    dyn.simulate(torch.zeros(7, 2, dtype=F64), n_steps=3, dt=1e-4)
    assert dyn.evaluations == 21
    with pytest.raises(ValueError, match="kT"):
        OverdampedLangevin(mb, kT=0.0)
    with pytest.raises(ValueError, match="gamma"):
        OverdampedLangevin(mb, kT=1.0, gamma=float("nan"))
    with pytest.raises(ValueError, match="n_steps"):
        dyn.simulate(torch.zeros(2, dtype=F64), n_steps=0, dt=1e-4)
    with pytest.raises(ValueError, match="dt"):
        dyn.simulate(torch.zeros(2, dtype=F64), n_steps=2, dt=-1.0)


# --- the path marginal ----------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_the_marginal_meets_both_ends_exactly(mb, k):
    a, b = mb.minimum_a, mb.minimum_b
    q = _perturbed(GaussianPathMarginal(a, b, 0.05, 10.0, num_components=k, spread=0.5))
    mu, sigma, _, _ = q.mean_std(torch.tensor([0.0, 0.05], dtype=F64))
    assert torch.equal(mu[0], a.expand(k, 2)) and torch.equal(mu[1], b.expand(k, 2))
    assert torch.equal(sigma, torch.zeros(2, k, dtype=F64))
    mid = q.mean_std(torch.tensor([0.025], dtype=F64))[1]
    assert bool((mid > 0).all())


def test_time_derivatives_match_finite_differences(mb):
    q = _perturbed(GaussianPathMarginal(mb.minimum_a, mb.minimum_b, 0.05, 10.0, 2, spread=0.5))
    t = torch.tensor([0.004, 0.02, 0.041], dtype=F64)
    mu, sigma, dmu, dsigma = q.mean_std(t)
    h = 1e-7
    mu_p, s_p = q((t + h) / q.duration)
    mu_m, s_m = q((t - h) / q.duration)
    assert torch.allclose(dmu, (mu_p - mu_m) / (2 * h), rtol=1e-6, atol=1e-6)
    assert torch.allclose(dsigma, (s_p - s_m) / (2 * h), rtol=1e-6, atol=1e-6)


def test_brownian_bridge_drift_at_initialisation():
    """With f = g = 0 the marginal is the Brownian bridge, whose drift is (B - x)/(T - t)."""
    a, b = torch.zeros(2, dtype=F64), torch.tensor([1.0, -2.0], dtype=F64)
    q = GaussianPathMarginal(a, b, duration=2.0, diffusion=0.3)
    with torch.no_grad():
        q.net[-1].weight.zero_()
    t = torch.tensor([0.1, 1.0, 1.9], dtype=F64)
    x = torch.randn(3, 2, dtype=F64)
    expected = (b - x) / (2.0 - t)[:, None]
    assert torch.allclose(q.drift(x, t), expected, atol=1e-12)


def test_the_drift_solves_the_fokker_planck_equation_of_the_mixture(mb):
    """dq/dt = -div(q u) + D lap q at random points, for a trained-looking 2-component mixture."""
    q = _perturbed(GaussianPathMarginal(mb.minimum_a, mb.minimum_b, 0.05, 10.0, 2, spread=0.5))
    g = torch.Generator().manual_seed(1)
    t = torch.full((6,), 0.02, dtype=F64)
    mu = q.mean_std(t)[0]
    x = mu[:, 0] + 0.05 * torch.randn(6, 2, generator=g, dtype=F64)
    h, ht = 1e-4, 1e-7

    def density(x_, t_):
        return q.log_density(x_, t_).exp()

    dq_dt = (density(x, t + ht) - density(x, t - ht)) / (2 * ht)
    div, lap = torch.zeros(6, dtype=F64), torch.zeros(6, dtype=F64)
    for i in range(2):
        e = torch.zeros(2, dtype=F64)
        e[i] = h
        flux_p = density(x + e, t) * q.drift(x + e, t)[:, i]
        flux_m = density(x - e, t) * q.drift(x - e, t)[:, i]
        div += (flux_p - flux_m) / (2 * h)
        lap += (density(x + e, t) - 2 * density(x, t) + density(x - e, t)) / h**2
    residual = dq_dt + div - q.diffusion * lap
    scale = dq_dt.abs().max() + div.abs().max()
    assert float(residual.abs().max() / scale) < 1e-4


def test_marginal_rejects_bad_arguments(mb):
    a, b = mb.minimum_a, mb.minimum_b
    with pytest.raises(ValueError, match="start and end"):
        GaussianPathMarginal(a, torch.zeros(3, dtype=F64), 1.0, 1.0)
    with pytest.raises(ValueError, match="duration"):
        GaussianPathMarginal(a, b, 0.0, 1.0)
    with pytest.raises(ValueError, match="num_components"):
        GaussianPathMarginal(a, b, 1.0, 1.0, num_components=0)
    q = GaussianPathMarginal(a, b, 1.0, 1.0)
    with pytest.raises(ValueError, match="times must lie"):
        q.mean_std(torch.tensor([1.5], dtype=F64))
    with pytest.raises(ValueError, match="x must be"):
        q.drift(torch.zeros(2, 3, dtype=F64), torch.tensor([0.5, 0.5], dtype=F64))


# --- Doob's Lagrangian ----------------------------------------------------------------------


def test_doob_loss_is_finite_and_decreases_on_muller_brown(mb):
    torch.manual_seed(0)
    dyn = OverdampedLangevin(mb, kT=10.0)
    q = GaussianPathMarginal(mb.minimum_a, mb.minimum_b, duration=0.05, diffusion=10.0)
    history = fit_doob(q, dyn, steps=120, batch_size=64, lr=1e-2, seed=0)
    loss = torch.tensor(history["loss"])
    assert bool(torch.isfinite(loss).all())
    assert float(loss[-20:].mean()) < 0.7 * float(loss[:20].mean())
    assert history["evaluations"] == 120 * 64 == dyn.evaluations
    paths = sample_paths(q, n_paths=16, n_steps=100, generator=torch.Generator().manual_seed(0))
    assert paths.shape == (101, 16, 2)
    assert torch.equal(paths[0], mb.minimum_a.expand(16, 2))
    assert torch.equal(paths[-1], mb.minimum_b.expand(16, 2))
    assert dyn.evaluations == 120 * 64  # sampling costs no energy


def test_doob_loss_checks_that_marginal_and_dynamics_agree(mb):
    dyn = OverdampedLangevin(mb, kT=10.0)
    q = GaussianPathMarginal(mb.minimum_a, mb.minimum_b, duration=0.05, diffusion=5.0)
    with pytest.raises(ValueError, match="diffusion"):
        doob_lagrangian(q, dyn)
    q = GaussianPathMarginal(mb.minimum_a, mb.minimum_b, duration=0.05, diffusion=10.0)
    with pytest.raises(ValueError, match="batch_size"):
        doob_lagrangian(q, dyn, batch_size=0)


# --- two-way shooting -----------------------------------------------------------------------


def test_shooting_finds_the_known_transition_through_the_middle_basin(mb):
    """From a straight line (not a trajectory), shooting finds real A -> B paths: they start
    in A, end in B, cross at least the saddle barrier, and pass the middle minimum C."""
    dyn = OverdampedLangevin(mb, kT=10.0)
    a, b = mb.minimum_a, mb.minimum_b
    line = torch.stack([a + (b - a) * s for s in torch.linspace(0, 1, 401, dtype=F64)])
    out = two_way_shooting(dyn, line, n_shots=60, dt=1e-4, basin_radius=0.25, seed=0)
    assert out["evaluations"] == 60 * 400 == dyn.evaluations
    assert sum(out["accepted"]) >= 1
    assert len(out["evaluations_at_accept"]) == sum(out["accepted"])
    for path in out["paths"][1:]:
        assert float((path[0] - a).norm()) < 0.25 and float((path[-1] - b).norm()) < 0.25
        # a real path in 1e-4 steps: no frame-to-frame jump is larger than thermal noise allows
        assert float((path[1:] - path[:-1]).norm(dim=-1).max()) < 0.2
        assert float((path - mb.minimum_c).norm(dim=-1).min()) < 0.3
    stats = path_statistics(dyn, out["paths"][1:].transpose(0, 1), dt=1e-4)
    assert stats["min_max_energy"] > SADDLE_BARRIER - 5.0
    assert dyn.evaluations == 60 * 400  # measuring is not counted


def test_shooting_checks_its_arguments(mb):
    dyn = OverdampedLangevin(mb, kT=10.0)
    with pytest.raises(ValueError, match="initial_path"):
        two_way_shooting(dyn, torch.zeros(2, 2, dtype=F64), 1, 1e-4, 0.2)
    with pytest.raises(ValueError, match="n_shots"):
        two_way_shooting(dyn, torch.zeros(5, 2, dtype=F64), 0, 1e-4, 0.2)
    with pytest.raises(ValueError, match="basin_radius"):
        two_way_shooting(dyn, torch.zeros(5, 2, dtype=F64), 1, 1e-4, 0.0)
