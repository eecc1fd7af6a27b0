"""``equidyn nbody``: train a model on the charged N-body task by the EGNN protocol.

Protocol (Satorras, Hoogeboom & Welling, *E(n) Equivariant Graph Neural Networks*, ICML 2021;
details in ``docs/nbody.md``): input frame 30 (positions, velocities, charges) → positions at
frame 40; 3000 training, 2000 validation, 2000 test trajectories; Adam (lr 5e-4, weight
decay 1e-12), batch 100; the reported number is the test MSE at the epoch of best
validation MSE. Training runs on :class:`equidyn.train.Trainer` (the task:
:class:`~equidyn.experiments.nbody_task.NBodyTask`). Every run writes to ``--out``:

* ``log.csv`` — one row per evaluation (epoch, train loss, valid/test MSE, seconds/epoch);
* ``checkpoint.pt`` — model, optimiser, epoch, best weights, RNG state, position inside the
  epoch; written atomically after every epoch and on Ctrl-C, so a rerun with the same
  ``--out`` resumes exactly where it stopped (``--fresh`` starts over);
* ``result.json`` — the final numbers, next to the published ones
  (:data:`equidyn.experiments.published.NBODY_TEST_MSE`); ``trajectories.png`` — true vs
  predicted trajectories.

``--task rollout`` trains on every (frame t → t + 10) pair with a loss on positions and
velocities, then chains 10 predictions on long held-out trajectories and reports the
position error and the energy drift after each (EGNN with a velocity head, or the neural ODE).

Example: ``equidyn nbody --model egnn_vel --epochs 100 --out runs/egnn``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from equidyn._io import atomic_write_text, load_checkpoint
from equidyn.dynamics.data import DRAWS, ChargedNBodyDataset, load_charged_nbody
from equidyn.dynamics.force_fields import PairForceField
from equidyn.dynamics.neural_ode import NeuralODE
from equidyn.experiments.nbody_models import DEFAULT_SIZES, MODELS, _predict, build_model
from equidyn.experiments.nbody_task import equivariance_mse, rollout, train
from equidyn.experiments.published import NBODY_TEST_MSE
from equidyn.models.particles import ParticleModel

__all__ = ["main"]

#: the models that can be built with a velocity head for ``--task rollout``
STEERABLE = ("segnn", "tfn", "se3_transformer")
#: settings that may change between a run and its resumption: epoch budget, evaluation, output
RESUMABLE = ("fresh", "no_plot", "out", "threads", "epochs", "eval_every", "no_compile")


def _plot(
    model: ParticleModel, data: dict[str, torch.Tensor], path: Path, n_systems: int = 3
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos, vel = data["pos"][:n_systems].float(), data["vel"][:n_systems].float()
    q = data["charges"][:n_systems].float()[..., None]
    with torch.no_grad():
        pred = _predict(model, pos[:, 30], vel[:, 30], q)
    fig, axes = plt.subplots(1, n_systems, figsize=(4 * n_systems, 4))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for b, ax in enumerate(axes):
        for i in range(pos.shape[2]):
            c = colors[i % len(colors)]
            ax.plot(pos[b, 30:41, i, 0], pos[b, 30:41, i, 1], "-", color=c, lw=1)
            ax.plot(pos[b, 30, i, 0], pos[b, 30, i, 1], "o", color=c, ms=4)
            ax.plot(pos[b, 40, i, 0], pos[b, 40, i, 1], "s", color=c, ms=6, mfc="none")
            ax.plot(pred[b, i, 0], pred[b, i, 1], "x", color=c, ms=7)
        ax.set_title(f"test system {b} (x-y)")
        ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle("frame 30 (o) → frame 40: true (□, line = simulated path) vs predicted (×)")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="equidyn nbody", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--model", default="egnn_vel", choices=sorted(MODELS), metavar="MODEL",
                   help=f"one of {sorted(MODELS)}")  # fmt: skip
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--n-train", type=int, default=3000, help="training trajectories (≤ 3000)")
    p.add_argument("--n-valid", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0, help="seed of the model and training order")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the simulated data")
    p.add_argument(
        "--draw",
        choices=DRAWS,
        default="equidyn",
        help="initial states: equidyn's seeded draw, or the EGNN repository's own data set "
        "(its NumPy seed 43 replayed; the published numbers were measured on it). "
        "--task rollout always rolls out on equidyn's long 'rollout' split",
    )
    p.add_argument("--hidden", type=int, default=None, help="width (default 64; pair_ode 32)")
    p.add_argument(
        "--layers", type=int, default=None, help="layers, of the field for ODEs (default 4; 2)"
    )
    p.add_argument(
        "--ode-steps",
        type=int,
        default=None,
        help="ODE models: integration steps over frame 30 -> 40 (default: neural_ode 4, "
        "pair_ode 500)",
    )
    p.add_argument("--clip-grad", type=float, default=None, help="clip the gradient norm")
    p.add_argument(
        "--softening", type=float, default=None, help="pair_ode: softening length of the field"
    )
    p.add_argument("--no-compile", action="store_true", help="ODE models: integrate in eager mode")
    p.add_argument(
        "--init-from",
        default=None,
        help="start from the best weights of another run's checkpoint.pt (fine-tuning)",
    )
    p.add_argument(
        "--trim",
        type=float,
        default=1.0,
        help="train on the trimmed mean: keep this fraction of the best trajectories per batch",
    )
    p.add_argument(
        "--unroll",
        type=int,
        default=1,
        help="--task rollout: train on this many chained predictions (loss on each state)",
    )
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--schedule",
        choices=["constant", "cosine"],
        default="constant",
        help="learning rate: constant (the protocol) or cosine-annealed to 0 over --epochs",
    )
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--augment", action="store_true", help="random rotations of training inputs")
    p.add_argument("--task", choices=["single", "rollout"], default="single")
    p.add_argument("--out", default="runs/nbody")
    p.add_argument("--cache", default=None, help="data cache dir (default $EQUIDYN_CACHE)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (small tensors: 1)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--quick", action="store_true", help="tiny sizes for CI (seconds)")
    p.add_argument("--no-plot", action="store_true")
    return p


def _check_args(args: argparse.Namespace) -> None:
    """Fill in the defaults that depend on the model and ``--quick``; reject bad combinations."""
    for flag in ("epochs", "n_train", "n_valid", "n_test", "hidden", "layers", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    hidden_default, layers_default = DEFAULT_SIZES.get(args.model, (64, 4))
    args.hidden = hidden_default if args.hidden is None else args.hidden
    args.layers = layers_default if args.layers is None else args.layers
    if args.quick:
        args.n_train, args.n_valid, args.n_test = min(args.n_train, 100), 100, 100
        args.epochs = min(args.epochs, 2)
        args.hidden = min(args.hidden, 16)
        if args.model == "pair_ode" and args.ode_steps is None:
            args.ode_steps = 50
    if args.task == "rollout" and args.model not in ("egnn_vel", "neural_ode", *STEERABLE):
        raise ValueError(
            "--task rollout needs a model that predicts velocities "
            f"(egnn_vel, neural_ode, {', '.join(STEERABLE)}), got {args.model!r}"
        )


def _init_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The best weights of a run's checkpoint (else its last ones)."""
    if "state" in ckpt:  # written by equidyn 0.1's own N-body loop
        return ckpt["state"]["best_model"] or ckpt["model"]
    return ckpt["best_model"] if ckpt.get("best_model") is not None else ckpt["model"]


