r"""The charged N-body task of the one trainer, and the measurements made after training.

:class:`NBodyTask` is the EGNN protocol (Satorras et al., ICML 2021) as a
:class:`~equidyn.train.task.Task`: the loss of a batch is the mean squared error of the
predicted positions (frame 30 → 40), or with ``state_loss`` of positions and velocities over
``unroll`` chained predictions; the validation MSE selects the best epoch, whose test MSE is
the reported number. :func:`train` runs it with the protocol's optimiser (Adam, lr 5e-4,
weight decay 1e-12, batch 100) on :class:`~equidyn.train.trainer.Trainer`. After training,
:func:`evaluate`, :func:`equivariance_mse` and :func:`rollout` measure the model.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from equidyn._io import load_checkpoint
from equidyn.dynamics.data import ChargedNBodyDataset
from equidyn.dynamics.planetary import PlanetaryNBodyDataset
from equidyn.dynamics.systems import ChargedNBody
from equidyn.experiments.nbody_models import _predict, _predict_state
from equidyn.models.particles import ParticleModel
from equidyn.o3.rotations import rand_matrix
from equidyn.train.config import TrainingConfig
from equidyn.train.task import EpochStats
from equidyn.train.trainer import Trainer

__all__ = ["AUGMENTATIONS", "NBodyTask", "equivariance_mse", "evaluate", "rollout", "train"]

#: the data sets the task trains on: any with the attributes of ``ChargedNBodyDataset``
NBodyData = ChargedNBodyDataset | PlanetaryNBodyDataset
#: ``(indices, x @ R matrices or None, translations or None)`` of one training batch
Batch = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]
#: the values of ``augment``: none, rotations about the origin (``True``), all of E(3)
AUGMENTATIONS: tuple[bool | str, ...] = (False, True, "rotations", "e3")


@torch.no_grad()
def evaluate(model: ParticleModel, ds: NBodyData, batch_size: int = 500) -> float:
    """MSE over all predicted coordinates of ``ds``."""
    model.eval()
    total = 0.0
    for s in range(0, len(ds), batch_size):
        sl = slice(s, s + batch_size)
        pred = _predict(model, ds.pos[sl], ds.vel[sl], ds.charges[sl])
        total += float(((pred - ds.target_pos[sl]) ** 2).sum())
    return total / ds.target_pos.numel()


@torch.no_grad()
def equivariance_mse(
    model: ParticleModel, ds: NBodyData, seed: int = 0, n_max: int = 1000
) -> float:
    """Mean ``|f(R x + t, R v) − (R f(x, v) + t)|²`` over test inputs, random R ∈ O(3), t.

    Zero up to rounding for an equivariant model; for a non-equivariant one it measures how
    much equivariance augmentation has taught it (same units as the test MSE).
    """
    model.eval()
    n = min(n_max, len(ds))
    g = torch.Generator().manual_seed(seed)
    pos, vel, q = ds.pos[:n], ds.vel[:n], ds.charges[:n]
    R = rand_matrix(n, generator=g, dtype=pos.dtype)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(pos.dtype)
    R = R * flip[:, None, None]  # [n, 3, 3], half of them improper
    t = torch.randn(n, 1, 3, generator=g, dtype=pos.dtype)
    out = _predict(model, pos, vel, q)
    out_g = _predict(model, pos @ R.transpose(1, 2) + t, vel @ R.transpose(1, 2), q)
    return float(((out_g - (out @ R.transpose(1, 2) + t)) ** 2).mean())


def _energy(pos: torch.Tensor, vel: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
    sys = ChargedNBody(charges[..., 0].double())
    return sys.energy(pos.double(), vel.double())  # [batch]


@torch.no_grad()
def rollout(
    model: ParticleModel, data: dict[str, torch.Tensor], n_chain: int = 10, gap: int = 10
) -> dict[str, list[float]]:
    """Chain ``n_chain`` predictions of ``gap`` frames from frame 0 of long trajectories.

    Returns per chained step k = 1..n_chain the position MSE against the simulator and the
    mean absolute energy drift ``|E_k − E_0|`` of the predicted states and of the simulator.
    """
    model.eval()
    pos_all, vel_all = data["pos"].float(), data["vel"].float()
    q = data["charges"].float()[..., None]
    if pos_all.shape[1] <= n_chain * gap:
        raise ValueError(f"need more than {n_chain * gap} frames, got {pos_all.shape[1]}")
    x, v = pos_all[:, 0], vel_all[:, 0]
    e0 = _energy(x, v, q)
    out: dict[str, list[float]] = {"mse": [], "energy_drift": [], "true_energy_drift": []}
    for k in range(1, n_chain + 1):
        x, v = _predict_state(model, x, v, q)
        out["mse"].append(float(((x - pos_all[:, k * gap]) ** 2).mean()))
        out["energy_drift"].append(float((_energy(x, v, q) - e0).abs().mean()))
        true_e = _energy(pos_all[:, k * gap], vel_all[:, k * gap], q)
        out["true_energy_drift"].append(float((true_e - e0).abs().mean()))
    return out


def _particle_model(model: nn.Module) -> ParticleModel:
    """``model`` as a :class:`ParticleModel` (the trainer passes any ``nn.Module``)."""
    if not isinstance(model, ParticleModel):
        raise TypeError(f"the N-body task trains a ParticleModel, got {type(model).__name__}")
    return model


class NBodyTask:
    """The EGNN protocol's training problem (see the module docstring and :func:`train`).

    Args:
        train_ds, valid_ds, test_ds: the splits; ``"val"`` is ``valid_ds``.
        batch_size: trajectories per optimiser step.
        augment: ``False``; ``True`` or ``"rotations"``: rotate each training trajectory
            (input and targets, about the origin) by a random rotation drawn from the
            trainer's generator; ``"e3"``: a random element of E(3) instead (the rotation,
            composed with the inversion with probability ½, and a translation ~ N(0, 1)).
        state_loss, unroll, trim: see :func:`train`.
        config: the run's settings, saved in every checkpoint (see :func:`train`).
    """

    selection_metric = "mse"
    best_splits: tuple[str, ...] = ("test",)

    def __init__(
        self,
        train_ds: NBodyData,
        valid_ds: NBodyData,
        test_ds: NBodyData,
        *,
        batch_size: int = 100,
        augment: bool | str = False,
        state_loss: bool = False,
        unroll: int = 1,
        trim: float = 1.0,
        config: dict[str, Any] | None = None,
    ) -> None:
        if not 0 < trim <= 1:
            raise ValueError(f"trim must be in (0, 1], got {trim}")
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
        self.batch_size = batch_size
        self.splits = {"train": train_ds, "val": valid_ds, "test": test_ds}
        self.augment: bool | str = "rotations" if augment is True else augment
        self.state_loss, self.unroll, self.trim = state_loss, unroll, trim
        self.config = dict(config or {})

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[Batch]:
        """``(indices, R or None, t or None)`` of each batch: a permutation, then the
        augmentation's orthogonal matrices (applied as ``x @ R``) and translations."""
        ds = self.splits["train"]
        perm = torch.randperm(len(ds), generator=generator)
        out: list[Batch] = []
        for s in range(0, len(ds), self.batch_size):
            idx = perm[s : s + self.batch_size]
            R = t = None
            if self.augment:  # the same transformation for input and targets
                R = rand_matrix(len(idx), generator=generator, dtype=ds.pos.dtype).transpose(1, 2)
                if self.augment == "e3":  # half of them reflected, all translated by N(0, 1)
                    flip = torch.rand(len(idx), generator=generator) < 0.5
                    R = R * torch.where(flip, -1.0, 1.0).to(R.dtype)[:, None, None]
                    t = torch.randn(len(idx), 1, 3, generator=generator, dtype=ds.pos.dtype)
            out.append((idx, R, t))
        return out

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, float]:
        """The (trimmed) mean over trajectories of the squared errors; weight: the batch size."""
        idx, R, t = batch
        ds, model = self.splits["train"], _particle_model(model)
        pos, vel, q = ds.pos[idx], ds.vel[idx], ds.charges[idx]
        target, target_vel = ds.target_pos[idx], ds.target_vel[idx]
        future, future_vel = ds.future_pos[idx], ds.future_vel[idx]
        if R is not None:
            pos, vel, target, target_vel = pos @ R, vel @ R, target @ R, target_vel @ R
            future, future_vel = future @ R[:, None], future_vel @ R[:, None]
        if t is not None:  # [batch, 1, 3]
            pos, target, future = pos + t, target + t, future + t[:, None]
        if self.state_loss:  # per-trajectory errors, [batch]
            err = pos.new_zeros(len(idx))
            x, v = pos, vel
            for k in range(self.unroll):  # K chained predictions, [batch, n, 3] each
                x, v = _predict_state(model, x, v, q)
                err = err + ((x - future[:, k]) ** 2).mean((1, 2))
                err = err + ((v - future_vel[:, k]) ** 2).mean((1, 2))
            err = err / self.unroll
        else:
            err = ((_predict(model, pos, vel, q) - target) ** 2).mean((1, 2))
        if self.trim < 1:  # the trimmed mean: drop the worst trajectories of the batch
            err = err.sort().values[: max(1, int(self.trim * len(err)))]
        return err.mean(), float(len(idx))

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        if split not in ("val", "test"):
            raise ValueError(f"unknown split {split!r}; expected 'val' or 'test'")
        return {"mse": evaluate(_particle_model(model), self.splits[split])}

    def log_row(self, stats: EpochStats) -> dict[str, Any]:
        return {
            "epoch": stats.epoch,
            "train_loss": stats.train_loss,
            "valid_mse": stats.metrics["val"]["mse"],
            "test_mse": stats.metrics.get("test", {}).get("mse", math.nan),
            "seconds_per_epoch": stats.train_seconds / stats.epoch,
            "lr": stats.lr,
        }

    def describe(self, stats: EpochStats) -> str:
        best_test = stats.best_metrics.get("test", {}).get("mse", math.inf)
        return (
            f"epoch {stats.epoch:5d}/{stats.epochs}  train {stats.train_loss:.5f}"
            f"  valid {stats.metrics['val']['mse']:.5f}"
            f"  best test {best_test:.5f} (epoch {stats.best_epoch})"
            f"  {stats.train_seconds / stats.epoch:.2f} s/epoch"
        )

    def on_best(self, model: nn.Module) -> None:
        pass  # the trainer keeps the best weights in its checkpoint

    def checkpoint_extra(self, model: nn.Module) -> dict[str, Any]:
        return {"config": self.config}


