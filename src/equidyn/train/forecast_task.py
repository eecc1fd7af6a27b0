r"""Forecasting from windows of past frames as a :class:`~equidyn.train.task.Task`.

The loss of a batch of :class:`~equidyn.data.TrajectoryWindows` samples is the mean squared
error of the predicted positions,
:math:`\frac{1}{3n}\sum_i \|\hat x_i - x_i^{(T+H)}\|^2` averaged over the batch; the
validation MSE selects the best epoch, whose test MSE is the reported number. Any
:class:`~equidyn.models.forecasting.ForecastModel` trains (ESTAG and its baselines).
:func:`train_forecaster` runs it on the one :class:`~equidyn.train.trainer.Trainer`
(Adam, a cosine schedule, resumable checkpoints, Ctrl-C safe).

>>> import tempfile, torch
>>> from equidyn.data import Trajectory, TrajectoryWindows
>>> from equidyn.models import ESTAG
>>> t = torch.linspace(0, 6, 60)[:, None, None]
>>> traj = Trajectory(torch.cat([t.sin(), t.cos(), 0 * t], -1).expand(60, 3, 3) * torch.tensor(
...     [[1.0], [2.0], [3.0]]), torch.eye(3))
>>> windows = TrajectoryWindows([traj], window=4)
>>> model = ESTAG(window=4, num_features=8, num_layers=1, node_attr_dim=3)
>>> result = train_forecaster(model, windows, windows, epochs=2, out=tempfile.mkdtemp(),
...                           progress=False)
>>> sorted(result), result["epoch"]
(['best_epoch', 'best_test', 'best_valid', 'epoch', 'seconds_per_epoch'], 2)
"""

from __future__ import annotations

import math
import os
from typing import Any

import torch
from torch import Tensor, nn

from equidyn.data.trajectories import TrajectoryWindows
from equidyn.models.forecasting import ForecastModel
from equidyn.models.registry import model_config
from equidyn.train.config import TrainingConfig
from equidyn.train.task import EpochStats
from equidyn.train.trainer import Trainer

__all__ = ["ForecastTask", "forecast_mse", "train_forecaster"]


def _forecaster(model: nn.Module) -> ForecastModel:
    if not isinstance(model, ForecastModel):
        raise TypeError(f"the forecasting task trains a ForecastModel, got {type(model).__name__}")
    return model


def _predict(model: ForecastModel, batch: dict[str, Tensor]) -> Tensor:
    return model(batch["pos_window"], batch["node_attr"], batch.get("edge_attr"))


@torch.no_grad()
def forecast_mse(model: nn.Module, windows: TrajectoryWindows, batch_size: int = 500) -> float:
    """MSE over all predicted coordinates of ``windows`` (the model in eval mode)."""
    model = _forecaster(model)
    model.eval()
    total = 0.0
    for idx in torch.arange(len(windows)).split(batch_size):
        batch = windows.batch(idx)
        total += float(((_predict(model, batch) - batch["target"]) ** 2).sum())
    return total / (len(windows) * windows.num_particles * 3)


