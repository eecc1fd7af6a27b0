r"""What the trainer needs to know about a learning problem: the :class:`Task` protocol.

:class:`~equidyn.train.trainer.Trainer` owns what every problem shares: the optimiser, the
learning-rate schedule, the exponential moving average of the weights, gradient clipping, the
epoch loop, resumable checkpoints, Ctrl-C, the progress bar, the CSV log and the choice of the
best model. A task owns what differs: how an epoch is cut into batches, the loss of a batch,
the metrics of a split, and how a row of the log and a line of progress read.

An epoch's batches may draw from the trainer's ``generator`` (seeded by the training seed and
saved in every checkpoint, so a resumed run draws exactly what an uninterrupted one draws).
Lower is better for ``selection_metric``: the epoch with its lowest value on the ``"val"``
split is the best one, its weights are kept, and the splits in ``best_splits`` are evaluated
with them.

A task that can also be cut into parts for several processes is a
:class:`~equidyn.train.distributed.ShardedTask` (the three below are).

Three tasks ship: :class:`RegressionTask` below (``model(x) ≈ y`` by mean squared error),
:class:`~equidyn.train.potential_task.PotentialTask` (energies, forces and stresses of atomic
structures) and the charged N-body task of :mod:`equidyn.experiments.nbody_task`.

>>> import tempfile, torch
>>> from equidyn.train.config import TrainingConfig
>>> from equidyn.train.trainer import Trainer
>>> x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
>>> task = RegressionTask((x, 2 * x), (x[:16], 2 * x[:16]), batch_size=16)
>>> cfg = TrainingConfig(epochs=30, lr=0.05, ema_decay=None, schedule="constant",
...                      output_dir=tempfile.mkdtemp(), progress=False, log_epochs=False)
>>> trainer = Trainer(torch.nn.Linear(3, 3), task, cfg)
>>> summary = trainer.fit()
>>> summary["epochs"], summary["best_val_loss"] < 1e-3
(30, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = ["EpochStats", "RegressionTask", "Task"]


@dataclass
class EpochStats:
    """What the trainer knows at the end of an evaluated epoch (for a log row or a message).

    Attributes:
        epoch: completed epochs (1 after the first).
        epochs: the epoch budget of the run.
        lr: the learning rate of the epoch.
        train_loss: mean training loss of the epoch (weighted as :meth:`Task.loss` says).
        metrics: split -> metrics of this epoch: ``"val"`` always, the ``best_splits`` too
            when the epoch is a new best.
        improved: whether this epoch is a new best.
        best_epoch: the best epoch so far.
        best_metrics: the metrics of the best epoch (same layout as ``metrics``).
        train_seconds: time spent in training steps since the run began (all epochs).
        elapsed: wall time of the run so far, evaluations included.
    """

    epoch: int
    epochs: int
    lr: float
    train_loss: float
    metrics: dict[str, dict[str, float]]
    improved: bool
    best_epoch: int
    best_metrics: dict[str, dict[str, float]]
    train_seconds: float
    elapsed: float


@runtime_checkable
class Task(Protocol):
    """A learning problem the :class:`~equidyn.train.trainer.Trainer` can fit (see above)."""

    #: key of ``evaluate(model, "val")`` that selects the best epoch (lower is better)
    selection_metric: str
    #: splits evaluated with the weights of each new best epoch
    best_splits: tuple[str, ...]

    def train_batches(self, epoch: int, generator: torch.Generator) -> Sequence[Any]:
        """The batches of training epoch ``epoch`` (0-based), in order."""
        ...

    def loss(self, model: nn.Module, batch: Any) -> tuple[Tensor, float]:
        """``(loss, weight)``: the loss to minimise and its weight in the epoch's mean."""
        ...

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """Metrics of ``model`` on ``split`` (``"val"``, or one of ``best_splits``)."""
        ...

    def log_row(self, stats: EpochStats) -> dict[str, Any]:
        """One row of ``log.csv``."""
        ...

    def describe(self, stats: EpochStats) -> str:
        """One line of progress for an evaluated epoch."""
        ...

    def on_best(self, model: nn.Module) -> None:
        """Called with the best weights loaded whenever an epoch is a new best."""
        ...

    def checkpoint_extra(self, model: nn.Module) -> dict[str, Any]:
        """Entries the task adds to every checkpoint (e.g. how to rebuild the model)."""
        ...


