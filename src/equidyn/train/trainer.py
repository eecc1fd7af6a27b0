r"""The training loop of interatomic potentials: resumable, interruptible, logged.

One epoch visits the training structures in an order drawn from a generator seeded by
``(seed, epoch)``, so the order does not depend on anything that happened before: a run that is
interrupted and resumed sees exactly the batches an uninterrupted run sees. Each step minimises
the weighted loss of :mod:`equidyn.train.losses` with Adam (optionally AMSGrad) and updates an
exponential moving average (EMA) of the weights. After each epoch the EMA weights are
validated; ``ReduceLROnPlateau`` and early stopping watch the validation loss, and the best EMA
weights are written to ``model.pt`` (loadable with :func:`equidyn.models.load_model`).

Files in ``output_dir``: ``checkpoint.pt`` (everything needed to resume: weights, optimiser,
scheduler, EMA, counters, position inside the epoch; written atomically after every epoch and
on Ctrl-C), ``model.pt`` (best model), ``log.csv`` (one row per epoch), ``config.yaml`` (the
run's configuration, if given), ``plots/*.png`` and ``test_metrics.json``.

Ctrl-C during :meth:`Trainer.fit` finishes the current optimiser step, writes the checkpoint
with the position inside the epoch and returns; ``fit(resume=True)`` continues from there. A
second Ctrl-C interrupts immediately (the previous checkpoint stays intact: writes are atomic).
"""

from __future__ import annotations

import inspect
import json
import math
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from equidyn.graph import AtomicGraph, batch_graphs
from equidyn.models.potential import Potential
from equidyn.models.registry import build_model, constructor_arguments, resolve_model
from equidyn.train.checkpoint import atomic_save, atomic_write_text, load_checkpoint
from equidyn.train.config import Config, TrainingConfig
from equidyn.train.datasets import batches
from equidyn.train.ema import ExponentialMovingAverage
from equidyn.train.logging import CSVLogger
from equidyn.train.losses import ErrorAccumulator, loss_terms, weighted_loss