class ForecastTask:
    """Windowed forecasting (module docstring) for the trainer.

    Args:
        train, val: the training and validation samples.
        test: test samples, evaluated with each new best model (optional).
        batch_size: samples per optimiser step, in an order drawn from the trainer's generator.
        config: settings saved in every checkpoint (how the run was made).
    """

    selection_metric = "mse"

    def __init__(
        self,
        train: TrajectoryWindows,
        val: TrajectoryWindows,
        test: TrajectoryWindows | None = None,
        *,
        batch_size: int = 100,
        config: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.splits = {"train": train, "val": val}
        if test is not None:
            self.splits["test"] = test
        layouts = {
            name: (w.window, w.num_particles, w.node_attr_dim, w.edge_attr_dim)
            for name, w in self.splits.items()
        }
        if len(set(layouts.values())) != 1:
            raise ValueError(
                "the splits need the same (window, particles, node_attr_dim, edge_attr_dim); "
                f"got {layouts}"
            )
        self.best_splits: tuple[str, ...] = ("test",) if test is not None else ()
        self.batch_size = batch_size
        self.config = dict(config or {})

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[Tensor]:
        perm = torch.randperm(len(self.splits["train"]), generator=generator)
        return list(perm.split(self.batch_size))  # sample indices of each batch

    def loss(self, model: nn.Module, batch: Tensor) -> tuple[Tensor, float]:
        data = self.splits["train"].batch(batch)
        pred = _predict(_forecaster(model), data)
        return ((pred - data["target"]) ** 2).mean(), float(len(batch))

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(self.splits)}")
        return {"mse": forecast_mse(model, self.splits[split])}

    # several processes (equidyn.train.distributed.ShardedTask)
    def split_batch(self, batch: Tensor, parts: int) -> list[Tensor]:
        """The batch's sample indices in ``parts`` consecutive runs of near-equal length."""
        return list(torch.tensor_split(batch, parts))

    def part_loss(self, model: nn.Module, part: Tensor, batch: Tensor) -> tuple[Tensor, float]:
        """The part's mean squared error times ``len(part) / len(batch)`` (``model`` may be
        the ``DistributedDataParallel`` wrapper of a forecaster)."""
        _forecaster(getattr(model, "module", model))
        empty = len(part) == 0  # still through the model: every rank joins the reduction
        data = self.splits["train"].batch(batch[:1] if empty else part)
        pred = model(data["pos_window"], data["node_attr"], data.get("edge_attr"))
        mse = ((pred - data["target"]) ** 2).mean()
        return mse * (0.0 if empty else len(part) / len(batch)), float(len(batch))

    @torch.no_grad()
    def evaluation_sums(
        self, model: nn.Module, split: str, rank: int, world_size: int, batch_size: int = 500
    ) -> dict[str, float]:
        """Squared errors and their count over rank ``rank``'s run of ``split``."""
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(self.splits)}")
        forecaster = _forecaster(model)
        forecaster.eval()
        windows = self.splits[split]
        sq, n = 0.0, 0
        for idx in torch.tensor_split(torch.arange(len(windows)), world_size)[rank].split(
            batch_size
        ):
            data = windows.batch(idx)
            err = _predict(forecaster, data) - data["target"]
            sq, n = sq + float((err**2).sum()), n + err.numel()
        return {"sq": sq, "n": float(n)}

    def metrics_from_sums(self, sums: dict[str, float]) -> dict[str, float]:
        return {"mse": sums["sq"] / sums["n"]}

    def log_row(self, stats: EpochStats) -> dict[str, Any]:
        return {
            "epoch": stats.epoch,
            "lr": stats.lr,
            "train_loss": stats.train_loss,
            "val_mse": stats.metrics["val"]["mse"],
            "test_mse": stats.metrics.get("test", {}).get("mse", math.nan),
            "seconds_per_epoch": stats.train_seconds / stats.epoch,
        }

    def describe(self, stats: EpochStats) -> str:
        best_test = stats.best_metrics.get("test", {}).get("mse", math.nan)
        return (
            f"epoch {stats.epoch}/{stats.epochs}  train {stats.train_loss:.4g}  "
            f"val {stats.metrics['val']['mse']:.4g}  best test {best_test:.4g} "
            f"(epoch {stats.best_epoch})" + ("  *" if stats.improved else "")
        )

    def on_best(self, model: nn.Module) -> None:
        pass  # the trainer keeps the best weights in its checkpoint

    def checkpoint_extra(self, model: nn.Module) -> dict[str, Any]:
        return {
            "config": self.config,
            "model": type(model).__name__,
            "model_config": model_config(model),
        }


def train_forecaster(
    model: ForecastModel,
    train: TrajectoryWindows,
    val: TrajectoryWindows,
    test: TrajectoryWindows | None = None,
    *,
    epochs: int,
    out: str | os.PathLike[str],
    batch_size: int = 100,
    lr: float = 1e-3,
    weight_decay: float = 1e-12,
    max_grad_norm: float | None = 10.0,
    seed: int = 0,
    eval_every: int = 1,
    max_time_s: float | None = None,
    resume: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` on ``train`` with Adam and a cosine-annealed learning rate, select the
    epoch by the validation MSE, and load its weights into ``model``.

    With ``resume`` and a checkpoint in ``out``, training continues where it stopped; Ctrl-C
    saves a checkpoint first. Returns ``epoch``, ``best_valid``, ``best_test`` (NaN without
    ``test``), ``best_epoch`` and ``seconds_per_epoch`` (training steps only).
    """
    task = ForecastTask(train, val, test, batch_size=batch_size, config={"seed": seed})
    settings = TrainingConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, amsgrad=False, weight_decay=weight_decay,
        ema_decay=None, schedule="cosine", early_stopping_patience=None, eval_every=eval_every,
        max_grad_norm=max_grad_norm, max_time_s=max_time_s, seed=seed, output_dir=str(out),
        progress=progress, log_epochs=progress, plots=False,
    )  # fmt: skip
    trainer = Trainer(model, task, settings)
    summary = trainer.fit(resume=resume)
    if summary["stop_reason"].startswith("interrupted"):
        raise KeyboardInterrupt(f"checkpoint saved to {trainer.checkpoint_path}; rerun to resume")
    trainer.restore_best()
    return {
        "epoch": trainer.epoch,
        "best_valid": trainer.best_val,
        "best_test": trainer.best_metrics.get("test", {}).get("mse", math.nan),
        "best_epoch": trainer.best_epoch,
        "seconds_per_epoch": trainer.train_seconds / max(trainer.epoch, 1),
    }