def _model(args: argparse.Namespace) -> ParticleModel:
    """The model of ``args``, seeded by ``--seed`` (rollouts: with a velocity head)."""
    torch.manual_seed(args.seed)  # the initial weights
    heads = args.task == "rollout" and args.model != "neural_ode"  # the ODE has (x, v)
    options = {"predict_velocity": True} if heads else {}
    model = build_model(args.model, args.hidden, args.layers, **options)
    if isinstance(model, NeuralODE) and args.ode_steps is not None:
        model.step_size = model.t_span / args.ode_steps
    if args.softening is not None:
        field = getattr(getattr(model, "field", None), "net", None)
        if not isinstance(field, PairForceField):
            raise ValueError(f"--softening needs the pair_ode model, got {args.model!r}")
        if args.softening <= 0:
            raise ValueError(f"--softening must be positive, got {args.softening}")
        field.softening = float(args.softening)
    if (args.quick or args.no_compile) and isinstance(model, NeuralODE):
        # seconds, not minutes of code generation (NeuralODE.compile is a setting, not the
        # method of nn.Module it shadows)
        model.compile = False  # type: ignore[method-assign,assignment]
    if args.init_from is not None:
        model.load_state_dict(_init_weights(load_checkpoint(Path(args.init_from))))
        print(f"initial weights: the best model of {args.init_from}", flush=True)
    return model


