"""Latitude-weighted RMSE, ACC, Gaussian CRPS and NLL, mass."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn.fields.metrics import acc, gaussian_crps, gaussian_nll, lat_rmse, mass
from equidyn.fields.sphere import LatLonGrid

GRID = LatLonGrid(8, 16)


def test_rmse_weights_latitudes_by_cos():
    err = torch.zeros(8, 16)
    err[0] = 1.0  # only the southernmost row is wrong
    w0 = float(GRID.lat_weights[0])
    assert math.isclose(
        float(lat_rmse(err, torch.zeros(8, 16), GRID)), math.sqrt(w0 / 8), rel_tol=1e-6
    )
    assert w0 < 0.35  # a polar row counts little


def test_acc_is_one_for_scaled_anomalies_and_minus_one_for_flipped():
    g = torch.Generator().manual_seed(0)
    clim, anom = torch.rand(8, 16, generator=g), torch.randn(8, 16, generator=g)
    assert math.isclose(float(acc(clim + 2 * anom, clim + anom, clim, GRID)), 1.0, rel_tol=1e-5)
    assert math.isclose(float(acc(clim - anom, clim + anom, clim, GRID)), -1.0, rel_tol=1e-5)


def test_crps_matches_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mu, sd, o = (
        torch.randn(8, 16, generator=g),
        torch.rand(8, 16, generator=g) + 0.5,
        torch.randn(8, 16, generator=g),
    )
    x = mu + sd * torch.randn(4000, 8, 16, generator=g)
    x2 = mu + sd * torch.randn(4000, 8, 16, generator=g)
    mc = (x - o).abs().mean(0) - 0.5 * (x - x2).abs().mean(0)  # E|X - o| - E|X - X'| / 2
    w = GRID.lat_weights
    assert math.isclose(float(gaussian_crps(mu, sd, o, GRID)), float((w * mc).mean()), rel_tol=0.03)
    with pytest.raises(ValueError, match="std must be > 0"):
        gaussian_crps(mu, 0 * sd, o, GRID)


def test_nll_is_minimal_at_the_true_spread():
    o = torch.randn(2000, 8, 16, generator=torch.Generator().manual_seed(1))
    nll = [float(gaussian_nll(torch.zeros(8, 16), torch.full((8, 16), s), o, GRID).mean())
           for s in (0.5, 1.0, 2.0)]  # fmt: skip
    assert nll[1] < nll[0] and nll[1] < nll[2]


def test_mass_and_bad_inputs():
    assert math.isclose(float(mass(torch.ones(8, 16, dtype=torch.float64), GRID)), 4 * math.pi)
    with pytest.raises(ValueError, match=r"\(\.\.\., 8, 16\)"):
        mass(torch.ones(8, 15), GRID)
    with pytest.raises(ValueError, match="grids differ"):
        lat_rmse(torch.ones(8, 15), torch.ones(8, 16), GRID)
    with pytest.raises(ValueError, match="non-finite"):
        lat_rmse(torch.ones(8, 16), torch.full((8, 16), float("nan")), GRID)