__all__ = ["Trainer", "build_potential", "evaluate_potential", "model_r_max", "DTYPES"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


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


def _targets(batch: AtomicGraph) -> dict[str, torch.Tensor | None]:
    return {
        "energy": batch.energy,
        "forces": batch.forces,
        "stress": batch.stress,
        "num_atoms": batch.num_atoms,
    }


def evaluate_potential(
    potential: Potential,
    graphs: Sequence[AtomicGraph],
    batch_size: int = 10,
    compute_stress: bool | None = None,
    weights: dict[str, float] | None = None,
    keep_predictions: bool = False,
) -> dict[str, Any]:
    """Errors of ``potential`` on labelled ``graphs``.

    Returns ``{"metrics": {energy_mae, energy_rmse, forces_mae, ...} (meV), "loss": float
    (weighted, if ``weights``), "forces": (pred, ref) tensors if keep_predictions}``.
    """
    if len(graphs) == 0:
        raise ValueError("evaluate_potential needs at least one structure")
    if compute_stress is None:
        compute_stress = all(g.stress is not None and bool(g.pbc.all()) for g in graphs)
    acc = ErrorAccumulator()
    total_loss, n_batches = 0.0, 0
    pred_f, ref_f, pred_e, ref_e = [], [], [], []
    was_training = potential.training
    potential.eval()
    try:
        for group in batches(graphs, batch_size):
            batch = batch_graphs(group)
            out = potential(batch, compute_forces=True, compute_stress=compute_stress)
            out = {k: v.detach() for k, v in out.items()}
            ref = _targets(batch)
            acc.add(out, ref)
            if weights is not None:
                total_loss += float(weighted_loss(loss_terms(out, ref), weights))
                n_batches += 1
            if keep_predictions:
                if batch.forces is not None:
                    pred_f.append(out["forces"])
                    ref_f.append(batch.forces)
                if batch.energy is not None:
                    n = batch.num_atoms.to(out["energy"].dtype)
                    pred_e.append(out["energy"] / n)
                    ref_e.append(batch.energy / n)
    finally:
        potential.train(was_training)
    result: dict[str, Any] = {"metrics": acc.metrics()}
    if weights is not None:
        result["loss"] = total_loss / max(n_batches, 1)
    if keep_predictions:
        if pred_f:
            result["forces"] = (torch.cat(pred_f), torch.cat(ref_f))
        if pred_e:
            result["energy_per_atom"] = (torch.cat(pred_e), torch.cat(ref_e))
    return result


class Trainer:
    """Fits a :class:`Potential` to labelled structures (see the module docstring).

    Args:
        potential: the model to train (already built, e.g. by :func:`build_potential`).
        train_graphs, val_graphs: labelled single-structure graphs (edges of ``r_max``).
        config: optimisation settings.
        test_graphs: evaluated with the best model at the end (optional).
        run_config: the whole run's :class:`Config`, saved next to the checkpoints.
        step_callback: called as ``step_callback(trainer, global_step)`` after every
            optimiser step (e.g. custom logging; calling :meth:`request_stop` ends the run
            like Ctrl-C).
    """

    def __init__(
        self,
        potential: Potential,
        train_graphs: Sequence[AtomicGraph],
        val_graphs: Sequence[AtomicGraph],
        config: TrainingConfig,
        test_graphs: Sequence[AtomicGraph] = (),
        run_config: Config | None = None,
        step_callback: Callable[[Trainer, int], None] | None = None,
    ) -> None:
        if len(train_graphs) == 0:
            raise ValueError("the training set is empty")
        if len(val_graphs) == 0:
            raise ValueError("the validation set is empty (n_val must be >= 1)")
        self.config = config
        self.dtype = DTYPES[config.dtype]
        self.potential = potential.to(self.dtype)
        self.train_graphs = [g.to(dtype=self.dtype) for g in train_graphs]
        self.val_graphs = [g.to(dtype=self.dtype) for g in val_graphs]
        self.test_graphs = [g.to(dtype=self.dtype) for g in test_graphs]
        self.run_config = run_config
        self.step_callback = step_callback
        self.output_dir = Path(config.output_dir)
        self.weights = {
            "energy": config.energy_weight,
            "forces": config.force_weight,
            "stress": config.stress_weight,
        }
        self.compute_stress = config.stress_weight > 0 and all(
            g.stress is not None and bool(g.pbc.all()) for g in self.train_graphs
        )
        params = [p for p in self.potential.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            params, lr=config.lr, amsgrad=config.amsgrad, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer,
            mode="min",
            factor=config.lr_factor,
            patience=config.lr_patience,
            min_lr=config.min_lr,
        )
        self.ema = (
            ExponentialMovingAverage(params, config.ema_decay)
            if config.ema_decay is not None
            else None
        )
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # completed steps of the current epoch
        self.global_step = 0
        self.best_val = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.elapsed = 0.0
        self._epoch_loss = 0.0
        self._stop_requested = False
        self.stop_reason = ""

    # ------------------------------------------------------------------ state
    @property
    def checkpoint_path(self) -> Path:
        return self.output_dir / "checkpoint.pt"

    @property
    def model_path(self) -> Path:
        return self.output_dir / "model.pt"

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": "equidyn-training-checkpoint",
            "potential": self.potential.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best_val": self.best_val,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "elapsed": self.elapsed,
            "epoch_loss": self._epoch_loss,
            "training_config": dict(vars(self.config)),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != "equidyn-training-checkpoint":
            raise ValueError("not an equidyn training checkpoint")
        self.potential.load_state_dict(state["potential"]["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.best_val = float(state["best_val"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.elapsed = float(state["elapsed"])
        self._epoch_loss = float(state["epoch_loss"])

    def save_checkpoint(self) -> None:
        """Write ``checkpoint.pt`` atomically."""
        atomic_save(self.state_dict(), self.checkpoint_path)

    def request_stop(self) -> None:
        """Stop after the current optimiser step, saving a resumable checkpoint."""
        self._stop_requested = True

    # ------------------------------------------------------------------ steps
    def _epoch_order(self, epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.train_graphs), generator=g).tolist()

    def train_step(self, group: Sequence[AtomicGraph]) -> float:
        """One optimiser step on the structures ``group``; returns the loss."""
        self.potential.train()
        batch = batch_graphs(group)
        out = self.potential(batch, compute_forces=True, compute_stress=self.compute_stress)
        loss = weighted_loss(loss_terms(out, _targets(batch)), self.weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.potential.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(p for p in self.potential.parameters() if p.requires_grad)
        return float(loss.detach())

    def _params(self) -> list[torch.nn.Parameter]:
        return [p for p in self.potential.parameters() if p.requires_grad]

    def validate(self) -> dict[str, Any]:
        """Errors on the validation set with the EMA weights."""
        if self.ema is not None:
            self.ema.store_and_swap(self._params())
        try:
            return evaluate_potential(
                self.potential,
                self.val_graphs,
                self.config.batch_size,
                compute_stress=self.compute_stress,
                weights=self.weights,
            )
        finally:
            if self.ema is not None:
                self.ema.restore(self._params())

    def save_best_model(self) -> None:
        """Write the current EMA weights (or raw weights without EMA) to ``model.pt``."""
        from equidyn.models.potential import save_model

        if self.ema is not None:
            self.ema.store_and_swap(self._params())
        try:
            save_model(self.potential, self.model_path)
        finally:
            if self.ema is not None:
                self.ema.restore(self._params())

    # ------------------------------------------------------------------ loop
    def fit(self, resume: bool = False) -> dict[str, Any]:
        """Train until ``epochs``, early stopping, ``max_time_s`` or Ctrl-C.

        With ``resume=True`` and an existing ``checkpoint.pt`` in ``output_dir``, continue it
        exactly. Returns a summary (epochs done, best validation loss and metrics, stop reason).
        """
        self.output_dir.mkdir(parents=True, exist_ok=True)
        resumed = False
        if resume and self.checkpoint_path.is_file():
            self.load_state_dict(load_checkpoint(self.checkpoint_path))
            resumed = True
        if self.run_config is not None:
            import yaml

            atomic_write_text(
                yaml.safe_dump(self.run_config.to_dict(), sort_keys=False),
                self.output_dir / "config.yaml",
            )
        self._stop_requested = False
        self.stop_reason = ""
        previous_handler = None
        interrupts = {"n": 0}

        def on_sigint(signum: int, frame: Any) -> None:
            interrupts["n"] += 1
            if interrupts["n"] > 1:
                raise KeyboardInterrupt
            self._stop_requested = True

        try:
            previous_handler = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:  # not in the main thread: no handler, Ctrl-C is handled by Python
            previous_handler = None
        log = CSVLogger(self.output_dir / "log.csv", resume=resumed)
        try:
            self._loop(log)
        finally:
            log.close()
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
        return self.summary()

    def _loop(self, log: CSVLogger) -> None:
        from tqdm.auto import tqdm

        cfg = self.config
        start = time.perf_counter() - self.elapsed
        while self.epoch < cfg.epochs:
            order = self._epoch_order(self.epoch)
            groups = batches(self.train_graphs, cfg.batch_size, order)
            bar = tqdm(
                total=len(groups),
                initial=self.step_in_epoch,
                desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                disable=not cfg.progress,
                leave=False,
                dynamic_ncols=True,
            )
            with bar:
                while self.step_in_epoch < len(groups):
                    loss = self.train_step(groups[self.step_in_epoch])
                    self._epoch_loss += loss
                    self.step_in_epoch += 1
                    self.global_step += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{self._epoch_loss / self.step_in_epoch:.4g}")
                    if self.step_callback is not None:
                        self.step_callback(self, self.global_step)
                    if self._stop_requested:
                        break
            self.elapsed = time.perf_counter() - start
            if self._stop_requested and self.step_in_epoch < len(groups):
                self.save_checkpoint()
                self.stop_reason = (
                    f"interrupted in epoch {self.epoch + 1} after step {self.step_in_epoch}; "
                    f"resume with --resume"
                )
                return
            train_loss = self._epoch_loss / max(len(groups), 1)
            val = self.validate()
            val_loss = float(val["loss"])
            self.epoch += 1
            self.step_in_epoch = 0
            self._epoch_loss = 0.0
            self.scheduler.step(val_loss)
            improved = val_loss < self.best_val
            if improved:
                self.best_val, self.best_epoch, self.bad_epochs = val_loss, self.epoch, 0
                self.save_best_model()
            else:
                self.bad_epochs += 1
            row: dict[str, Any] = {
                "epoch": self.epoch,
                "lr": self.optimizer.param_groups[0]["lr"],
                "train_loss": train_loss,
                "val_loss": val_loss,
            }
            row.update({f"val_{k}": v for k, v in sorted(val["metrics"].items())})
            row["time_s"] = round(self.elapsed, 3)
            log.log(row)
            self.last_row = row
            if cfg.log_epochs:
                msg = (
                    f"epoch {self.epoch:4d}  lr {row['lr']:.2e}  train {train_loss:.4g}  "
                    f"val {val_loss:.4g}  E {val['metrics'].get('energy_mae', math.nan):.2f} "
                    f"meV/atom  F {val['metrics'].get('forces_mae', math.nan):.1f} meV/Å"
                    + ("  *" if improved else "")
                )
                tqdm.write(msg)
            self.save_checkpoint()
            if (
                cfg.early_stopping_patience is not None
                and self.bad_epochs >= cfg.early_stopping_patience
            ):
                self.stop_reason = f"early stopping: no improvement for {self.bad_epochs} epochs"
                return
            if self._stop_requested:
                self.stop_reason = f"interrupted after epoch {self.epoch}; resume with --resume"
                return
            if cfg.max_time_s is not None and self.elapsed >= cfg.max_time_s:
                self.stop_reason = f"time limit of {cfg.max_time_s:g} s reached"
                return
        self.stop_reason = f"finished {cfg.epochs} epochs"

    def summary(self) -> dict[str, Any]:
        return {
            "epochs": self.epoch,
            "steps": self.global_step,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val,
            "stop_reason": self.stop_reason,
            "elapsed_s": self.elapsed,
            "output_dir": str(self.output_dir),
        }

    # ------------------------------------------------------------------ after training
    def best_potential(self) -> Potential:
        """The best model written so far (``model.pt``)."""
        from equidyn.models.potential import load_model

        return load_model(self.model_path).to(self.dtype)

    def finish(self, plots: bool | None = None) -> dict[str, Any]:
        """Evaluate the best model on the test set (else validation set), write
        ``test_metrics.json`` and the plots. Returns the metrics."""
        plots = self.config.plots if plots is None else plots
        best = self.best_potential()
        graphs = self.test_graphs or self.val_graphs
        which = "test" if self.test_graphs else "val"
        res = evaluate_potential(best, graphs, self.config.batch_size, keep_predictions=True)
        metrics = {"set": which, "n_structures": len(graphs), **res["metrics"]}
        atomic_write_text(
            json.dumps(metrics, indent=2) + "\n", self.output_dir / "test_metrics.json"
        )
        if plots:
            from equidyn.train.plots import plot_loss_curves, plot_parity

            plot_dir = self.output_dir / "plots"
            plot_loss_curves(self.output_dir / "log.csv", plot_dir / "loss.png")
            if "forces" in res:
                p, r = res["forces"]
                plot_parity(
                    p, r, plot_dir / "force_parity.png", quantity="force component", unit="eV/Å",
                    title=f"forces, {which} set (MAE {metrics['forces_mae']:.1f} meV/Å)",
                )  # fmt: skip
            if "energy_per_atom" in res:
                p, r = res["energy_per_atom"]
                plot_parity(
                    p, r, plot_dir / "energy_parity.png", quantity="energy per atom", unit="eV",
                    title=f"energy, {which} set (MAE {metrics['energy_mae']:.2f} meV/atom)",
                )  # fmt: skip
        return metrics
