"""Cached N-body data (src/equidyn/dynamics/data.py): cache location, atomic writes, Dataset."""

from __future__ import annotations

import pytest
import torch

from equidyn.dynamics import data as nbody_data
from equidyn.dynamics.data import ChargedNBodyDataset, cache_dir, load_charged_nbody


@pytest.fixture
def tiny_splits(monkeypatch):
    # 4 and 3 trajectories, 4200 steps: frames 0 .. 40 (step 4100), enough for 30 -> 40
    monkeypatch.setitem(nbody_data.SPLITS, "train", (4, 0, 4200))
    monkeypatch.setitem(nbody_data.SPLITS, "valid", (3, 1, 4200))


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("EQUIDYN_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("EQUIDYN_CACHE")
    assert cache_dir().name == "equidyn"


def test_generated_once_then_loaded(tiny_splits, tmp_path, monkeypatch):
    monkeypatch.setenv("EQUIDYN_CACHE", str(tmp_path))
    d = load_charged_nbody("train")
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt"  # no temporary file left behind
    assert d["pos"].shape == (4, 41, 5, 3)

    def fail(*a, **k):
        raise AssertionError("should have been loaded from the cache")

    monkeypatch.setattr(nbody_data, "simulate_charged_nbody", fail)
    d2 = load_charged_nbody("train")
    assert torch.equal(d["pos"], d2["pos"])


def test_dataset_items_and_sizes(tiny_splits, tmp_path):
    ds = ChargedNBodyDataset("train", size=3, cache=tmp_path)
    raw = load_charged_nbody("train", cache=tmp_path)
    assert len(ds) == 3 and ds.pos.dtype == torch.float32
    item = ds[1]
    assert item["pos"].shape == (5, 3) and item["charges"].shape == (5, 1)
    torch.testing.assert_close(item["pos"], raw["pos"][1, 30].float())
    torch.testing.assert_close(item["target_pos"], raw["pos"][1, 40].float())
    every = ChargedNBodyDataset("train", size=2, all_starts=True, cache=tmp_path)
    assert len(every) == 2 * (41 - 10)
    with pytest.raises(ValueError, match="size must be in 1..4"):
        ChargedNBodyDataset("train", size=5, cache=tmp_path)
    with pytest.raises(ValueError, match="frame_in < frame_out"):
        ChargedNBodyDataset("train", frame_in=30, frame_out=45, cache=tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        load_charged_nbody("training", cache=tmp_path)


def test_unrolled_targets(tiny_splits, tmp_path):
    raw = load_charged_nbody("train", cache=tmp_path)
    ds = ChargedNBodyDataset("train", size=2, frame_in=10, frame_out=20, unroll=3, cache=tmp_path)
    assert ds.future_pos.shape == (2, 3, 5, 3) and ds.future_vel.shape == (2, 3, 5, 3)
    torch.testing.assert_close(ds.future_pos[1, 2], raw["pos"][1, 40].float())
    torch.testing.assert_close(ds.future_vel[0, 1], raw["vel"][0, 30].float())
    torch.testing.assert_close(ds.target_pos, ds.future_pos[:, 0])
    every = ChargedNBodyDataset("train", size=2, all_starts=True, unroll=2, cache=tmp_path)
    assert len(every) == 2 * (41 - 20)
    torch.testing.assert_close(every.future_pos[-1, 1], raw["pos"][1, 40].float())
    with pytest.raises(ValueError, match="unroll must be >= 1"):
        ChargedNBodyDataset("train", frame_in=30, frame_out=40, unroll=2, cache=tmp_path)
