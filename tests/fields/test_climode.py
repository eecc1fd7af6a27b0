"""ClimODE: shapes, exact mass conservation of its ODE, differentiability, the velocity fit,
training with the one Trainer, the baselines, and clear errors on bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn.fields.climode import ClimODE, fit_velocity, position_time_embedding
from equidyn.fields.sphere import LatLonGrid
from equidyn.fields.tracers import tracer_dataset
from equidyn.fields.weather_baselines import ARResNet, Climatology, Persistence
from equidyn.fields.weather_task import WeatherForecastTask
from equidyn.train.config import TrainingConfig
from equidyn.train.trainer import Trainer

GRID = LatLonGrid(8, 16)


def _model(**kw) -> ClimODE:
    torch.manual_seed(0)
    return ClimODE(n_vars=2, grid=GRID, steps_per_year=16, width=8, **kw)


def _inputs(B: int = 2, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    u0 = (1 + torch.rand(B, 2, 8, 16, generator=g)).to(dtype)
    v0 = (0.05 * torch.randn(B, 4, 8, 16, generator=g)).to(dtype)
    return u0, v0, torch.arange(B, dtype=dtype)


@pytest.mark.parametrize("method", ["euler", "rk4"])
def test_forecast_shapes_and_positive_std(method):
    model = _model(method=method)
    u0, v0, t0 = _inputs()
    mean, std = model(u0[:, None], v0, t0, 3)
    assert mean.shape == std.shape == (2, 3, 2, 8, 16)
    assert torch.isfinite(mean).all() and bool((std > 0).all())


def test_the_ode_conserves_total_mass_without_sources():
    model = _model(method="rk4").double()
    with torch.no_grad():  # a strong, varied flow so that the fields really move
        model.flow.local_out.conv.weight.normal_(0, 0.3)
    u0, v0, t0 = _inputs(dtype=torch.float64)
    with torch.no_grad():
        _, _, u = model.forecast(u0, 3 * v0, t0, 4)
    m0 = GRID.total(u0)  # [B, K]
    m = GRID.total(u)  # [B, 4, K]
    assert float((u - u0[:, None]).detach().abs().max()) > 1e-2  # it moved
    assert float(((m - m0[:, None]) / m0[:, None]).abs().max()) < 1e-12


def test_the_ode_solve_is_differentiable():
    model = _model(scheme="centred").double()
    u0, v0, t0 = _inputs(1, torch.float64)
    u0.requires_grad_(True)
    mean, std = model(u0[:, None], v0, t0, 2)
    (mean.square().mean() + std.mean()).backward()
    grads = [p.grad for p in model.flow.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert float(model.flow.local_out.conv.weight.grad.abs().sum()) > 0  # through the ODE
    assert float(u0.grad.abs().sum()) > 0
    small = ClimODE(1, LatLonGrid(4, 8), width=2, scheme="centred").double()
    x = (1 + torch.rand(1, 1, 4, 8, dtype=torch.float64)).requires_grad_(True)
    v = 0.05 * torch.randn(1, 2, 4, 8, dtype=torch.float64)
    t = torch.zeros(1, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: small.forecast(a, v, t, 1)[2], (x,), fast_mode=True)


def test_float64_follows_to():
    model = _model().double()
    u0, v0, t0 = _inputs(dtype=torch.float64)
    assert model(u0[:, None], v0, t0, 1)[0].dtype == torch.float64


def test_bad_inputs_give_clear_errors():
    model = _model()
    u0, v0, t0 = _inputs()
    with pytest.raises(ValueError, match=r"u0 must be \[B, 2, 8, 16\]"):
        model(torch.ones(2, 1, 2, 8, 15), v0, t0, 1)
    with pytest.raises(ValueError, match="v0 must be"):
        model(u0[:, None], v0[:, :2], t0, 1)
    bad = u0.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="u0 has non-finite"):
        model(bad[:, None], v0, t0, 1)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        model(u0[:, None], v0, t0, 0)
    with pytest.raises(ValueError, match="method must be"):
        ClimODE(2, GRID, method="dopri5")
    with pytest.raises(ValueError, match="step_size"):
        ClimODE(2, GRID, step_size=0.3)
    with pytest.raises(ValueError, match="history must be"):
        fit_velocity(torch.ones(1, 1, 2, 8, 16), GRID)
    with pytest.raises(ValueError, match="non-finite"):
        fit_velocity(torch.full((1, 3, 2, 8, 16), float("nan")), GRID)


def test_fit_velocity_recovers_a_zonal_drift_and_a_meridional_one():
    lat, lon = GRID.lat[:, None].float(), GRID.lon[None, :].float()
    frames = torch.stack([2 + torch.cos(lon - 0.08 * k) + 0 * lat for k in range(3)])
    rates = fit_velocity(frames[None, :, None], GRID, iterations=200)
    assert math.isclose(float(rates[0, 0, 2:6].mean()), 0.08, rel_tol=0.1)
    assert float(rates[0, 1, 2:6].abs().mean()) < 0.01


def test_embedding_shape_and_periods():
    e = position_time_embedding(torch.tensor([0.0, 4.0, 16.0]), GRID, 16)
    assert e.shape == (3, 8, 8, 16)
    assert torch.allclose(e[0, :2], e[1, :2], atol=1e-6)  # one day later: same time of day
    assert torch.allclose(e[0], e[2], atol=1e-5)  # one year later


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    data = tracer_dataset(steps_per_year=10, years=3, spinup=2,
                          cache_dir=tmp_path_factory.mktemp("c"))  # fmt: skip
    return WeatherForecastTask(data, train_steps=2, eval_steps=4, eval_stride=3, batch_size=2,
                               batches_per_epoch=2, fit_iterations=5)  # fmt: skip


@pytest.mark.parametrize("name", ["ClimODE", "ARResNet"])
def test_training_with_the_trainer(task, name, tmp_path):
    torch.manual_seed(0)
    grid = task.grid
    model = ClimODE(3, grid, 10, width=4) if name == "ClimODE" else ARResNet(3, grid, 10, width=4)
    model.set_normalisation(task.frames[task.data.split_slices["train"]])
    before = [p.detach().clone() for p in model.parameters()]
    cfg = TrainingConfig(epochs=2, lr=3e-3, ema_decay=None, schedule="constant",
                         output_dir=str(tmp_path), progress=False, log_epochs=False,
                         plots=False)  # fmt: skip
    summary = Trainer(model, task, cfg).fit()
    assert summary["epochs"] == 2 and math.isfinite(summary["best_val_loss"])
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))  # it learned
    s = task.scores(model, "test")
    assert s["rmse"].shape == s["acc"].shape == (4, 3)
    assert ("crps" in s) == (name == "ClimODE") and ("ode_mass_drift" in s) == (name == "ClimODE")
    if name == "ClimODE":
        assert float(s["ode_mass_drift"].max()) < 1e-5  # float32 round-off only


def test_baselines(task):
    p = task.scores(Persistence(3, task.grid), "test")
    c = task.scores(Climatology(task.clim), "test")
    assert float(p["mass_drift"].max()) == 0.0
    assert bool((p["rmse"][0] < c["rmse"][0]).all())  # 6 h persistence beats climatology
    assert float(c["acc"].abs().max()) == 0.0  # its anomalies are zero


def test_horizon_outside_the_data(task):
    with pytest.raises(ValueError, match="too short"):
        WeatherForecastTask(task.data, eval_steps=20, velocities=False)
    with pytest.raises(ValueError, match="past the data's last frame"):
        task.batch("test", torch.tensor([len(task.starts["test"]) - 1]), 50)
    with pytest.raises(ValueError, match="unknown split"):
        task.batch("2019", torch.tensor([0]), 1)
