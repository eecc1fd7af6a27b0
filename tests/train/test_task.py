"""The task-agnostic Trainer: exact resume of generator-drawn batches, Ctrl-C, schedules."""

from __future__ import annotations

import math
import os
import signal

import pytest
import torch

from equidyn.train.config import TrainingConfig
from equidyn.train.logging import read_csv_log
from equidyn.train.potential_task import PotentialTask
from equidyn.train.task import RegressionTask, Task
from equidyn.train.trainer import Trainer


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = x @ torch.randn(3, 2, generator=g, dtype=torch.float64)
    return x, y


def _trainer(out, step_callback=None, **kw):
    x, y = _data()
    task = RegressionTask((x[:30], y[:30]), (x[30:], y[30:]), batch_size=7, test=(x, y))
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()
    settings = {"epochs": 4, "lr": 0.05, "amsgrad": False, "ema_decay": 0.9, "seed": 3,
                "output_dir": str(out), "progress": False, "log_epochs": False, **kw}  # fmt: skip
    return Trainer(model, task, TrainingConfig(**settings), step_callback=step_callback)


def test_tasks_satisfy_the_protocol(tmp_path, small_set):
    x, y = _data()  # (mypy checks NBodyTask where experiments.nbody_task hands it to Trainer)
    assert isinstance(RegressionTask((x, y), (x, y)), Task)
    assert isinstance(PotentialTask(small_set[:4], small_set[4:6], TrainingConfig()), Task)
    with pytest.raises(ValueError, match="schedule must be one of"):
        _trainer(tmp_path, schedule="linear")
    with pytest.raises(ValueError, match="eval_every must be >= 1, got 0"):
        _trainer(tmp_path, eval_every=0)
    with pytest.raises(ValueError, match="4 inputs and 3 targets"):
        RegressionTask((x[:4], y[:3]), (x, y))


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_ctrl_c_mid_epoch_then_resume_is_exact(tmp_path, schedule):
    ref = _trainer(tmp_path / "ref", schedule=schedule)
    ref.fit()

    def ctrl_c(trainer, step):  # a real SIGINT, in the middle of epoch 2 (5 steps per epoch)
        if step == 7:
            os.kill(os.getpid(), signal.SIGINT)

    run = _trainer(tmp_path / "run", step_callback=ctrl_c, schedule=schedule)
    handler = signal.getsignal(signal.SIGINT)
    summary = run.fit()
    assert summary["stop_reason"].startswith("interrupted in epoch 2 after step 2")
    assert signal.getsignal(signal.SIGINT) is handler  # restored
    resumed = _trainer(tmp_path / "run", schedule=schedule)
    resumed.fit(resume=True)
    assert resumed.global_step == ref.global_step == 20
    for a, b in zip(ref.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(ref.generator.get_state(), resumed.generator.get_state())
    assert ref.best_metrics == resumed.best_metrics and "test" in ref.best_metrics
    assert read_csv_log(tmp_path / "ref" / "log.csv") == read_csv_log(tmp_path / "run" / "log.csv")


def test_cosine_schedule_eval_every_and_best_weights(tmp_path):
    t = _trainer(tmp_path, epochs=5, schedule="cosine", eval_every=2, ema_decay=None)
    t.fit()
    rows = read_csv_log(tmp_path / "log.csv")
    assert [r["epoch"] for r in rows] == [2, 4, 5]  # every 2nd epoch and the last
    for r in rows:  # the rate of the epoch: lr (1 + cos(pi e / E)) / 2 with e = epoch - 1
        assert r["lr"] == pytest.approx(0.05 * 0.5 * (1 + math.cos(math.pi * (r["epoch"] - 1) / 5)))
    assert t.best_epoch == min(rows, key=lambda r: r["val_loss"])["epoch"]
    best_val = t.best_val
    t.restore_best()
    assert t.task.evaluate(t.model, "val")["loss"] == pytest.approx(best_val, rel=1e-12)
