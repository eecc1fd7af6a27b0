"""Training loop: loss goes down, exact resume after an interruption, CLI train/evaluate."""

from __future__ import annotations

import dataclasses

import pair_model  # noqa: F401  (registers PairModel)
import pytest
import torch
import yaml

from equidyn.models.potential import load_model
from equidyn.train.checkpoint import load_checkpoint
from equidyn.train.cli import evaluate_main, train_main
from equidyn.train.config import Config, TrainingConfig, load_config
from equidyn.train.logging import read_csv_log
from equidyn.train.potential_task import evaluate_potential, potential_trainer
from equidyn.train.trainer import build_potential


def _trainer(graphs, out, **kw):
    torch.manual_seed(0)
    pot = build_potential("PairModel", {"r_max": 3.5}, graphs[:16])
    cfg = TrainingConfig(
        **{"epochs": 3, "batch_size": 5, "lr": 0.05, "output_dir": str(out), "progress": False,
           "plots": False, "log_epochs": False, **kw},
    )  # fmt: skip
    return potential_trainer(pot, graphs[:16], graphs[16:20], cfg, test_graphs=graphs[20:])


def test_training_lowers_the_loss(small_set, tmp_path):
    t = _trainer(small_set, tmp_path, epochs=6)
    task = t.task
    before = evaluate_potential(t.model, task.train_graphs, weights=task.weights)["loss"]
    summary = t.fit()
    after = evaluate_potential(task.best_potential(), task.train_graphs, weights=task.weights)
    after = after["loss"]
    assert summary["epochs"] == 6 and summary["stop_reason"] == "finished 6 epochs"
    assert after < 0.9 * before
    rows = read_csv_log(tmp_path / "log.csv")
    assert [r["epoch"] for r in rows] == list(range(1, 7))
    assert {"val_forces_mae", "val_energy_mae", "lr"} <= set(rows[0])


def test_resume_after_interruption_is_exact(small_set, tmp_path):
    # uninterrupted reference: 3 epochs of 4 steps
    ref = _trainer(small_set, tmp_path / "ref")
    ref.fit()
    # interrupted in the middle of epoch 2 (like Ctrl-C), then resumed by a fresh trainer
    run = _trainer(small_set, tmp_path / "run")
    run.step_callback = lambda trainer, step: trainer.request_stop() if step == 6 else None
    summary = run.fit()
    assert summary["stop_reason"].startswith("interrupted in epoch 2 after step 2")
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 2, 6)
    resumed = _trainer(small_set, tmp_path / "run")  # different fresh weights are overwritten
    resumed.fit(resume=True)
    assert resumed.epoch == 3 and resumed.global_step == ref.global_step == 12
    for (k, a), b in zip(ref.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    for a, b in zip(ref.ema.shadow, resumed.ema.shadow):
        assert torch.equal(a, b)
    rows_ref = read_csv_log(tmp_path / "ref" / "log.csv")
    rows_run = read_csv_log(tmp_path / "run" / "log.csv")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]
    assert strip(rows_ref) == strip(rows_run)


def test_early_stopping_and_time_limit(small_set, tmp_path):
    t = _trainer(small_set, tmp_path / "a", epochs=50, lr=1e-12, early_stopping_patience=2)
    assert t.fit()["stop_reason"].startswith("early stopping")
    t = _trainer(small_set, tmp_path / "b", epochs=50, max_time_s=0.0)
    s = t.fit()
    assert s["epochs"] == 1 and s["stop_reason"].startswith("time limit")


def test_config_maps_keys_one_to_one(tmp_path):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epochz'\] in section 'training'"):
        Config.from_dict({"training": {"epochz": 3}})
    with pytest.raises(ValueError, match="unknown section"):
        Config.from_dict({"optimizer": {}})
    cfg = load_config("builtin:quickstart")
    assert cfg.model_class == "NequIP" and cfg.training.epochs > 0
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


def test_cli_train_then_evaluate(small_set, cache_dir, tmp_path, capsys):
    from equidyn.data.io import write_structures

    out = tmp_path / "cli-run"
    config = {
        "model_class": "PairModel",
        "model": {"r_max": 3.5},
        "data": {"source": "builtin:cuau-emt", "n_structures": 24, "n_train": 14, "n_val": 4,
                 "n_test": 6, "cache_dir": str(cache_dir)},
        "training": {"epochs": 2, "batch_size": 7, "output_dir": str(out), "progress": False},
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert train_main([str(path)]) == 0
    text = capsys.readouterr().out
    assert "forces (meV/Å)" in text and "model:" in text
    for name in ("model.pt", "checkpoint.pt", "log.csv", "config.yaml", "test_metrics.json",
                 "plots/loss.png", "plots/force_parity.png"):  # fmt: skip
        assert (out / name).is_file(), name
    pot = load_model(out / "model.pt")
    assert type(pot.model).__name__ == "PairModel"
    # evaluate on an extxyz file
    data = tmp_path / "data.extxyz"
    write_structures(small_set[:5], data)
    assert evaluate_main([str(out / "model.pt"), str(data)]) == 0
    text = capsys.readouterr().out
    assert "energy (meV/atom)" in text and "forces (meV/Å)" in text
    # an unknown species is named with the file and the structure
    bad = dataclasses.replace(small_set[2], atomic_numbers=small_set[2].atomic_numbers.clone())
    bad.atomic_numbers[0] = 47
    write_structures([small_set[0], bad], data)
    assert evaluate_main([str(out / "model.pt"), str(data)]) == 1
    err = capsys.readouterr().err
    assert "structure 1" in err and "Ag" in err
    assert evaluate_main([str(out / "model.pt"), str(tmp_path / "nope.xyz")]) == 1