def _rollout(args: argparse.Namespace, model: ParticleModel) -> dict[str, list[float]]:
    # long trajectories exist only in equidyn's own draw (the EGNN repository's data set
    # has none): with --draw egnn the rollouts come from equidyn's rollout split
    data = load_charged_nbody("rollout", seed=args.data_seed, cache=args.cache)
    if args.draw != "equidyn":
        print(
            f"rollouts: equidyn's own 'rollout' split (seed {args.data_seed}); the "
            f"{args.draw!r} draw has no long trajectories",
            flush=True,
        )
    if args.quick:
        data = {k: v[:20] for k, v in data.items()}
    return rollout(model, data)


def main(argv: list[str]) -> int:
    """``equidyn nbody``: exit 0, or 1 with ``equidyn nbody: error: ...`` for bad settings."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"equidyn nbody: error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    _check_args(args)
    torch.set_num_threads(args.threads)
    model = _model(args)
    if args.unroll > 1 and args.task != "rollout":
        raise ValueError(f"--unroll {args.unroll} needs --task rollout")
    data_kw: dict[str, Any] = {"seed": args.data_seed, "cache": args.cache, "draw": args.draw}
    train_ds = ChargedNBodyDataset(
        "train", args.n_train, all_starts=args.task == "rollout", unroll=args.unroll, **data_kw
    )
    valid_ds = ChargedNBodyDataset("valid", args.n_valid, **data_kw)
    test_ds = ChargedNBodyDataset("test", args.n_test, **data_kw)
    config = {k: v for k, v in vars(args).items() if k not in RESUMABLE}
    out = Path(args.out)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model {args.model} ({n_params} parameters), {len(train_ds)} training samples, "
        f"{args.epochs} epochs, out {out}",
        flush=True,
    )
    state = train(
        model, train_ds, valid_ds, test_ds, epochs=args.epochs, out=out, seed=args.seed,
        augment=args.augment, state_loss=args.task == "rollout", eval_every=args.eval_every,
        lr=args.lr, schedule=args.schedule, clip_grad=args.clip_grad, unroll=args.unroll,
        trim=args.trim, resume=not args.fresh, config=config,
    )  # fmt: skip
    result: dict[str, Any] = {
        "model": args.model,
        "n_params": n_params,
        "n_train": args.n_train,
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "valid_mse": state["best_valid"],
        "test_mse": state["best_test"],
        "seconds_per_epoch": state["train_seconds"] / max(1, state["epoch"]),
        "published_test_mse": NBODY_TEST_MSE.get(args.model),
        "augment": args.augment,
        "equivariance_mse": equivariance_mse(model, test_ds, seed=args.seed),
    }
    if args.task == "rollout":
        result["rollout_draw"] = "equidyn"
        result["rollout"] = _rollout(args, model)
    atomic_write_text(json.dumps(result, indent=2), out / "result.json")
    if not args.no_plot:
        _plot(model, load_charged_nbody("test", **data_kw), out / "trajectories.png")
    print(
        f"{args.model}: test MSE {result['test_mse']:.5f} at epoch {result['best_epoch']} "
        f"(valid {result['valid_mse']:.5f}); published {result['published_test_mse']}; "
        f"{result['seconds_per_epoch']:.2f} s/epoch; equivariance MSE "
        f"{result['equivariance_mse']:.2e}",
        flush=True,
    )
    return 0
