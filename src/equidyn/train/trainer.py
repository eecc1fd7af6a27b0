r"""One training loop for every task: resumable, interruptible, logged.

:class:`Trainer` fits a model to a :class:`~equidyn.train.task.Task` (the task says what a
batch, its loss and the metrics of a split are; see :mod:`equidyn.train.task`). Each step
minimises the task's loss with Adam (optionally AMSGrad, weight decay, gradient clipping) and
updates an exponential moving average (EMA) of the weights. Every ``eval_every`` epochs (and
after the last) the EMA weights are evaluated on the validation split; the epoch with the
lowest ``task.selection_metric`` is the best: its weights are kept (in memory and in the
checkpoint), ``task.on_best`` is called with them loaded and ``task.best_splits`` are evaluated.
The learning rate follows ``schedule``: ``"plateau"`` (``ReduceLROnPlateau`` on the validation
metric), ``"constant"``, or ``"cosine"`` (``lr_e = lr (1 + cos(π e / epochs)) / 2`` at epoch
``e``). Early stopping counts evaluations without improvement; ``max_time_s`` stops cleanly.

Batches may draw from :attr:`Trainer.generator` (seeded by ``seed``). Its state at the start
of the current epoch is in every checkpoint, so a run that is interrupted and resumed sees
exactly the batches an uninterrupted run sees, step for step.

Files in ``output_dir``: ``checkpoint.pt`` (everything needed to resume: weights, optimiser,
scheduler, EMA, generator, counters, position inside the epoch, best weights, plus the task's
``checkpoint_extra``; written atomically after every epoch and on Ctrl-C), ``log.csv`` (one row
per evaluation, as the task formats it) and ``config.yaml`` (the run's configuration, if given).

Ctrl-C during :meth:`Trainer.fit` finishes the current optimiser step, writes the checkpoint
with the position inside the epoch and returns; ``fit(resume=True)`` continues from there. A
second Ctrl-C interrupts immediately (the previous checkpoint stays intact: writes are atomic).

Over several processes (``torchrun``; see :mod:`equidyn.train.distributed`): when a process
group of more than one process is initialised (or ``distributed`` is given), the model is
wrapped in ``DistributedDataParallel``, every rank draws the same global batches and trains on
its balanced part of each with the loss scaled so that the averaged gradient is the one
process's gradient on the whole batch; validation metrics are reduced over ranks. Rank 0 alone
writes the checkpoint (the unwrapped module's state, resumable under any number of processes;
on resume rank 0 reads it and sends it to the others), ``log.csv`` and ``config.yaml``, shows
progress and calls ``task.on_best``. The ranks agree after every step on whether to stop
(Ctrl-C or SIGTERM on any rank), so all stop at the same step. The task must then be a
:class:`~equidyn.train.distributed.ShardedTask`.

The potentials' helpers :func:`build_potential` and :func:`model_r_max` live here too; their
task is :class:`~equidyn.train.potential_task.PotentialTask`.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from equidyn._io import atomic_save, atomic_write_text, load_checkpoint
from equidyn.graph import AtomicGraph
from equidyn.models.potential import Potential
from equidyn.models.registry import build_model, constructor_arguments, resolve_model
from equidyn.train.config import Config, TrainingConfig
from equidyn.train.distributed import DistributedContext, ShardedTask, current_context
from equidyn.train.ema import ExponentialMovingAverage
from equidyn.train.logging import CSVLogger
from equidyn.train.task import EpochStats, Task

__all__ = ["Trainer", "build_potential", "model_r_max", "DTYPES", "SCHEDULES"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
SCHEDULES = ("plateau", "constant", "cosine")
TaskT = TypeVar("TaskT", bound=Task)


def model_r_max(model_class: str, kwargs: dict[str, Any]) -> float:
    """The cutoff a potential built from ``kwargs`` will use (given or the constructor default)."""
    cls = resolve_model(model_class, kind="potential")
    if "r_max" in kwargs:
        return float(kwargs["r_max"])
    default = constructor_arguments(cls).get("r_max")
    if default is None or default.default is inspect.Parameter.empty:
        raise ValueError(f"model section must give r_max for {model_class}")
    return float(default.default)


def build_potential(
    model_class: str,
    model_kwargs: dict[str, Any],
    train_graphs: Sequence[AtomicGraph],
    type_numbers: Sequence[int] | None = None,
) -> Potential:
    """A fresh :class:`Potential` whose data-dependent settings come from ``train_graphs``.

    Per-species reference energies are fitted by least squares, the scale is the RMS force,
    and ``num_species`` / ``avg_num_neighbors`` are filled in when the model takes them and
    ``model_kwargs`` leaves them out.
    """
    from equidyn.data.stats import average_num_neighbors, fit_reference_energies, force_rms

    if type_numbers is None:
        type_numbers = sorted({int(z) for g in train_graphs for z in g.atomic_numbers.tolist()})
    type_numbers = [int(z) for z in type_numbers]
    refs = fit_reference_energies(train_graphs, type_numbers)
    has_forces = all(g.forces is not None for g in train_graphs)
    scale = force_rms(train_graphs) if has_forces else 1.0
    params = constructor_arguments(resolve_model(model_class, kind="potential"))
    kwargs = dict(model_kwargs)
    if "num_species" in params and "num_species" not in kwargs:
        kwargs["num_species"] = len(type_numbers)
    if "avg_num_neighbors" in params and kwargs.get("avg_num_neighbors") is None:
        kwargs["avg_num_neighbors"] = float(average_num_neighbors(train_graphs))
    model = build_model(model_class, kwargs, kind="potential")
    return Potential(model, type_numbers, [refs[z] for z in type_numbers], scale=scale)


class Trainer(Generic[TaskT]):
    """Fits ``model`` to ``task`` (see the module docstring).

    Args:
        model: the model to train (its dtype and device are the caller's choice).
        task: the learning problem (:class:`~equidyn.train.task.Task`).
        config: optimisation settings (``batch_size``, the loss weights, ``dtype`` and
            ``plots`` are the task's business).
        run_config: the whole run's :class:`Config`, saved as ``config.yaml``.
        step_callback: called as ``step_callback(trainer, global_step)`` after every
            optimiser step (e.g. custom logging; calling :meth:`request_stop` ends the run
            like Ctrl-C), on every rank.
        distributed: the process group to train over; default: the one initialised in this
            process (:func:`~equidyn.train.distributed.current_context`), if any, else one
            process.
    """

    def __init__(
        self,
        model: nn.Module,
        task: TaskT,
        config: TrainingConfig,
        run_config: Config | None = None,
        step_callback: Callable[[Trainer[TaskT], int], None] | None = None,
        distributed: DistributedContext | None = None,
    ) -> None:
        if config.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {config.schedule!r}")
        if config.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {config.eval_every}")
        self.model, self.task, self.config = model, task, config
        self.run_config = run_config
        self.step_callback = step_callback
        self.output_dir = Path(config.output_dir)
        self.distributed = current_context() if distributed is None else distributed
        self._ddp: nn.Module | None = None
        if self.distributed is not None:
            self._ddp = self._wrap(model, task, self.distributed)
        params = self._params()
        self.optimizer = torch.optim.Adam(
            params, lr=config.lr, amsgrad=config.amsgrad, weight_decay=config.weight_decay
        )
        self.scheduler = None
        if config.schedule == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer,
                mode="min",
                factor=config.lr_factor,
                patience=config.lr_patience,
                min_lr=config.min_lr,
            )
        self.ema = (
            None if config.ema_decay is None else ExponentialMovingAverage(params, config.ema_decay)
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self._epoch_rng = self.generator.get_state()  # the generator at the current epoch's start
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # completed steps of the current epoch
        self.global_step = 0
        self.best_val = math.inf
        self.best_epoch = 0
        self.best_metrics: dict[str, dict[str, float]] = {}
        self.best_state: dict[str, Any] | None = None
        self.bad_epochs = 0
        self.elapsed = 0.0
        self.train_seconds = 0.0
        self._epoch_loss = 0.0  # sum of weight * loss over the current epoch's steps
        self._epoch_weight = 0.0
        self._stop_requested = False
        self.stop_reason = ""
        self.last_row: dict[str, Any] = {}

    @staticmethod
    def _wrap(model: nn.Module, task: Task, ctx: DistributedContext) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` (which copies rank 0's weights to all)."""
        if not isinstance(task, ShardedTask):
            missing = [
                m for m in ("split_batch", "part_loss", "evaluation_sums", "metrics_from_sums")
                if not callable(getattr(task, m, None))
            ]  # fmt: skip
            raise TypeError(
                f"{type(task).__name__} cannot be trained over {ctx.world_size} processes: "
                f"a ShardedTask (equidyn.train.distributed) also needs {missing}"
            )
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [ctx.local_rank] if ctx.backend == "nccl" else None
        # models may hold parameters a loss does not reach (as in one process, they keep no
        # gradient); DDP finds them after each forward instead of waiting for their gradient
        return DistributedDataParallel(model, device_ids=device_ids, find_unused_parameters=True)

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and prints (rank 0, or the only process)."""
        return self.distributed is None or self.distributed.is_main

    def _barrier(self) -> None:
        if self.distributed is not None:
            self.distributed.barrier()

    def _agree(self, flag: bool) -> bool:
        """``flag`` on any rank (every rank gets the same answer)."""
        if self.distributed is None:
            return flag
        return bool(self.distributed.all_reduce([float(flag)], op="max")[0])

    # ------------------------------------------------------------------ state
    @property
    def checkpoint_path(self) -> Path:
        return self.output_dir / "checkpoint.pt"

    _COUNTERS = (
        ("epoch", int), ("step_in_epoch", int), ("global_step", int), ("best_val", float),
        ("best_epoch", int), ("bad_epochs", int), ("elapsed", float), ("train_seconds", float),
    )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": "equidyn-training-checkpoint",
            **self.task.checkpoint_extra(self.model),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "generator": self._epoch_rng,
            **{name: getattr(self, name) for name, _ in self._COUNTERS},
            "epoch_loss": self._epoch_loss,
            "epoch_weight": self._epoch_weight,
            "best_metrics": self.best_metrics,
            "best_model": self.best_state,
            "training_config": dict(vars(self.config)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != "equidyn-training-checkpoint":
            raise ValueError("not an equidyn training checkpoint")
        if "model" in state:
            self.model.load_state_dict(state["model"])
        else:  # written by equidyn 0.1's potential trainer
            self.model.load_state_dict(state["potential"]["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        if state.get("generator") is not None:
            self._epoch_rng = state["generator"]
            self.generator.set_state(self._epoch_rng)
        for name, kind in self._COUNTERS:
            setattr(self, name, kind(state.get(name, 0)))
        self._epoch_loss = float(state["epoch_loss"])
        self._epoch_weight = float(state.get("epoch_weight", self.step_in_epoch))
        self.best_metrics = state.get("best_metrics", {})
        self.best_state = state.get("best_model")

    def save_checkpoint(self) -> None:
        """Write ``checkpoint.pt`` atomically (rank 0 writes, the other ranks wait for it)."""
        if self.is_main:
            atomic_save(self.state_dict(), self.checkpoint_path)
        self._barrier()

    def _read_checkpoint(self) -> dict[str, Any] | None:
        """``checkpoint.pt`` if there is one (read by rank 0 and sent to every rank, so only
        rank 0 needs to see ``output_dir``)."""
        if self.distributed is None:
            found = self.checkpoint_path.is_file()
            return load_checkpoint(self.checkpoint_path) if found else None
        found = self.is_main and self.checkpoint_path.is_file()
        return self.distributed.broadcast(load_checkpoint(self.checkpoint_path) if found else None)

    def request_stop(self) -> None:
        """Stop after the current optimiser step, saving a resumable checkpoint."""
        self._stop_requested = True

    def restore_best(self) -> None:
        """Load the best weights seen so far into the model (no-op before any evaluation)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    # ------------------------------------------------------------------ steps
    def _params(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def train_step(self, batch: Any) -> tuple[float, float]:
        """One optimiser step on ``batch``; returns the task's ``(loss, weight)``.

        Over several processes ``batch`` is the global batch: this rank trains on its part
        and the loss returned is this rank's share (the shares add up to the batch's loss).
        """
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        if self.distributed is None or self._ddp is None:
            loss, weight = self.task.loss(self.model, batch)
            loss.backward()
        else:
            task: Any = self.task  # a ShardedTask, checked when wrapping
            part = task.split_batch(batch, self.distributed.world_size)[self.distributed.rank]
            loss, weight = task.part_loss(self._ddp, part, batch)
            (loss * self.distributed.world_size).backward()  # DDP averages over ranks
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self._params())
        return float(loss.detach()), weight

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Inside the block the model holds the EMA weights (its own weights without EMA)."""
        if self.ema is not None:
            self.ema.store_and_swap(self._params())
        try:
            yield
        finally:
            if self.ema is not None:
                self.ema.restore(self._params())

    def validate(self) -> tuple[dict[str, dict[str, float]], bool]:
        """Evaluate the EMA weights on ``"val"``; on a new best keep them and evaluate the
        ``best_splits``. Returns ``(metrics per split, improved)``."""
        with self.averaged_weights():
            metrics = {"val": self.evaluate("val")}
            score = float(metrics["val"][self.task.selection_metric])
            improved = score < self.best_val
            if not improved:
                self.bad_epochs += 1
                return metrics, False
            for split in self.task.best_splits:
                metrics[split] = self.evaluate(split)
            self.best_val, self.best_epoch, self.bad_epochs = score, self.epoch, 0
            self.best_metrics = metrics
            self.best_state = copy.deepcopy(self.model.state_dict())
            if self.is_main:
                self.task.on_best(self.model)
            self._barrier()
        return metrics, True

    def evaluate(self, split: str) -> dict[str, float]:
        """The task's metrics of the model as it is on ``split`` (over several processes each
        rank evaluates its share and the sums are reduced: every rank gets the same numbers)."""
        if self.distributed is None:
            return self.task.evaluate(self.model, split)
        task: Any = self.task
        ctx = self.distributed
        sums = task.evaluation_sums(self.model, split, ctx.rank, ctx.world_size)
        return dict(task.metrics_from_sums(ctx.sum_dicts(sums)))

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train until ``epochs``, early stopping, ``max_time_s`` or Ctrl-C.

        With ``resume=True`` and an existing ``checkpoint.pt`` in ``output_dir``, continue it
        exactly. Returns a summary (epochs done, best validation metric, stop reason).
        """
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        state = self._read_checkpoint() if resume else None
        resumed = state is not None
        if state is not None:
            self.load_state_dict(state)
        if self.run_config is not None and self.is_main:
            import yaml

            atomic_write_text(
                yaml.safe_dump(self.run_config.to_dict(), sort_keys=False),
                self.output_dir / "config.yaml",
            )
        self._stop_requested = False
        self.stop_reason = ""
        log = CSVLogger(self.output_dir / "log.csv", resume=resumed) if self.is_main else None
        try:
            with self._signals_stop():
                self._loop(log)
        finally:
            if log is not None:
                log.close()
        self._barrier()
        return self.summary()

    @contextlib.contextmanager
    def _signals_stop(self) -> Iterator[None]:
        """The first Ctrl-C requests a stop; a second one interrupts at once.

        Over several processes SIGINT and SIGTERM only request a stop: torchrun passes the
        signal it gets on to its workers (after the terminal's own Ctrl-C reached them) and
        kills them itself if they are not done within its shutdown timeout.
        """
        interrupts = [0]
        escalate = self.distributed is None

        def on_signal(signum: int, frame: Any) -> None:
            interrupts[0] += 1
            if escalate and interrupts[0] > 1:
                raise KeyboardInterrupt
            self._stop_requested = True

        signals = [signal.SIGINT] + ([signal.SIGTERM] if self.distributed is not None else [])
        previous: dict[signal.Signals, Any] = {}
        try:
            for sig in signals:
                previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not in the main thread: no handler, Ctrl-C is handled by Python
            pass
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _set_epoch_lr(self) -> None:
        if self.config.schedule == "cosine":
            cfg = self.config
            lr = cfg.lr * 0.5 * (1.0 + math.cos(math.pi * self.epoch / cfg.epochs))
            for group in self.optimizer.param_groups:
                group["lr"] = lr

    def _train_epoch(self) -> bool:
        """The rest of the current epoch's steps; ``False`` if a stop came before its end."""
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        self._set_epoch_lr()
        self.generator.set_state(self._epoch_rng)
        batches = self.task.train_batches(self.epoch, self.generator)
        bar = tqdm(
            total=len(batches),
            initial=self.step_in_epoch,
            desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
            disable=not (self.config.progress and self.is_main),
            leave=False,
            dynamic_ncols=True,
        )
        stop = self._stop_requested if self.distributed is None else False
        with bar:
            while self.step_in_epoch < len(batches) and not stop:
                loss, weight = self.train_step(batches[self.step_in_epoch])
                self.step_in_epoch += 1
                self.global_step += 1
                if self.step_callback is not None:
                    self.step_callback(self, self.global_step)
                if self.distributed is None:
                    stop = self._stop_requested
                else:  # the batch's loss and whether any rank wants to stop, agreed by all
                    loss, flag = self.distributed.all_reduce([loss, float(self._stop_requested)])
                    stop = self._stop_requested = flag > 0
                self._epoch_loss += loss * weight
                self._epoch_weight += weight
                bar.update(1)
                bar.set_postfix(loss=f"{self._epoch_loss / self._epoch_weight:.4g}")
        self.train_seconds += time.perf_counter() - t0
        return self.step_in_epoch >= len(batches)

    def _loop(self, log: CSVLogger | None) -> None:
        cfg = self.config
        start = time.perf_counter() - self.elapsed
        while self.epoch < cfg.epochs:
            complete = self._train_epoch()
            self.elapsed = time.perf_counter() - start
            if not complete:
                self.save_checkpoint()
                self.stop_reason = (
                    f"interrupted in epoch {self.epoch + 1} after step {self.step_in_epoch}; "
                    f"resume with --resume"
                )
                return
            self._end_epoch(log, start)
            self.save_checkpoint()
            self._stop_requested = self._agree(self._stop_requested)
            if cfg.early_stopping_patience is not None and (
                self.bad_epochs >= cfg.early_stopping_patience
            ):
                self.stop_reason = f"early stopping: no improvement for {self.bad_epochs} epochs"
                return
            if self._stop_requested:
                self.stop_reason = f"interrupted after epoch {self.epoch}; resume with --resume"
                return
            if cfg.max_time_s is not None and self._agree(self.elapsed >= cfg.max_time_s):
                self.stop_reason = f"time limit of {cfg.max_time_s:g} s reached"
                return
        self.stop_reason = f"finished {cfg.epochs} epochs"

    def _end_epoch(self, log: CSVLogger | None, start: float) -> None:
        """Close a completed epoch: evaluate (when due), schedule, log, report."""
        from tqdm.auto import tqdm

        train_loss = self._epoch_loss / self._epoch_weight if self._epoch_weight else 0.0
        self.epoch += 1
        self.step_in_epoch, self._epoch_loss, self._epoch_weight = 0, 0.0, 0.0
        self._epoch_rng = self.generator.get_state()
        if self.epoch % self.config.eval_every and self.epoch != self.config.epochs:
            return
        metrics, improved = self.validate()
        if self.scheduler is not None:
            self.scheduler.step(float(metrics["val"][self.task.selection_metric]))
        self.elapsed = time.perf_counter() - start
        stats = EpochStats(
            epoch=self.epoch,
            epochs=self.config.epochs,
            lr=self.optimizer.param_groups[0]["lr"],
            train_loss=train_loss,
            metrics=metrics,
            improved=improved,
            best_epoch=self.best_epoch,
            best_metrics=self.best_metrics,
            train_seconds=self.train_seconds,
            elapsed=self.elapsed,
        )
        self.last_row = self.task.log_row(stats)
        if log is not None:
            log.log(self.last_row)
        if self.config.log_epochs and self.is_main:
            tqdm.write(self.task.describe(stats))

    def summary(self) -> dict[str, Any]:
        return {
            "epochs": self.epoch,
            "steps": self.global_step,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val,
            "best_metrics": self.best_metrics,
            "stop_reason": self.stop_reason,
            "elapsed_s": self.elapsed,
            "train_seconds": self.train_seconds,
            "output_dir": str(self.output_dir),
        }
