"""The grid-bound baseline: periodic, sees only the observed points, learns, names bad input."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn.fields.grid_models import (
    PeriodicCNN,
    grid_rollout,
    train_grid_model,
    upsample_bilinear,
)


def test_step_is_periodic_and_sees_position():
    torch.manual_seed(0)
    model = PeriodicCNN(channels=1, width=8, depth=1)
    torch.nn.init.normal_(model.net[-1].weight)  # leave the identity start
    mask = torch.ones(12, 12, dtype=torch.bool)
    x = torch.zeros(1, 1, 12, 12)
    y = x.clone()
    y[..., 0, 5] = 1.0  # a change on the first row reaches the last row through the wrap
    d = (model(y, mask) - model(x, mask))[0, 0]
    assert d[-1, 5].abs() > 0 and d[6, 5].abs() == 0
    # coordinate channels: a constant field is updated differently at different places
    u = model(torch.ones(1, 1, 12, 12), mask)[0, 0]
    assert (u - u[0, 0]).abs().max() > 1e-3


def test_untrained_model_is_the_identity_on_observed_points():
    model = PeriodicCNN(channels=2, width=8, depth=2)
    x = torch.randn(3, 2, 8, 8)
    mask = torch.rand(8, 8, generator=torch.Generator().manual_seed(0)) < 0.5
    assert torch.equal(model(x, mask), x * mask)


def test_unobserved_points_do_not_reach_the_model():
    torch.manual_seed(0)
    model = PeriodicCNN(channels=1, width=8, depth=2)
    mask = torch.rand(8, 8) < 0.3
    x = torch.randn(1, 1, 8, 8)
    y = x.clone()
    y[..., ~mask] = 100.0  # change only what the mask hides
    assert torch.allclose(model(x, mask), model(y, mask))


def test_training_reduces_the_loss_of_a_shift_map():
    x = torch.arange(8) / 8
    t = torch.arange(5, dtype=torch.float32)
    phase = torch.rand(6, 1, 1, generator=torch.Generator().manual_seed(0))
    f = torch.sin(2 * math.pi * (x[None, None, :] - 0.125 * t[None, :, None] + phase))
    fields = f[..., None].expand(6, 5, 8, 8).unsqueeze(2).contiguous()  # shifts one cell a step
    mask = torch.ones(8, 8, dtype=torch.bool)
    torch.manual_seed(0)
    model = PeriodicCNN(channels=1, width=8, depth=2)
    before = float(((grid_rollout(model, fields[:, 0], mask, 5) - fields) ** 2).mean())
    out = train_grid_model(model, fields, mask, train_frames=5, epochs=15, batch_size=8, lr=1e-2)
    after = float(((grid_rollout(model, fields[:, 0], mask, 5) - fields) ** 2).mean())
    assert out["loss"] < 0.5 and after < 0.5 * before


def test_bilinear_upsampling_keeps_the_coarse_points():
    f = torch.randn(2, 1, 8, 8)
    fine = upsample_bilinear(f, 16)
    assert fine.shape == (2, 1, 16, 16) and torch.allclose(fine[..., ::2, ::2], f)


def test_bad_inputs_are_named():
    model = PeriodicCNN(channels=1, width=4, depth=1)
    with pytest.raises(ValueError, match="field"):
        model(torch.zeros(1, 2, 8, 8), torch.ones(8, 8, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        model(torch.zeros(1, 1, 8, 8), torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        grid_rollout(
            model, torch.full((1, 1, 8, 8), math.nan), torch.ones(8, 8, dtype=torch.bool), 2
        )
    with pytest.raises(ValueError, match="train_frames"):
        train_grid_model(model, torch.zeros(2, 3, 1, 8, 8), torch.ones(8, 8, dtype=torch.bool), 5)
