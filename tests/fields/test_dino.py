"""DINo: the modulated MFN, the latent ODE, auto-decoding, training, any-grid evaluation, errors."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn.fields.dino import (
    DINo,
    evaluate_dino,
    fit_codes,
    forecast_dino,
    grid_coords,
    split_mse,
    subsampling_mask,
    train_dino,
)
from equidyn.fields.pde import spectral_resample

pytest.importorskip("torchdiffeq")


def small(seed: int = 0, channels: int = 1) -> DINo:
    torch.manual_seed(seed)
    return DINo(code_dim=8, channels=channels, width=16, layers=2, hidden=32, max_frequency=2.0)


def travelling_fields(
    n: int = 4, frames: int = 6, size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth field moving at constant speed: sin 2π(x - 0.05 t + phase)."""
    x = torch.arange(size) / size
    t = torch.arange(frames, dtype=torch.float32)
    phase = torch.linspace(0, 0.5, n)
    arg = x[None, None, :, None] - 0.05 * t[None, :, None, None] + phase[:, None, None, None]
    f = torch.sin(2 * math.pi * arg).expand(n, frames, size, size).unsqueeze(2).contiguous()
    return f, t


def test_code_modulates_the_decoded_field():
    model = small()
    coords = grid_coords(8)
    a, b = torch.zeros(1, 8), torch.randn(1, 8)
    assert not torch.allclose(model.decode(coords, a), model.decode(coords, b))
    # the same code gives the same value at a point whatever the grid it sits in
    fine = model.decode(grid_coords(16), b).reshape(16, 16)
    assert torch.allclose(model.decode(coords, b).reshape(8, 8), fine[::2, ::2], atol=1e-6)


def test_ode_solve_is_differentiable():
    model = small()
    alpha0 = torch.randn(3, 8, requires_grad=True)
    codes = model.forecast(alpha0, torch.linspace(0, 2, 5))
    assert codes.shape == (3, 5, 8) and torch.allclose(codes[:, 0], alpha0)
    codes[:, -1].pow(2).sum().backward()
    assert alpha0.grad is not None and alpha0.grad.abs().sum() > 0
    grads = [p.grad for p in model.dynamics.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_auto_decoding_recovers_a_decodable_field():
    model = small()
    trainable = [p.requires_grad for p in model.parameters()]
    coords = grid_coords(16)
    target_code = 0.5 * torch.randn(2, 8)
    with torch.no_grad():
        values = model.decode(coords, target_code)
    codes = fit_codes(model, coords, values, steps=150, lr=5e-2)
    err = ((model.decode(coords, codes) - values) ** 2).mean()
    assert err < 0.05 * (values**2).mean()
    assert [p.requires_grad for p in model.parameters()] == trainable  # unfrozen afterwards


def test_training_learns_and_evaluates_on_an_unseen_finer_grid(tmp_path):
    fields, times = travelling_fields()
    mask = subsampling_mask(16, 0.25, seed=1)
    model = small()
    fit = train_dino(model, fields, times, mask, train_frames=4, epochs=80, batch_size=4,
                     points_per_frame=64, lr=1e-2, code_lr=3e-2,
                     checkpoint=tmp_path / "ckpt.pt")  # fmt: skip
    h = fit.history
    assert h[-1]["reconstruction"] < 0.2 * h[0]["reconstruction"]
    assert (tmp_path / "ckpt.pt").is_file() and fit.codes.shape == (4, 4, 8)
    metrics, pred = evaluate_dino(model, fields, times, mask, train_frames=4, steps=100)
    assert pred.shape == fields.shape and set(metrics) >= {"in_t_in_s", "out_t_out_s"}
    assert metrics["in_t_out_s"] < 0.5 * float((fields**2).mean())  # interpolates unseen points
    fine = forecast_dino(model, fields[:, 0], mask, times, out_size=32, steps=100)
    truth_fine = spectral_resample(fields, 32)
    assert fine.shape == (4, 6, 1, 32, 32)
    in_t = ((fine - truth_fine)[:, :4] ** 2).mean()  # the new grid, inside the horizon
    assert float(in_t) < 0.5 * float((truth_fine**2).mean())


def test_training_resumes_from_its_checkpoint(tmp_path):
    fields, times = travelling_fields(n=2, frames=4, size=8)
    mask = torch.ones(8, 8, dtype=torch.bool)
    kw = dict(train_frames=3, batch_size=2, points_per_frame=32, checkpoint=tmp_path / "c.pt")
    a = small(1)
    part = train_dino(a, fields, times, mask, epochs=4, epochs_per_call=2, **kw)  # cut short
    assert len(part.history) == 2
    b = small(1)
    fit_b = train_dino(b, fields, times, mask, epochs=4, **kw)  # resumes at epoch 2
    c = small(1)
    fit_c = train_dino(c, fields, times, mask, epochs=4, train_frames=3, batch_size=2,
                       points_per_frame=32)  # fmt: skip
    assert len(fit_b.history) == 4
    assert torch.allclose(fit_b.codes, fit_c.codes, atol=1e-5)


def test_split_mse_parts():
    truth = torch.zeros(1, 4, 1, 2, 2)
    pred = truth.clone()
    pred[:, :2, :, 0, 0] = 1.0  # In-t error at the observed point only
    mask = torch.tensor([[True, False], [False, False]])
    m = split_mse(pred, truth, mask, 2)
    assert m["in_t_in_s"] == 1.0 and m["in_t_out_s"] == 0.0 and m["out_t"] == 0.0
    assert math.isnan(split_mse(pred, truth, torch.ones(2, 2, dtype=torch.bool), 2)["in_t_out_s"])


def test_bad_inputs_are_named():
    model = small()
    fields, times = travelling_fields(n=2, frames=4, size=8)
    mask = torch.ones(8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match="square grid"):
        train_dino(model, fields[..., :6], times, mask, 3)
    bad = fields.clone()
    bad[0, 1, 0, 2, 2] = math.nan
    with pytest.raises(ValueError, match="NaN"):
        train_dino(model, bad, times, mask, 3)
    with pytest.raises(ValueError, match="train_frames"):
        train_dino(model, fields, times, mask, 9)  # a horizon outside the data
    with pytest.raises(ValueError, match="train_frames"):
        evaluate_dino(model, fields, times, mask, 5)
    with pytest.raises(ValueError, match="mask"):
        train_dino(model, fields, times, torch.ones(4, 4, dtype=torch.bool), 3)
    with pytest.raises(ValueError, match="channels"):
        train_dino(small(channels=2), fields, times, mask, 3)
    with pytest.raises(ValueError, match="increasing"):
        model.forecast(torch.zeros(1, 8), torch.tensor([0.0, 0.0]))
    with pytest.raises(ValueError, match="code_dim"):
        model.decode(grid_coords(4), torch.zeros(1, 5))
    with pytest.raises(ValueError, match="rate"):
        subsampling_mask(8, 0.0)
