"""``equidyn train CONFIG.yaml`` and ``equidyn evaluate MODEL DATAFILE``.

``train`` reads a YAML config (see :mod:`equidyn.train.config`; ``builtin:quickstart`` and
``builtin:nequip`` name packaged examples), loads and splits the data, fits reference energies
and the force scale on the training set, trains, evaluates the best model on the test set and
writes everything to ``training.output_dir``. ``--resume`` continues from
``output_dir/checkpoint.pt``. Ctrl-C saves a resumable checkpoint and exits with status 130.

Under ``torchrun --nproc_per_node N -m equidyn train CONFIG.yaml`` the same command trains
over N processes (data parallel, ``gloo``: the potential trainer runs on the CPU; see
:mod:`equidyn.train.distributed` and the distributed training guide): ``batch_size`` stays the
number of structures per optimiser step, split between the processes; rank 0 alone prints and
writes files, and the result is the model one process trains, up to the order of summation.

``evaluate`` loads a model file and prints energy / force (/ stress) MAE and RMSE on a data
file (any ASE-readable file with labels, or ``builtin:cuau-emt[:N]``).

>>> print(format_metrics({"forces_mae": 31.5, "forces_rmse": 42.25}))
quantity              MAE      RMSE
forces (meV/Å)    31.5000   42.2500
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import torch

__all__ = ["train_main", "evaluate_main", "run_training", "format_metrics"]


def format_metrics(metrics: dict[str, float]) -> str:
    """A small table of MAE / RMSE per quantity.

    >>> print(format_metrics({"energy_mae": 1.0, "energy_rmse": 2.0}))
    quantity              MAE      RMSE
    energy (meV/atom)  1.0000    2.0000
    """
    units = {"energy": "energy (meV/atom)", "forces": "forces (meV/Å)", "stress": "stress (meV/Å³)"}
    lines = [f"{'quantity':<17} {'MAE':>7} {'RMSE':>9}"]
    for key, label in units.items():
        if f"{key}_mae" in metrics:
            lines.append(
                f"{label:<17} {metrics[key + '_mae']:>7.4f} {metrics[key + '_rmse']:>9.4f}"
            )
    return "\n".join(lines)


def run_training(
    config: Any, resume: bool = False, verbose: bool = True
) -> tuple[dict[str, Any], dict[str, float] | None]:
    """Run a whole training from a :class:`~equidyn.train.config.Config`.

    Returns ``(summary, test_metrics)``; ``test_metrics`` is ``None`` when the run was
    interrupted (it can be resumed). Launched by torchrun (``WORLD_SIZE`` > 1), it joins the
    process group, trains over all processes and leaves the group at the end; every rank
    returns the same results.
    """
    from equidyn.train.distributed import current_context, init_distributed

    joined = current_context() is None
    ctx = init_distributed(backend="gloo")  # None in one process
    joined = joined and ctx is not None
    try:
        return _run_training(config, resume, verbose and (ctx is None or ctx.is_main), ctx)
    finally:
        if joined:
            torch.distributed.destroy_process_group()


def _run_training(
    config: Any, resume: bool, verbose: bool, ctx: Any
) -> tuple[dict[str, Any], dict[str, float] | None]:
    from equidyn._io import load_checkpoint
    from equidyn.data.io import type_map_numbers
    from equidyn.data.split import split_indices
    from equidyn.models.potential import Potential
    from equidyn.train.datasets import load_structures
    from equidyn.train.potential_task import potential_trainer
    from equidyn.train.trainer import build_potential, model_r_max

    say = print if verbose else (lambda *a, **k: None)
    d, t = config.data, config.training
    torch.manual_seed(t.seed)
    r_max = model_r_max(config.model_class, config.model)
    say(f"loading {d.source} (r_max {r_max} Å) ...")
    if ctx is not None and not ctx.is_main:
        ctx.barrier()  # rank 0 fills the cache of a built-in set first
    graphs = load_structures(
        d.source,
        r_max,
        n_structures=d.n_structures,
        seed=d.split_seed,
        energy_key=d.energy_key,
        forces_key=d.forces_key,
        stress_key=d.stress_key,
        type_map=d.type_map,
        cache_dir=d.cache_dir,
    )
    if ctx is not None and ctx.is_main:
        ctx.barrier()
    tr, va, te = split_indices(len(graphs), d.n_train, d.n_val, d.n_test, seed=d.split_seed)
    train, val, test = ([graphs[i] for i in idx] for idx in (tr, va, te))
    say(f"{len(graphs)} structures: {len(train)} train, {len(val)} validation, {len(test)} test")
    type_numbers = type_map_numbers(d.type_map) if d.type_map is not None else None
    checkpoint = None
    from pathlib import Path

    ckpt_path = Path(t.output_dir) / "checkpoint.pt"
    if ctx is not None:  # rank 0 reads the checkpoint and sends it to every rank
        found = resume and ctx.is_main and ckpt_path.is_file()
        checkpoint = ctx.broadcast(load_checkpoint(ckpt_path) if found else None)
    elif resume and ckpt_path.is_file():
        checkpoint = load_checkpoint(ckpt_path)
    if checkpoint is not None:
        potential = Potential.from_dict(checkpoint["potential"])
        epoch, step = checkpoint["epoch"], checkpoint["step_in_epoch"]
        say(f"resuming {ckpt_path} after epoch {epoch}, step {step}")
    else:
        potential = build_potential(config.model_class, config.model, train, type_numbers)
    trainer = potential_trainer(potential, train, val, t, test_graphs=test, run_config=config)
    n_params = sum(p.numel() for p in potential.parameters())
    say(f"{config.model_class}: {n_params} parameters, species {potential.atomic_numbers}")
    if ctx is not None:
        say(f"data parallel over {ctx.world_size} processes ({ctx.backend})")
    summary = trainer.fit(resume=checkpoint is not None)
    say(summary["stop_reason"])
    if summary["stop_reason"].startswith("interrupted"):
        return summary, None
    if ctx is None:
        metrics = trainer.task.finish()
    else:  # rank 0 evaluates the best model and writes the results
        metrics = ctx.broadcast(trainer.task.finish() if ctx.is_main else None)
    which, n = metrics["set"], metrics["n_structures"]
    say(f"best epoch {summary['best_epoch']}; {which} set ({n} structures):")
    say(format_metrics(metrics))
    say(f"model: {trainer.task.model_path}   log: {trainer.output_dir / 'log.csv'}")
    return summary, metrics


def train_main(argv: list[str]) -> int:
    """``equidyn train CONFIG.yaml [--resume] [--output-dir DIR] [--epochs N]``."""
    from equidyn.train.config import load_config

    parser = argparse.ArgumentParser(
        prog="equidyn train", description="Train an interatomic potential from a YAML config."
    )
    parser.add_argument("config", help="YAML file, or builtin:quickstart / builtin:nequip")
    parser.add_argument("--resume", action="store_true", help="continue output_dir/checkpoint.pt")
    parser.add_argument("--output-dir", help="override training.output_dir")
    parser.add_argument("--epochs", type=int, help="override training.epochs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.output_dir:
            config.training.output_dir = args.output_dir
        if args.epochs is not None:
            config.training.epochs = args.epochs
        if args.no_progress:
            config.training.progress = False
        summary, metrics = run_training(config, resume=args.resume)
    except (ValueError, FileNotFoundError, TypeError) as e:
        print(f"equidyn train: error: {e}", file=sys.stderr)
        return 1
    return 130 if metrics is None else 0


def evaluate_main(argv: list[str]) -> int:
    """``equidyn evaluate MODEL DATAFILE``: energy/force MAE and RMSE of a saved model."""
    parser = argparse.ArgumentParser(
        prog="equidyn evaluate", description="Evaluate a saved model on a labelled data file."
    )
    parser.add_argument("model", help="model file (model.pt written by equidyn train)")
    parser.add_argument("data", help="data file ASE can read, or builtin:cuau-emt[:N]")
    parser.add_argument("--energy-key", default="energy")
    parser.add_argument("--forces-key", default="forces")
    parser.add_argument("--stress-key", default="stress")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--float64", action="store_true", help="evaluate in float64")
    args = parser.parse_args(argv)
    from equidyn.models.potential import describe_unknown_species, load_model
    from equidyn.train.datasets import load_structures
    from equidyn.train.potential_task import evaluate_potential

    try:
        potential = load_model(args.model)
        scale = potential.scale  # a buffer
        dtype = torch.float64 if args.float64 else scale.dtype
        potential = potential.to(dtype)
        graphs = load_structures(
            args.data,
            potential.r_max,
            energy_key=args.energy_key or None,
            forces_key=args.forces_key or None,
            stress_key=args.stress_key or None,
            dtype=dtype,
        )
        for k, g in enumerate(graphs):
            problem = describe_unknown_species(potential, g)
            if problem:
                raise ValueError(f"{args.data}, structure {k}: {problem}")
        res = evaluate_potential(potential, graphs, args.batch_size)
    except (ValueError, FileNotFoundError) as e:
        print(f"equidyn evaluate: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.model} on {args.data} ({len(graphs)} structures):")
    print(format_metrics(res["metrics"]))
    return 0
