"""Every packaged potential config loads, and the models without a training test elsewhere
train end to end through ``equidyn train``'s code path (two epochs on 24 structures)."""

from __future__ import annotations

import dataclasses
from importlib.resources import files

import pytest

from equidyn.models.potential import load_model
from equidyn.models.registry import resolve_model
from equidyn.train import load_config, run_training

PACKAGED = sorted(p.name[:-5] for p in files("equidyn").joinpath("configs").iterdir()
                  if p.name.endswith(".yaml"))  # fmt: skip


@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_config_names_a_registered_model(name):
    cfg = load_config(f"builtin:{name}")
    cls = resolve_model(cfg.model_class, "potential")
    assert cls(**{**cfg.model, "num_species": 2}).r_max == cfg.model["r_max"]


@pytest.mark.parametrize("name", ["escn", "allegro"])
def test_small_run_of_a_packaged_config(name, cache_dir, tmp_path):
    cfg = load_config(f"builtin:{name}")
    small = {
        "escn": {"num_features": 4, "l_max": 2, "m_max": 1},
        "allegro": {"num_tensor_features": 4, "l_max": 1, "latent_dim": 16,
                    "two_body_hidden": [16], "latent_hidden": [16], "edge_energy_hidden": [8]},
    }[name]  # fmt: skip
    cfg = dataclasses.replace(
        cfg,
        model={**cfg.model, **small},
        data=dataclasses.replace(cfg.data, n_structures=24, n_train=14, n_val=4, n_test=6,
                                 cache_dir=str(cache_dir)),
        training=dataclasses.replace(cfg.training, epochs=2, batch_size=7, progress=False,
                                     output_dir=str(tmp_path / name)),
    )  # fmt: skip
    summary, metrics = run_training(cfg, verbose=False)
    assert metrics is not None and metrics["forces_mae"] > 0
    pot = load_model(tmp_path / name / "model.pt")
    assert type(pot.model).__name__ == cfg.model_class