class RegressionTask:
    """Fit ``model(x) ≈ y`` on tensors by the mean squared error.

    Args:
        train: ``(x, y)`` training inputs and targets (first dimension: samples).
        val: ``(x, y)`` of the validation split.
        batch_size: samples per optimiser step; an epoch visits the samples in an order drawn
            from the trainer's generator.
        test: ``(x, y)`` of a test split, evaluated with each new best model (optional).
    """

    selection_metric = "loss"

    def __init__(
        self,
        train: tuple[Tensor, Tensor],
        val: tuple[Tensor, Tensor],
        batch_size: int = 32,
        test: tuple[Tensor, Tensor] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.splits = {"train": train, "val": val}
        for name, (x, y) in list(self.splits.items()) + ([("test", test)] if test else []):
            if len(x) == 0 or len(x) != len(y):
                raise ValueError(
                    f"{name} split: need as many targets as inputs (> 0), got {len(x)} inputs "
                    f"and {len(y)} targets"
                )
        if test is not None:
            self.splits["test"] = test
        self.best_splits: tuple[str, ...] = ("test",) if test is not None else ()
        self.batch_size = batch_size

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[Tensor]:
        perm = torch.randperm(len(self.splits["train"][0]), generator=generator)
        return list(perm.split(self.batch_size))  # sample indices of each batch

    def loss(self, model: nn.Module, batch: Tensor) -> tuple[Tensor, float]:
        x, y = self.splits["train"]
        return ((model(x[batch]) - y[batch]) ** 2).mean(), float(len(batch))

    @torch.no_grad()
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(self.splits)}")
        x, y = self.splits[split]
        model.eval()
        return {"loss": float(((model(x) - y) ** 2).mean())}

    # several processes (equidyn.train.distributed.ShardedTask)
    def split_batch(self, batch: Tensor, parts: int) -> list[Tensor]:
        """The batch's sample indices in ``parts`` consecutive runs of near-equal length."""
        return list(torch.tensor_split(batch, parts))

    def part_loss(self, model: nn.Module, part: Tensor, batch: Tensor) -> tuple[Tensor, float]:
        """The part's mean squared error times ``len(part) / len(batch)``."""
        x, y = self.splits["train"]
        if len(part) == 0:  # still through the model: every rank joins the gradient reduction
            return 0.0 * model(x[batch[:1]]).sum(), float(len(batch))
        mse = ((model(x[part]) - y[part]) ** 2).mean()
        return mse * (len(part) / len(batch)), float(len(batch))

    @torch.no_grad()
    def evaluation_sums(
        self, model: nn.Module, split: str, rank: int, world_size: int
    ) -> dict[str, float]:
        """Squared errors and their count over rank ``rank``'s run of ``split``."""
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(self.splits)}")
        x, y = self.splits[split]
        rows = torch.tensor_split(torch.arange(len(x)), world_size)[rank]
        model.eval()
        err = model(x[rows]) - y[rows]
        return {"sq": float((err**2).sum()), "n": float(err.numel())}

    def metrics_from_sums(self, sums: dict[str, float]) -> dict[str, float]:
        return {"loss": sums["sq"] / sums["n"]}

    def log_row(self, stats: EpochStats) -> dict[str, Any]:
        row = {
            "epoch": stats.epoch,
            "lr": stats.lr,
            "train_loss": stats.train_loss,
            "val_loss": stats.metrics["val"]["loss"],
        }
        if "test" in self.splits:  # measured at each new best only
            row["test_loss"] = stats.metrics.get("test", {}).get("loss", math.nan)
        return row

    def describe(self, stats: EpochStats) -> str:
        return (
            f"epoch {stats.epoch}/{stats.epochs}  train {stats.train_loss:.4g}  "
            f"val {stats.metrics['val']['loss']:.4g}" + ("  *" if stats.improved else "")
        )

    def on_best(self, model: nn.Module) -> None:
        pass

    def checkpoint_extra(self, model: nn.Module) -> dict[str, Any]:
        return {}
