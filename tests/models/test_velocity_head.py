"""The velocity head (``predict_velocity=True``, :meth:`forward_state`) of the steerable
dynamics models: the predicted velocities are E(3) and permutation equivariant, the head
starts as the identity step and round-trips through a state dict, and training both outputs
lowers the loss."""

from __future__ import annotations

import pytest
import torch
from particle_checks import (
    check_state_equivariance,
    check_state_init,
    check_state_training_lowers_loss,
)

from equidyn.models import SEGNN, TFN, SE3Transformer

MODELS = {
    "segnn": lambda flag: SEGNN(8, 1, 0, 1, predict_velocity=flag),
    "tfn": lambda flag: TFN(8, 1, 0, 1, predict_velocity=flag),
    "se3_transformer": lambda flag: SE3Transformer(8, 1, 0, 1, num_heads=2, predict_velocity=flag),
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", MODELS)
def test_forward_state_equivariance(name, dtype):
    torch.manual_seed(0)
    errors = check_state_equivariance(MODELS[name](True), dtype)
    assert max(errors.values()) < (1e-10 if dtype == torch.float64 else 1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_forward_state_init_and_state_dict(name):
    check_state_init(MODELS[name])


@pytest.mark.parametrize("name", MODELS)
def test_forward_state_training_lowers_loss(name):
    torch.manual_seed(0)
    check_state_training_lowers_loss(MODELS[name](True))
