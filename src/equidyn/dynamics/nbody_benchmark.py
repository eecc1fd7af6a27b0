"""``equidyn nbody``: train a model on the charged N-body task by the EGNN protocol.

Protocol (anchors.md §2): input frame 30 (positions, velocities, charges) → positions at
frame 40; 3000 training, 2000 validation, 2000 test trajectories; Adam (lr 5e-4, weight
decay 1e-12), batch 100; the reported number is the test MSE at the epoch of best
validation MSE. Every run writes to ``--out``:

* ``log.csv`` — one row per evaluation (epoch, train loss, valid/test MSE, seconds/epoch);
* ``checkpoint.pt`` — model, optimiser, epoch, best state, RNG state; written atomically
  after every evaluation and on Ctrl-C, so a rerun with the same ``--out`` resumes where it
  stopped (``--fresh`` starts over);
* ``result.json`` — the final numbers; ``trajectories.png`` — true vs predicted trajectories.

``--task rollout`` trains on every (frame t → t + 10) pair with a loss on positions and
velocities, then chains 10 predictions on long held-out trajectories and reports the
position error and the energy drift after each (EGNN with a velocity head, or the neural ODE).

Example: ``equidyn nbody --model egnn_vel --epochs 100 --out runs/egnn``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from equidyn._deprecation import renamed_arguments
from equidyn.dynamics.data import DRAWS, ChargedNBodyDataset, load_charged_nbody
from equidyn.dynamics.force_fields import PairForceField
from equidyn.dynamics.neural_ode import NeuralODE
from equidyn.dynamics.systems import ChargedNBody
from equidyn.models.egnn import EGNN
from equidyn.models.gnn import GNN
from equidyn.models.linear_dynamics import LinearDynamics
from equidyn.models.particles import ParticleModel, ParticleSystem
from equidyn.models.radial_field import RadialField
from equidyn.models.se3_transformer import SE3Transformer
from equidyn.models.segnn import SEGNN
from equidyn.models.tfn import TFN
from equidyn.o3.rotations import rand_matrix
from equidyn.train.checkpoint import atomic_save, atomic_write_text, load_checkpoint
from equidyn.train.logging import CSVLogger

__all__ = [
    "MODELS",
    "build_model",
    "equivariance_mse",
    "evaluate",
    "main",
    "rollout",
    "train",
]


#: model name -> constructor ``(width, layers, **options)``; every model builds its own inputs
#: from the raw system (:meth:`~equidyn.models.particles.ParticleModel.inputs`): EGNN the
#: paper's edges ``[q_i q_j, |x_i − x_j|²]``, GNN the charges and ``q_i q_j``, the others
#: ``q_i q_j``, the linear baseline nothing. ``options`` (``predict_velocity``) go to the class.
MODELS: dict[str, Callable[..., ParticleModel]] = {
    "linear": lambda h, layers, **o: LinearDynamics(node_attr_dim=0, edge_attr_dim=0, **o),
    "egnn": lambda h, layers, **o: EGNN(h, layers, 0, 2, velocity=False, **o),
    "egnn_vel": lambda h, layers, **o: EGNN(h, layers, 0, 2, velocity=True, **o),
    "gnn": lambda h, layers, **o: GNN(h, layers, node_attr_dim=1, edge_attr_dim=1, **o),
    "radial_field": lambda h, layers, **o: RadialField(h, layers, 0, 1, **o),
    "neural_ode": lambda h, layers, **o: NeuralODE(
        num_features=h, num_layers=layers, edge_attr_dim=1, **o
    ),
    "pair_ode": lambda h, layers, **o: NeuralODE(
        PairForceField(h, layers, 0, 1, softening=0.2),
        edge_attr_dim=1,
        method="semi_implicit_euler",
        step_size=1.0 / 500,
        compile=True,
        **o,
    ),
    "segnn": lambda h, layers, **o: SEGNN(h, layers, 0, 1, **o),
    "tfn": lambda h, layers, **o: TFN(h, layers, 0, 1, **o),
    "se3_transformer": lambda h, layers, **o: SE3Transformer(h, layers, 0, 1, **o),
}

PUBLISHED = {  # test MSE (paper), anchors.md §2
    "linear": 0.0819,
    "se3_transformer": 0.0244,
    "tfn": 0.0155,
    "gnn": 0.0107,
    "radial_field": 0.0104,
    "egnn": 0.0071,
    "egnn_vel": 0.0071,
    "segnn": 0.0043,
}


#: (hidden width, layers) of a model when ``--hidden`` / ``--layers`` are not given
DEFAULT_SIZES: dict[str, tuple[int, int]] = {"pair_ode": (32, 2)}


@renamed_arguments(hidden_dim="num_features", n_layers="num_layers")
def build_model(
    name: str, num_features: int | None = None, num_layers: int | None = None, **options: Any
) -> ParticleModel:
    """A fresh model by name (see :data:`MODELS`); ``options`` go to its class.

    ``num_features`` and ``num_layers`` default to :data:`DEFAULT_SIZES` (64 and 4, the
    protocol's EGNN, for the models not listed there).

    >>> type(build_model("linear")).__name__
    'LinearDynamics'
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    width, layers = DEFAULT_SIZES.get(name, (64, 4))
    width = width if num_features is None else num_features
    layers = layers if num_layers is None else num_layers
    return MODELS[name](width, layers, **options)


def _predict(model: ParticleModel, pos: Tensor, vel: Tensor, charges: Tensor) -> Tensor:
    return model.predict(ParticleSystem(pos, vel, charges))  # [batch, n, 3]


def _predict_state(
    model: ParticleModel, pos: Tensor, vel: Tensor, charges: Tensor
) -> tuple[Tensor, Tensor]:
    return model.predict_state(ParticleSystem(pos, vel, charges))  # [batch, n, 3] each


@torch.no_grad()
def evaluate(model: ParticleModel, ds: ChargedNBodyDataset, batch_size: int = 500) -> float:
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
    model: ParticleModel, ds: ChargedNBodyDataset, seed: int = 0, n_max: int = 1000
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


def train(
    model: ParticleModel,
    train_ds: ChargedNBodyDataset,
    valid_ds: ChargedNBodyDataset,
    test_ds: ChargedNBodyDataset,
    *,
    epochs: int,
    out: Path,
    seed: int = 0,
    augment: bool = False,
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
    """
    if not 0 < trim <= 1:
        raise ValueError(f"trim must be in (0, 1], got {trim}")
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"schedule must be 'constant' or 'cosine', got {schedule!r}")
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    g = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {
        "epoch": 0,
        "best_valid": math.inf,
        "best_test": math.inf,
        "best_epoch": 0,
        "best_model": None,
        "train_seconds": 0.0,
    }
    config = dict(config or {})
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        stored = {k: v for k, v in ckpt.get("config", {}).items() if k in config}
        if stored != config:
            raise ValueError(
                f"{ckpt_path} was written with a different configuration {ckpt.get('config')}; "
                "pass --fresh or another --out"
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        g.set_state(ckpt["generator"])
        state = ckpt["state"]
        if progress:
            print(f"resuming from {ckpt_path} at epoch {state['epoch']}")
    log = CSVLogger(out / "log.csv", resume=resume and state["epoch"] > 0)

    def save() -> None:
        atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "generator": g.get_state(),
                "state": state,
                "config": config,
            },
            ckpt_path,
        )

    n = len(train_ds)
    try:
        while state["epoch"] < epochs:
            model.train()
            if schedule == "cosine":
                for group in opt.param_groups:
                    group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * state["epoch"] / epochs))
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=g)
            total, count = 0.0, 0
            for s in range(0, n, batch_size):
                idx = perm[s : s + batch_size]
                pos, vel, q = train_ds.pos[idx], train_ds.vel[idx], train_ds.charges[idx]
                target, target_vel = train_ds.target_pos[idx], train_ds.target_vel[idx]
                future, future_vel = train_ds.future_pos[idx], train_ds.future_vel[idx]
                if augment:  # the same random rotation for input and target, about the origin
                    R = rand_matrix(len(idx), generator=g, dtype=pos.dtype).transpose(1, 2)
                    pos, vel, target, target_vel = pos @ R, vel @ R, target @ R, target_vel @ R
                    future, future_vel = future @ R[:, None], future_vel @ R[:, None]
                if state_loss:  # per-trajectory errors, [batch]
                    err = pos.new_zeros(len(idx))
                    x, v = pos, vel
                    for k in range(unroll):  # K chained predictions, [batch, n, 3] each
                        x, v = _predict_state(model, x, v, q)
                        err = err + ((x - future[:, k]) ** 2).mean((1, 2))
                        err = err + ((v - future_vel[:, k]) ** 2).mean((1, 2))
                    err = err / unroll
                else:
                    err = ((_predict(model, pos, vel, q) - target) ** 2).mean((1, 2))
                if trim < 1:  # the trimmed mean: drop the worst trajectories of the batch
                    err = err.sort().values[: max(1, int(trim * len(err)))]
                loss = err.mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            dt = time.perf_counter() - t0
            state["train_seconds"] += dt
            state["epoch"] += 1
            epoch = state["epoch"]
            if epoch % eval_every == 0 or epoch == epochs:
                valid = evaluate(model, valid_ds)
                test = math.nan
                if valid < state["best_valid"]:
                    test = evaluate(model, test_ds)
                    state.update(best_valid=valid, best_test=test, best_epoch=epoch)
                    state["best_model"] = copy.deepcopy(model.state_dict())
                row = {
                    "epoch": epoch,
                    "train_loss": total / count,
                    "valid_mse": valid,
                    "test_mse": test,
                    "seconds_per_epoch": state["train_seconds"] / epoch,
                    "lr": opt.param_groups[0]["lr"],
                }
                log.log(row)
                save()
                if progress:
                    print(
                        f"epoch {epoch:5d}/{epochs}  train {row['train_loss']:.5f}"
                        f"  valid {valid:.5f}"
                        f"  best test {state['best_test']:.5f} (epoch {state['best_epoch']})"
                        f"  {row['seconds_per_epoch']:.2f} s/epoch",
                        flush=True,
                    )
    except KeyboardInterrupt:
        save()
        log.close()
        print(f"\ninterrupted: checkpoint saved to {ckpt_path}; rerun to resume", file=sys.stderr)
        raise
    log.close()
    if state["best_model"] is not None:
        model.load_state_dict(state["best_model"])
    return state


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
    p = argparse.ArgumentParser(prog="equidyn nbody", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="egnn_vel", help=f"one of {sorted(MODELS)}")
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


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    hidden_default, layers_default = DEFAULT_SIZES.get(args.model, (64, 4))
    args.hidden = hidden_default if args.hidden is None else args.hidden
    args.layers = layers_default if args.layers is None else args.layers
    if args.quick:
        args.n_train, args.n_valid, args.n_test = min(args.n_train, 100), 100, 100
        args.epochs = min(args.epochs, 2)
        args.hidden = min(args.hidden, 16)
        if args.model == "pair_ode" and args.ode_steps is None:
            args.ode_steps = 50
    steerable = ("segnn", "tfn", "se3_transformer")  # rollout: built with predict_velocity
    if args.task == "rollout" and args.model not in ("egnn_vel", "neural_ode", *steerable):
        raise ValueError(
            "--task rollout needs a model that predicts velocities "
            f"(egnn_vel, neural_ode, {', '.join(steerable)}), got {args.model!r}"
        )
    torch.manual_seed(args.seed)  # the initial weights
    heads = args.task == "rollout" and args.model not in ("neural_ode",)  # the ODE has (x, v)
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
        model.compile = False  # seconds, not minutes of code generation
    if args.init_from is not None:
        ckpt = load_checkpoint(Path(args.init_from))
        weights = ckpt["state"]["best_model"] or ckpt["model"]
        model.load_state_dict(weights)
        print(f"initial weights: the best model of {args.init_from}", flush=True)
    all_starts = args.task == "rollout"
    cache = args.cache
    if args.unroll > 1 and args.task != "rollout":
        raise ValueError(f"--unroll {args.unroll} needs --task rollout")
    data_kw: dict[str, Any] = {"seed": args.data_seed, "cache": cache, "draw": args.draw}
    train_ds = ChargedNBodyDataset(
        "train", args.n_train, all_starts=all_starts, unroll=args.unroll, **data_kw
    )
    valid_ds = ChargedNBodyDataset("valid", args.n_valid, **data_kw)
    test_ds = ChargedNBodyDataset("test", args.n_test, **data_kw)
    # what may change between a run and its resumption: the epoch budget, evaluation, output
    skip = ("fresh", "no_plot", "out", "threads", "epochs", "eval_every", "no_compile")
    config = {k: v for k, v in vars(args).items() if k not in skip}
    out = Path(args.out)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"model {args.model} ({n_params} parameters), {len(train_ds)} training samples, "
        f"{args.epochs} epochs, out {out}",
        flush=True,
    )
    state = train(
        model,
        train_ds,
        valid_ds,
        test_ds,
        epochs=args.epochs,
        out=out,
        seed=args.seed,
        augment=args.augment,
        state_loss=args.task == "rollout",
        eval_every=args.eval_every,
        lr=args.lr,
        schedule=args.schedule,
        clip_grad=args.clip_grad,
        unroll=args.unroll,
        trim=args.trim,
        resume=not args.fresh,
        config=config,
    )
    result: dict[str, Any] = {
        "model": args.model,
        "n_params": n_params,
        "n_train": args.n_train,
        "epochs": state["epoch"],
        "best_epoch": state["best_epoch"],
        "valid_mse": state["best_valid"],
        "test_mse": state["best_test"],
        "seconds_per_epoch": state["train_seconds"] / max(1, state["epoch"]),
        "published_test_mse": PUBLISHED.get(args.model),
        "augment": args.augment,
        "equivariance_mse": equivariance_mse(model, test_ds, seed=args.seed),
    }
    if args.task == "rollout":
        # long trajectories exist only in equidyn's own draw (the EGNN repository's data set
        # has none): with --draw egnn the rollouts come from equidyn's rollout split
        data = load_charged_nbody("rollout", seed=args.data_seed, cache=cache)
        if args.draw != "equidyn":
            print(
                f"rollouts: equidyn's own 'rollout' split (seed {args.data_seed}); the "
                f"{args.draw!r} draw has no long trajectories",
                flush=True,
            )
        result["rollout_draw"] = "equidyn"
        if args.quick:
            data = {k: v[:20] for k, v in data.items()}
        result["rollout"] = rollout(model, data)
    atomic_write_text(json.dumps(result, indent=2), out / "result.json")
    if not args.no_plot:
        data = load_charged_nbody("test", **data_kw)
        _plot(model, data, out / "trajectories.png")
    print(
        f"{args.model}: test MSE {result['test_mse']:.5f} at epoch {result['best_epoch']} "
        f"(valid {result['valid_mse']:.5f}); published {result['published_test_mse']}; "
        f"{result['seconds_per_epoch']:.2f} s/epoch; equivariance MSE "
        f"{result['equivariance_mse']:.2e}",
        flush=True,
    )
    return 0
