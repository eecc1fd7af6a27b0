"""The N-body task of the trainer (src/equidyn/experiments/nbody_task.py): augmentations and
the planetary data set of the GATr experiments."""

from __future__ import annotations

import pytest
import torch

from equidyn.dynamics import PlanetaryNBodyDataset
from equidyn.experiments.nbody_task import NBodyTask, evaluate
from equidyn.experiments.nbody_task import train as nb_train
from equidyn.models import EGNN, GATr, Transformer


def splits(n: int = 12, dtype: torch.dtype = torch.float64):
    return [PlanetaryNBodyDataset(n, planets=3, seed=s, dtype=dtype) for s in (1, 2, 3)]


def test_e3_augmentation_transforms_inputs_and_targets_alike():
    """For an E(3)-equivariant model the augmented loss equals the plain one (to rounding);
    for the Transformer baseline it does not: the augmentation really moves the data."""
    task = NBodyTask(*splits(), batch_size=6, augment="e3")
    plain = NBodyTask(*splits(), batch_size=6)
    batches = task.train_batches(0, torch.Generator().manual_seed(0))
    dets = torch.cat([torch.linalg.det(R) for _, R, _ in batches])
    assert (dets < 0).any() and (dets > 0).any() and all(t is not None for *_, t in batches)
    torch.manual_seed(0)
    egnn = EGNN(num_features=8, num_layers=1, node_attr_dim=0, edge_attr_dim=1).double()
    baseline = Transformer(node_attr_dim=1, num_features=8, num_layers=1, num_heads=2).double()
    egnn.requires_grad_(False)
    baseline.requires_grad_(False)
    for idx, R, t in batches:  # (no gradients needed)
        aug = task.loss(egnn, (idx, R, t))[0]
        ref = plain.loss(egnn, (idx, None, None))[0]
        assert float(aug) == pytest.approx(float(ref), rel=1e-10)
        assert abs(float(task.loss(baseline, (idx, R, t))[0])
                   - float(plain.loss(baseline, (idx, None, None))[0])) > 1e-6  # fmt: skip


def test_rotation_augmentation_keeps_its_stream_and_bad_values_fail():
    rot = NBodyTask(*splits(), batch_size=6, augment=True).train_batches(0, torch.Generator())
    assert all(torch.linalg.det(R).gt(0).all() and t is None for _, R, t in rot)
    with pytest.raises(ValueError, match="augment must be one of"):
        NBodyTask(*splits(), augment="so3")


def test_gatr_trains_on_planetary_data_with_the_shared_trainer(tmp_path):
    torch.manual_seed(0)
    model = GATr(node_attr_dim=1, num_features=2, num_scalars=4, num_layers=1, num_heads=1)
    data = splits(16, torch.float32)
    before = evaluate(model, data[2])
    state = nb_train(model, *data, epochs=4, out=tmp_path, batch_size=8, lr=3e-3, progress=False)
    assert state["epoch"] == 4 and state["best_test"] < 0.9 * before
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "log.csv").is_file()
