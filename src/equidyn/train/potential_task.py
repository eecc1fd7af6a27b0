r"""Training interatomic potentials: the :class:`PotentialTask` of the one trainer.

One epoch visits the training structures in an order drawn from a generator seeded by
``(seed, epoch)``, so the order does not depend on anything that happened before. A batch's
loss is the weighted sum of :mod:`equidyn.train.losses` (energy per atom, forces, stress); the
validation loss with the same weights selects the best model, which is written to
``model.pt`` (loadable with :func:`equidyn.models.load_model`). :meth:`PotentialTask.finish`
evaluates the best model on the test set (else the validation set) and writes
``test_metrics.json`` and ``plots/*.png``.

:func:`potential_trainer` builds the task and the :class:`~equidyn.train.trainer.Trainer`
together, which is what ``equidyn train`` runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from equidyn._io import atomic_write_text
from equidyn.graph import AtomicGraph, batch_graphs
from equidyn.models.potential import Potential, load_model, save_model
from equidyn.train.config import Config, TrainingConfig
from equidyn.train.datasets import batches
from equidyn.train.distributed import balanced_partition
from equidyn.train.losses import ErrorAccumulator, loss_terms, weighted_loss
from equidyn.train.task import EpochStats
from equidyn.train.trainer import DTYPES, Trainer

__all__ = ["PotentialTask", "evaluate_potential", "potential_trainer"]


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
    kept: dict[str, list[torch.Tensor]] = {"pf": [], "rf": [], "pe": [], "re": []}
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
                _keep(kept, out, batch)
    finally:
        potential.train(was_training)
    result: dict[str, Any] = {"metrics": acc.metrics()}
    if weights is not None:
        result["loss"] = total_loss / max(n_batches, 1)
    if kept["pf"]:
        result["forces"] = (torch.cat(kept["pf"]), torch.cat(kept["rf"]))
    if kept["pe"]:
        result["energy_per_atom"] = (torch.cat(kept["pe"]), torch.cat(kept["re"]))
    return result


def _keep(kept: dict[str, list[torch.Tensor]], out: dict[str, torch.Tensor], batch: Any) -> None:
    """Append a batch's predicted and reference forces and energies per atom to ``kept``."""
    if batch.forces is not None:
        kept["pf"].append(out["forces"])  # [n_atoms, 3]
        kept["rf"].append(batch.forces)
    if batch.energy is not None:
        n = batch.num_atoms.to(out["energy"].dtype)
        kept["pe"].append(out["energy"] / n)  # [n_structures]
        kept["re"].append(batch.energy / n)


def _potential(model: nn.Module) -> Potential:
    if not isinstance(model, Potential):
        raise TypeError(f"PotentialTask trains a Potential, got {type(model).__name__}")
    return model