def check_resumable(ckpt: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    """``ValueError`` unless checkpoint ``ckpt`` was written by a run of the same ``config``
    (keys of ``config`` only: settings that may change between runs are left out of it)."""
    stored = {k: v for k, v in ckpt.get("config", {}).items() if k in config}
    if stored != config:
        raise ValueError(
            f"{path} was written with a different configuration {ckpt.get('config')}; "
            "pass --fresh or another --out"
        )


def train(
    model: ParticleModel,
    train_ds: NBodyData,
    valid_ds: NBodyData,
    test_ds: NBodyData,
    *,
    epochs: int,
    out: Path,
    seed: int = 0,
    augment: bool | str = False,
    state_loss: bool = False,
    eval_every: int = 1,
    batch_size: int = 100,
    lr: float = 5e-4,
    weight_decay: float = 1e-12,
    schedule: str = "constant",
    clip_grad: float | None = None,
    unroll: int = 1,
    trim: float = 1.0,
    resume: bool = True,
    config: dict[str, Any] | None = None,
    progress: bool = True,
    step_callback: Callable[[Trainer[NBodyTask], int], None] | None = None,
) -> dict[str, Any]:
    """Protocol training with best-validation selection, CSV log and resumable checkpoints.

    ``schedule="constant"`` keeps ``lr`` (the protocol); ``"cosine"`` anneals it per epoch as
    ``lr_e = lr (1 + cos(π e / epochs)) / 2``, which converges in fewer epochs than the
    protocol's constant rate (a resumed run follows the schedule of its new ``epochs``).
    ``clip_grad`` clips the gradient norm of every step (for models integrated over many
    steps, whose gradients through close encounters can be huge). ``unroll = K > 1`` (with
    ``state_loss``) chains K predictions of ``forward_state`` and averages the position and
    velocity losses over the K states (``train_ds`` built with ``unroll=K``). ``trim < 1``
    trains on the trimmed mean: per batch, only the ``trim`` fraction of trajectories with the
    smallest error enters the loss (the rest are mostly close encounters, whose chaotic
    gradients can swamp the others'); evaluation always uses the plain MSE.

    The batch order (and the rotations of ``augment``) come from a generator seeded by
    ``seed``. With ``resume`` and a ``checkpoint.pt`` in ``out`` written with the same
    ``config``, training continues where it stopped; Ctrl-C saves a checkpoint and raises
    ``KeyboardInterrupt``; ``step_callback`` is the trainer's (see
    :class:`~equidyn.train.trainer.Trainer`). Returns the state of the run (``epoch``,
    ``best_valid``, ``best_test``, ``best_epoch``, ``train_seconds``) with the best weights
    loaded in ``model``.
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    task = NBodyTask(
        train_ds, valid_ds, test_ds, batch_size=batch_size, augment=augment,
        state_loss=state_loss, unroll=unroll, trim=trim, config=config,
    )  # fmt: skip
    settings = TrainingConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, amsgrad=False, weight_decay=weight_decay,
        ema_decay=None, schedule=schedule, early_stopping_patience=None, eval_every=eval_every,
        max_grad_norm=clip_grad, seed=seed, output_dir=str(out), progress=progress,
        log_epochs=progress, plots=False,
    )  # fmt: skip
    trainer = Trainer(model, task, settings, step_callback=step_callback)
    if resume and trainer.checkpoint_path.is_file():
        ckpt = load_checkpoint(trainer.checkpoint_path)
        check_resumable(ckpt, task.config, trainer.checkpoint_path)
        if progress:
            print(f"resuming from {trainer.checkpoint_path} at epoch {ckpt['epoch']}")
    summary = trainer.fit(resume=resume)
    if summary["stop_reason"].startswith("interrupted"):
        print(
            f"\ninterrupted: checkpoint saved to {trainer.checkpoint_path}; rerun to resume",
            file=sys.stderr,
        )
        raise KeyboardInterrupt
    trainer.restore_best()
    return {
        "epoch": trainer.epoch,
        "best_valid": trainer.best_val,
        "best_test": trainer.best_metrics.get("test", {}).get("mse", math.inf),
        "best_epoch": trainer.best_epoch,
        "train_seconds": trainer.train_seconds,
    }
