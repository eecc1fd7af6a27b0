"""Data efficiency of NequIP (the paper's learning-curve experiment) on the built-in Cu-Au set.

The same NequIP at l_max = 0 (invariant), 1 and 2 is trained on N = 25 ... 800 structures of
the built-in EMT Cu-Au data (``equidyn.data.builtin``) with a fixed validation set and a fixed
test set (the split keeps them fixed as N grows). Every run gets the same number of optimiser
steps (``--steps``; small N sees many epochs) or the same number of epochs (``--epochs``) and
is evaluated with its best-validation EMA weights.
The force MAE on the test set against N is fitted by error = a * N^b on a log-log plot;
the paper reports a steeper (more negative) b for l >= 1 than for invariant models.

    python benchmarks/data_efficiency.py --quick        # a smoke test (~1 min)
    python benchmarks/data_efficiency.py                # N = 25..800, l = 0, 1, 2

Prints a table and the fitted slopes; writes results.json and learning_curves.png to --out.
``--seeds`` repeats every point with other initial weights and training orders (the splits stay
fixed); slopes are fitted to the mean over seeds. A rerun with the same ``--out`` and the same
settings keeps the runs already in results.json and only trains the missing (l_max, N, seed)
points, so the curve can be extended (``--sizes 400 800``) or given more seeds later.
Threads: torch.set_num_threads(--threads), default 2. Allocator: default glibc settings.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from equidyn.data.split import split_indices
from equidyn.train.config import TrainingConfig
from equidyn.train.datasets import load_structures
from equidyn.train.potential_task import evaluate_potential, potential_trainer
from equidyn.train.trainer import build_potential


def fit_slope(ns: list[int], errors: list[float]) -> tuple[float, float]:
    """Least-squares fit of log(error) = log(a) + b log(N); returns (b, a)."""
    b, log_a = np.polyfit(np.log(ns), np.log(errors), 1)
    return float(b), float(math.exp(log_a))


#: settings that may differ between the runs collected in one results.json
_FREE = ("quick", "sizes", "lmax", "seeds", "out", "threads")


def mean_curve(runs: list[dict], l_max: int) -> tuple[list[int], list[float], list[float]]:
    """Sizes, mean and standard deviation over seeds of the test force MAE of one l_max."""
    ns = sorted({r["n_train"] for r in runs if r["l_max"] == l_max})
    means, stds = [], []
    for n in ns:
        errs = [r["force_mae"] for r in runs if r["l_max"] == l_max and r["n_train"] == n]
        means.append(float(np.mean(errs)))
        stds.append(float(np.std(errs)))
    return ns, means, stds


def _previous_runs(args: argparse.Namespace) -> list[dict]:
    path = args.out / "results.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    mine = {k: v for k, v in vars(args).items() if k not in _FREE}
    theirs = {k: v for k, v in old.get("settings", {}).items() if k in mine}
    if theirs != mine:
        diff = {k: (theirs.get(k), v) for k, v in mine.items() if theirs.get(k) != v}
        raise ValueError(
            f"{path} holds runs with other settings (old, new): {diff}; use another --out"
        )
    return [{"seed": 0, **r} for r in old["runs"]]


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    graphs = load_structures("builtin:cuau-emt", args.r_max, n_structures=args.n_structures, seed=0)
    run_dir = Path(tempfile.mkdtemp(prefix="equidyn-data-efficiency-"))  # checkpoints
    results: dict = {"settings": vars(args).copy(), "runs": _previous_runs(args)}
    results["settings"]["out"] = str(args.out)
    done = {(r["l_max"], r["n_train"], r["seed"]) for r in results["runs"]}
    todo = [  # size by size, so that an interrupted run leaves whole points
        (l_max, n, seed)
        for n in args.sizes
        for seed in args.seeds
        for l_max in args.lmax
        if (l_max, n, seed) not in done
    ]
    print(f"{len(done)} runs kept from {args.out / 'results.json'}, {len(todo)} to train")
    for l_max, n, seed in todo:
        tr, va, te = split_indices(len(graphs), n, args.n_val, args.n_test, seed=0)
        train = [graphs[i] for i in tr]
        val = [graphs[i] for i in va]
        test = [graphs[i] for i in te]
        torch.manual_seed(seed)
        model_kwargs = dict(
            r_max=args.r_max,
            l_max=l_max,
            num_features=args.features,
            num_layers=args.layers,
            radial_hidden=args.radial_hidden,
        )
        pot = build_potential("NequIP", model_kwargs, train)
        steps_per_epoch = math.ceil(n / args.batch_size)
        if args.epochs is not None:  # every structure seen the same number of times
            epochs = args.epochs
        else:  # the same number of optimiser steps for every N
            epochs = max(1, math.ceil(args.steps / steps_per_epoch))
        cfg = TrainingConfig(
            epochs=epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            lr_patience=max(3, epochs // 10),
            early_stopping_patience=None,
            ema_decay=0.99,
            progress=False,
            log_epochs=False,
            plots=False,
            output_dir=str(run_dir / f"l{l_max}_n{n}_s{seed}"),
            seed=seed,
            dtype="float32",
        )
        t0 = time.perf_counter()
        trainer = potential_trainer(pot, train, val, cfg)
        trainer.fit()
        best = trainer.task.best_potential()
        metrics = evaluate_potential(best, [g.to(dtype=torch.float32) for g in test], 10)["metrics"]
        wall = time.perf_counter() - t0
        row = {
            "l_max": l_max,
            "n_train": n,
            "seed": seed,
            "epochs": epochs,
            "steps": trainer.global_step,
            "params": sum(p.numel() for p in pot.parameters()),
            "wall_s": wall,
            "force_mae": metrics["forces_mae"],
            "energy_mae": metrics["energy_mae"],
        }
        results["runs"].append(row)
        print(
            f"l_max={l_max} N={n:4d} seed {seed}: force MAE {row['force_mae']:7.2f} meV/Å, "
            f"energy MAE {row['energy_mae']:6.2f} meV/atom ({row['steps']} steps, {wall:.0f} s)",
            flush=True,
        )
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
    results["runs"].sort(key=lambda r: (r["l_max"], r["n_train"], r["seed"]))
    slopes = {}
    for l_max in sorted({r["l_max"] for r in results["runs"]}):
        ns, means, _ = mean_curve(results["runs"], l_max)
        if len(ns) >= 2:
            b, a = fit_slope(ns, means)
            slopes[str(l_max)] = {"b": b, "a": a, "sizes": ns}
    results["slopes"] = slopes
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for l_max in sorted({r["l_max"] for r in results["runs"]}):
        ns, err, std = mean_curve(results["runs"], l_max)
        s = results["slopes"].get(str(l_max))
        label = f"l_max={l_max}" + (f" (slope {s['b']:.2f})" if s else "")
        ax.errorbar(ns, err, yerr=std, fmt="o-", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    sizes = sorted({r["n_train"] for r in results["runs"]})
    ax.set_xticks(sizes)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(
        xlabel="training structures N",
        ylabel="test force MAE (meV/Å)",
        title="NequIP learning curves, Cu-Au EMT",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200, 400, 800])
    p.add_argument("--lmax", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="initialisation seeds")
    p.add_argument("--steps", type=int, default=800, help="optimiser steps per run")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (overrides --steps)")
    p.add_argument("--batch-size", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--radial-hidden", type=int, default=16)
    p.add_argument("--r-max", type=float, default=4.0)
    p.add_argument("--n-val", type=int, default=50)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--n-structures", type=int, default=3000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/data_efficiency"))
    args = p.parse_args()
    if args.quick:
        args.sizes, args.lmax, args.steps = [10, 20], [0, 1], 10
        args.features, args.layers, args.n_val, args.n_test, args.n_structures = 4, 2, 5, 10, 60
        args.out = args.out.parent / "data_efficiency_quick"
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(args)
    plot(results, args.out / "learning_curves.png")
    print("\nfitted force-MAE slopes b (error = a N^b):")
    for l_max, s in results["slopes"].items():
        print(f"  l_max={l_max}: b = {s['b']:.3f}")
    print(f"results: {args.out / 'results.json'}, plot: {args.out / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