class PotentialTask:
    """Energies, forces (and stresses) of labelled structures (see the module docstring).

    Args:
        train_graphs, val_graphs: labelled single-structure graphs (edges of ``r_max``),
            converted to ``config.dtype``.
        config: ``batch_size``, the loss weights, ``seed``, ``dtype``, ``output_dir`` and
            ``plots`` are read from it.
        test_graphs: evaluated with the best model by :meth:`finish` (optional).
    """

    selection_metric = "loss"
    best_splits: tuple[str, ...] = ()

    def __init__(
        self,
        train_graphs: Sequence[AtomicGraph],
        val_graphs: Sequence[AtomicGraph],
        config: TrainingConfig,
        test_graphs: Sequence[AtomicGraph] = (),
    ) -> None:
        if len(train_graphs) == 0:
            raise ValueError("the training set is empty")
        if len(val_graphs) == 0:
            raise ValueError("the validation set is empty (n_val must be >= 1)")
        self.config = config
        self.dtype = DTYPES[config.dtype]
        self.train_graphs = [g.to(dtype=self.dtype) for g in train_graphs]
        self.val_graphs = [g.to(dtype=self.dtype) for g in val_graphs]
        self.test_graphs = [g.to(dtype=self.dtype) for g in test_graphs]
        self.output_dir = Path(config.output_dir)
        self.weights = {
            "energy": config.energy_weight,
            "forces": config.force_weight,
            "stress": config.stress_weight,
        }
        self.compute_stress = config.stress_weight > 0 and all(
            g.stress is not None and bool(g.pbc.all()) for g in self.train_graphs
        )

    @property
    def model_path(self) -> Path:
        return self.output_dir / "model.pt"

    def train_batches(self, epoch: int, generator: torch.Generator) -> list[list[AtomicGraph]]:
        """Groups of ``batch_size`` structures in an order seeded by ``(seed, epoch)``."""
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train_graphs), generator=g).tolist()
        return batches(self.train_graphs, self.config.batch_size, order)

    def loss(self, model: nn.Module, group: Sequence[AtomicGraph]) -> tuple[torch.Tensor, float]:
        batch = batch_graphs(group)
        out = model(batch, compute_forces=True, compute_stress=self.compute_stress)
        return weighted_loss(loss_terms(out, _targets(batch)), self.weights), 1.0

    # ------------------------------------------------------------------ several processes
    def split_batch(self, group: Sequence[AtomicGraph], parts: int) -> list[list[AtomicGraph]]:
        """``group`` cut into ``parts`` with near-equal atom counts (see
        :func:`~equidyn.train.distributed.balanced_partition`)."""
        sizes = [g.num_nodes for g in group]
        return [[group[i] for i in idx] for idx in balanced_partition(sizes, parts)]

    def part_loss(
        self, model: nn.Module, part: Sequence[AtomicGraph], group: Sequence[AtomicGraph]
    ) -> tuple[torch.Tensor, float]:
        r"""The share of ``part`` in ``loss(model, group)``.

        Each mean of the loss (energies and stresses over the :math:`B` structures of
        ``group``, force components over its :math:`3N` atoms) becomes the sum over ``part``
        divided by the count over ``group``: the part's mean times :math:`B_r / B` or
        :math:`N_r / N`.
        """
        if not part:  # nothing to do, but the gradient reduction needs every rank
            batch = batch_graphs(list(group[:1]))
            out = model(batch, compute_forces=True, compute_stress=self.compute_stress)
            return 0.0 * weighted_loss(loss_terms(out, _targets(batch)), self.weights), 1.0
        batch = batch_graphs(list(part))
        out = model(batch, compute_forces=True, compute_stress=self.compute_stress)
        per_structure = len(part) / len(group)
        per_atom = sum(g.num_nodes for g in part) / sum(g.num_nodes for g in group)
        share = {"energy": per_structure, "stress": per_structure, "forces": per_atom}
        terms = loss_terms(out, _targets(batch))
        return weighted_loss({k: v * share[k] for k, v in terms.items()}, self.weights), 1.0

    def evaluation_sums(
        self, model: nn.Module, split: str, rank: int, world_size: int
    ) -> dict[str, float]:
        """Error sums and batch losses of rank ``rank``'s share of the batches of ``split``
        (the batches :meth:`evaluate` uses, shared out by atom count)."""
        groups = batches(self._split(split), self.config.batch_size)
        mine = balanced_partition([sum(g.num_nodes for g in b) for b in groups], world_size)
        potential = _potential(model)
        acc = ErrorAccumulator()
        loss_sum = 0.0
        was_training = potential.training
        potential.eval()
        try:
            for k in mine[rank]:
                batch = batch_graphs(groups[k])
                out = potential(batch, compute_forces=True, compute_stress=self.compute_stress)
                out = {key: v.detach() for key, v in out.items()}
                ref = _targets(batch)
                acc.add(out, ref)
                loss_sum += float(weighted_loss(loss_terms(out, ref), self.weights))
        finally:
            potential.train(was_training)
        return {**acc.sums(), "loss_sum": loss_sum, "loss_batches": float(len(mine[rank]))}

    def metrics_from_sums(self, sums: dict[str, float]) -> dict[str, float]:
        """What :meth:`evaluate` returns, from the :meth:`evaluation_sums` of all ranks."""
        metrics = ErrorAccumulator.from_sums(sums).metrics()
        loss = sums.get("loss_sum", 0.0) / max(sums.get("loss_batches", 0.0), 1.0)
        return {"loss": float(loss), **dict(sorted(metrics.items()))}

    def _split(self, split: str) -> list[AtomicGraph]:
        graphs = {"val": self.val_graphs, "test": self.test_graphs}.get(split)
        if not graphs:
            raise ValueError(f"no {split!r} split; expected 'val' or 'test' (if given)")
        return graphs

    # ------------------------------------------------------------------ one process
    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        """``{"loss": weighted loss, "energy_mae": ..., ...}`` (errors in meV)."""
        graphs = self._split(split)
        res = evaluate_potential(
            _potential(model),
            graphs,
            self.config.batch_size,
            compute_stress=self.compute_stress,
            weights=self.weights,
        )
        return {"loss": float(res["loss"]), **dict(sorted(res["metrics"].items()))}

    def log_row(self, stats: EpochStats) -> dict[str, Any]:
        val = stats.metrics["val"]
        row: dict[str, Any] = {
            "epoch": stats.epoch,
            "lr": stats.lr,
            "train_loss": stats.train_loss,
            "val_loss": val["loss"],
        }
        row.update({f"val_{k}": v for k, v in val.items() if k != "loss"})
        row["time_s"] = round(stats.elapsed, 3)
        return row

    def describe(self, stats: EpochStats) -> str:
        val = stats.metrics["val"]
        return (
            f"epoch {stats.epoch:4d}  lr {stats.lr:.2e}  train {stats.train_loss:.4g}  "
            f"val {val['loss']:.4g}  E {val.get('energy_mae', math.nan):.2f} "
            f"meV/atom  F {val.get('forces_mae', math.nan):.1f} meV/Å"
            + ("  *" if stats.improved else "")
        )

    def on_best(self, model: nn.Module) -> None:
        """Write the best weights (the EMA weights, when on) to ``model.pt``."""
        save_model(_potential(model), self.model_path)

    def checkpoint_extra(self, model: nn.Module) -> dict[str, Any]:
        return {"potential": _potential(model).to_dict()}  # how resume and load_model rebuild it

    # ------------------------------------------------------------------ after training
    def best_potential(self) -> Potential:
        """The best model written so far (``model.pt``)."""
        return load_model(self.model_path).to(self.dtype)

    def finish(self, plots: bool | None = None) -> dict[str, Any]:
        """Evaluate the best model on the test set (else validation set), write
        ``test_metrics.json`` and the plots. Returns the metrics."""
        plots = self.config.plots if plots is None else plots
        graphs = self.test_graphs or self.val_graphs
        which = "test" if self.test_graphs else "val"
        res = evaluate_potential(
            self.best_potential(), graphs, self.config.batch_size, keep_predictions=True
        )
        metrics = {"set": which, "n_structures": len(graphs), **res["metrics"]}
        atomic_write_text(
            json.dumps(metrics, indent=2) + "\n", self.output_dir / "test_metrics.json"
        )
        if plots:
            self._plots(res, metrics)
        return metrics

    def _plots(self, res: dict[str, Any], metrics: dict[str, Any]) -> None:
        from equidyn.train.plots import plot_loss_curves, plot_parity

        plot_dir, which = self.output_dir / "plots", metrics["set"]
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


def potential_trainer(
    potential: Potential,
    train_graphs: Sequence[AtomicGraph],
    val_graphs: Sequence[AtomicGraph],
    config: TrainingConfig,
    test_graphs: Sequence[AtomicGraph] = (),
    run_config: Config | None = None,
    step_callback: Callable[[Trainer[PotentialTask], int], None] | None = None,
) -> Trainer[PotentialTask]:
    """The :class:`Trainer` of ``potential`` (converted to ``config.dtype``) on its
    :class:`PotentialTask`; ``trainer.task.finish()`` evaluates the best model afterwards."""
    task = PotentialTask(train_graphs, val_graphs, config, test_graphs)
    model = potential.to(task.dtype)
    return Trainer(model, task, config, run_config=run_config, step_callback=step_callback)
