"""equidyn's interatomic potentials at the same training budget: in-distribution accuracy,
300 K -> 1200 K temperature transfer, and inference speed on the 256-atom Cu cell.

Data: the built-in Cu-Au EMT generator (``equidyn.data.builtin``, Langevin MD of 32-site fcc
cells of random composition, vacancies and strain; 30 frames per trajectory, generated on
first use and cached). Because the frames of one trajectory are correlated, every test set
holds trajectories that no training structure comes from:

- **mix** (in-distribution): the default built-in set (seed 0, temperatures cycling through
  300, 600, 900, 1200 K), 100 trajectories. Trajectories 0-79 are the train/validation pool
  (``--n-train`` and ``--n-val`` structures drawn at random, split seed 0); ``--n-test``
  structures drawn at random from trajectories 80-99 (5 per temperature) are the test set.
- **300K** (transfer): the same generator at 300 K only (seed 1), 80 trajectories, from which
  the same numbers of train and validation structures are drawn.
- test sets of the transfer task, generated independently: 300 K (seed 2) and 1200 K
  (seed 3), 20 trajectories each, ``--n-test`` structures drawn at random from each.

Every trained model is evaluated on all three test sets (mix, 300K, 1200K); the table shows
mix -> mix, 300K -> 300K, 300K -> 1200K (its ratio to 300K -> 300K is the degradation) and,
for reference, mix -> 1200K (the same 1200 K structures, 1200 K frames in the training set).

Models: the registered potentials named in ``MODELS`` (``--models``), each built through the
registry (``equidyn.train.trainer.build_potential`` -> ``build_model``) from its row of
``MODEL_KWARGS``; a name that is not registered is skipped with a note, and a keyword the
constructor does not take stops the benchmark before any training (``build_model``'s
``ValueError``). ``build_potential`` fits the per-species reference energies (least squares)
and the scale (RMS force) on the training set and fills in ``num_species`` and
``avg_num_neighbors`` where the model takes them.

Budget, the same for every model: ``--epochs`` epochs of ``--n-train`` structures in batches
of 5 (the same structures in the same order for a given seed: the order is drawn from the
seed and the epoch), Adam (AMSGrad) at lr 5e-3 with a cosine schedule to 0, EMA 0.99, loss
10 x (energy per atom)^2 + 1 x force^2 (eV, Å), float32, no early stopping; the epoch with
the lowest validation loss (EMA weights) is evaluated. ``--seeds`` change the initial weights
and the batch order, not the data. ``train_s`` is the wall time of ``Trainer.fit``
(validation included).

Inference: the trained model on the 256-atom cell of docs/protocols.md §2 (4x4x4 cubic fcc
Cu, a = 3.6 Å, rattled 0.05 Å with seed 0, periodic) with edges of the model's own r_max,
float32, energy + forces (autograd) per call, graph built once, median of 10 calls after
3 warm-ups, ``torch.set_num_threads(--threads)``.

    python benchmarks/potentials_transfer.py --quick   # a smoke test (tiny data, 1 epoch)
    python benchmarks/potentials_transfer.py           # the table (2 seeds, both tasks)

Each finished (task, model, seed) run is written atomically to ``--out/runs/`` with the
settings it ran with; a rerun with the same settings skips it (an interrupted benchmark
resumes, and a model registered later adds only its own runs). A run file with other
settings stops the benchmark (delete it or use another ``--out``). Writes results.json,
table.md (mean ± std over seeds) and force_mae.png to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from equidyn.data.builtin import builtin_dataset
from equidyn.data.split import split_indices
from equidyn.graph import AtomicGraph, radius_graph
from equidyn.models.potential import Potential
from equidyn.models.registry import (
    build_model,
    constructor_arguments,
    registered_models,
    resolve_model,
)
from equidyn.train import atomic_write_text, evaluate_potential, potential_trainer
from equidyn.train.config import TrainingConfig
from equidyn.train.trainer import build_potential, model_r_max

#: the potentials compared, in table order (names of ``@register_model(kind="potential")``)
MODELS = ("NequIP", "MACE", "ESCN", "Allegro")

#: constructor keyword arguments of each model (edit here; unknown keys raise ValueError).
#: num_species and avg_num_neighbors are filled in from the training data when left out.
MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "NequIP": dict(r_max=4.0, l_max=2, num_features=16, num_layers=2, radial_hidden=32),
    "MACE": dict(
        r_max=4.0,
        l_max=2,
        correlation=2,
        num_layers=2,
        hidden_irreps="16x0e + 16x1o",
        radial_mlp=[32, 32],
    ),
    "ESCN": dict(num_species=2, r_max=4.0, l_max=2, m_max=2, num_features=16, num_layers=2),
    "Allegro": dict(num_species=2, r_max=4.0, l_max=2, num_layers=2),
}

#: the optimisation settings shared by every run (see the module docstring)
TRAINING = dict(
    batch_size=5, lr=5e-3, amsgrad=True, schedule="cosine", ema_decay=0.99,
    energy_weight=10.0, force_weight=1.0, stress_weight=0.0, early_stopping_patience=None,
    dtype="float32",
)  # fmt: skip

TASKS = ("mix", "300K")  # training sets
TEST_SETS = ("mix", "300K", "1200K")
#: (training set, test set) pairs of the table and the plot
SHOWN = (("mix", "mix"), ("300K", "300K"), ("300K", "1200K"), ("mix", "1200K"))
MIX_TEMPERATURES = (300.0, 600.0, 900.0, 1200.0)


def data_plan(quick: bool) -> dict[str, Any]:
    """Generator settings: frames per trajectory and trajectories per pool."""
    if quick:  # tiny pools of short trajectories: a smoke test, not a result
        return {"frames": 4, "train_traj": 8, "test_traj": 4}
    return {"frames": 30, "train_traj": 80, "test_traj": 20}


def load_sets(r_max: float, plan: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``{"train": {task: (train, val)}, "test": {name: graphs}}`` with edges of ``r_max``."""
    fpt, n_tr, n_te = plan["frames"], plan["train_traj"], plan["test_traj"]

    def pool(n_traj: int, seed: int, temperatures: tuple[float, ...]) -> list[AtomicGraph]:
        return builtin_dataset(
            n_structures=n_traj * fpt, seed=seed, r_max=r_max, dtype=torch.float32,
            temperatures=temperatures, frames_per_trajectory=fpt,
        )  # fmt: skip

    def pick(graphs: list[AtomicGraph], n: int, seed: int) -> list[AtomicGraph]:
        idx = np.random.default_rng(seed).permutation(len(graphs))[:n]
        return [graphs[i] for i in sorted(idx.tolist())]

    mix = pool(n_tr + n_te, 0, MIX_TEMPERATURES)  # trajectory k: frames k*fpt .. (k+1)*fpt-1
    cold = pool(n_tr, 1, (300.0,))
    sets: dict[str, Any] = {"train": {}, "test": {}}
    for task, graphs in (("mix", mix[: n_tr * fpt]), ("300K", cold)):
        tr, va, _ = split_indices(len(graphs), args.n_train, args.n_val, 0, seed=0)
        sets["train"][task] = ([graphs[i] for i in tr], [graphs[i] for i in va])
    sets["test"]["mix"] = pick(mix[n_tr * fpt :], args.n_test, 0)
    sets["test"]["300K"] = pick(pool(n_te, 2, (300.0,)), args.n_test, 0)
    sets["test"]["1200K"] = pick(pool(n_te, 3, (1200.0,)), args.n_test, 0)
    return sets


def check_model_kwargs(table: dict[str, dict[str, Any]]) -> None:
    """Raise ``ValueError`` if a registered model's row names an argument it does not take."""
    for name, kwargs in table.items():
        valid = set(constructor_arguments(resolve_model(name, kind="potential")))
        valid |= set(getattr(resolve_model(name).__init__, "__renamed_arguments__", {}))
        bad = sorted(set(kwargs) - valid)
        if bad:
            raise ValueError(
                f"MODEL_KWARGS[{name!r}] has argument(s) {bad} that {name} does not take; "
                f"valid: {sorted(valid)}"
            )


def cu_cell(r_max: float) -> AtomicGraph:
    """The 256-atom rattled fcc Cu cell (docs/protocols.md §2) with edges of ``r_max``."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((4, 4, 4))
    atoms.rattle(0.05, seed=0)
    return radius_graph(
        torch.tensor(atoms.positions, dtype=torch.float32), atoms.numbers, r_max,
        cell=torch.tensor(np.asarray(atoms.cell), dtype=torch.float32), pbc=True,
    )  # fmt: skip


def inference_ms(pot: Potential, warmups: int, repeats: int) -> tuple[float, int]:
    """Median ms of one energy + forces call on the Cu cell, and its number of edges."""
    graph = cu_cell(pot.r_max)
    pot = pot.to(torch.float32).eval()
    for _ in range(warmups):
        pot(graph, compute_forces=True)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = pot(graph, compute_forces=True)
        out["forces"].sum().item()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, int(graph.num_edges)


def side_by_side_inference(models: list[str], out: Path, threads: int, quick: bool) -> None:
    """Energy + forces on the 256-atom cell for every model in one process, interleaved over
    three rounds (median of the rounds' medians), random weights, avg_num_neighbors 18 (the
    cell's); written to ``out/inference.json``."""
    pots = {}
    for m in models:
        kwargs = {"num_species": 2, **MODEL_KWARGS[m]}
        if "avg_num_neighbors" in constructor_arguments(resolve_model(m, "potential")):
            kwargs.setdefault("avg_num_neighbors", 18.0)
        pots[m] = Potential(build_model(m, kwargs, "potential"), [29, 79])
    rounds: dict[str, list[float]] = {m: [] for m in models}
    edges = 0
    for _ in range(1 if quick else 3):
        for m in models:
            ms, edges = inference_ms(pots[m], *infer_calls(quick))
            rounds[m].append(ms)
    result = {
        "threads": threads, "edges": edges, "malloc": {k: v for k, v in os.environ.items()
                                                       if k.startswith("MALLOC_")} or "default",
        "ms_per_call": {m: statistics.median(v) for m, v in rounds.items()}, "rounds": rounds,
        "params": {m: sum(p.numel() for p in pots[m].parameters()) for m in models},
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(result, indent=1), out / f"inference_threads{threads}.json")
    for m in models:
        print(f"{m:<8} {result['ms_per_call'][m]:8.1f} ms per energy + forces call "
              f"({edges} edges, {threads} thread(s))")  # fmt: skip


def infer_calls(quick: bool) -> tuple[int, int]:
    """(warm-ups, timed calls) of the inference timing."""
    return (1, 2) if quick else (3, 10)


def run_one(
    model: str, task: str, seed: int, sets: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Train ``model`` on ``task`` with ``seed``; evaluate on every test set; time inference."""
    train, val = sets["train"][task]
    torch.manual_seed(seed)
    pot = build_potential(model, MODEL_KWARGS[model], train)
    n_params = sum(p.numel() for p in pot.parameters())
    with tempfile.TemporaryDirectory(prefix="equidyn-transfer-") as tmp:
        cfg = TrainingConfig(
            epochs=args.epochs, seed=seed, output_dir=tmp, progress=False, log_epochs=False,
            plots=False, **TRAINING,
        )  # fmt: skip
        trainer = potential_trainer(pot, train, val, cfg)
        t0 = time.perf_counter()
        summary = trainer.fit()
        train_s = time.perf_counter() - t0
        if summary["stop_reason"].startswith("interrupted"):
            raise SystemExit(130)
        best = trainer.task.best_potential().to(torch.float32)
    t0 = time.perf_counter()
    tests = {
        name: evaluate_potential(best, graphs, 10)["metrics"]
        for name, graphs in sets["test"].items()
    }
    eval_s = time.perf_counter() - t0
    ms, edges = inference_ms(best, *infer_calls(args.quick))
    return {
        "model": model, "task": task, "seed": seed, "params": n_params,
        "steps": summary["steps"], "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"], "train_s": train_s,
        "optimiser_s": summary["train_seconds"], "eval_s": eval_s,
        "val": {k: v for k, v in summary["best_metrics"].get("val", {}).items()},
        "tests": tests, "infer_ms_256": ms, "cell_edges": edges,
        "threads": torch.get_num_threads(), "n_train": len(train), "n_val": len(val),
        "n_test": {k: len(v) for k, v in sets["test"].items()},
    }  # fmt: skip


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(runs: list[dict[str, Any]], models: list[str]) -> list[dict[str, Any]]:
    """One row per (model, training set, test set) of ``SHOWN``: mean ± std over seeds."""
    rows = []
    for model in models:
        for task, test in SHOWN:
            rs = [r for r in runs if r["model"] == model and r["task"] == task]
            if not rs:
                continue
            e = _mean_std([r["tests"][test]["energy_mae"] for r in rs])
            f = _mean_std([r["tests"][test]["forces_mae"] for r in rs])
            rows.append({
                "model": model, "train": task, "test": test, "seeds": len(rs),
                "params": rs[0]["params"], "energy_mae": e[0], "energy_mae_std": e[1],
                "forces_mae": f[0], "forces_mae_std": f[1],
                "train_s": statistics.fmean(r["train_s"] for r in rs),
                "steps": rs[0]["steps"],
                "infer_ms_256": statistics.median(  # all runs of the model: one speed
                    r["infer_ms_256"] for r in runs if r["model"] == model
                ),
            })  # fmt: skip
    return rows


def degradation(runs: list[dict[str, Any]], model: str) -> tuple[float, float] | None:
    """Mean ± std over seeds of force MAE(300K -> 1200K) / force MAE(300K -> 300K)."""
    ratios = [
        r["tests"]["1200K"]["forces_mae"] / r["tests"]["300K"]["forces_mae"]
        for r in runs
        if r["model"] == model and r["task"] == "300K"
    ]
    return _mean_std(ratios) if ratios else None


def table(rows: list[dict[str, Any]], runs: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "| model | params | train → test | energy MAE (meV/atom) | force MAE (meV/Å) | "
        "train s | ms/call (256 atoms) |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['train']} → {r['test']} | "
            f"{r['energy_mae']:.2f} ± {r['energy_mae_std']:.2f} | "
            f"{r['forces_mae']:.1f} ± {r['forces_mae_std']:.1f} | {r['train_s']:.0f} | "
            f"{r['infer_ms_256']:.0f} |"
        )
    lines += ["", "| model | force MAE 300K → 1200K / 300K → 300K |", "|---|---:|"]
    for model in dict.fromkeys(r["model"] for r in rows):
        d = degradation(runs, model)
        if d is not None:
            lines.append(f"| {model} | {d[0]:.2f} ± {d[1]:.2f} |")
    lines += [
        "",
        f"Mean ± std over seeds {meta['seeds']}; {meta['epochs']} epochs of {meta['n_train']} "
        f"structures, batch {TRAINING['batch_size']} ({meta['steps']} optimiser steps) for "
        f"every model; {meta['n_test']} test structures per set; threads {meta['threads']}; "
        f"inference: median over all runs of a model of the median of {meta['infer_repeats']} "
        "calls (float32, energy + forces).",
    ]
    if meta["skipped"]:
        lines.append(f"Not registered (skipped): {', '.join(meta['skipped'])}.")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, ax = plt.subplots(figsize=(3.2 + 1.4 * len(models), 3.8))
    width = 0.8 / len(SHOWN)
    for k, (task, test) in enumerate(SHOWN):
        xs, ys, es = [], [], []
        for i, m in enumerate(models):
            for r in rows:
                if (r["model"], r["train"], r["test"]) == (m, task, test):
                    xs.append(i + (k - (len(SHOWN) - 1) / 2) * width)
                    ys.append(r["forces_mae"])
                    es.append(r["forces_mae_std"])
        hatch = "//" if (task, test) == ("mix", "1200K") else None
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=f"{task} → {test}", hatch=hatch)
    ax.set_xticks(range(len(models)), models)
    ax.set(ylabel="test force MAE (meV/Å)", title="Cu-Au EMT: in-distribution vs 300 K → 1200 K")
    ax.legend(title="train → test", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(suffix=".png.tmp", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, format="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke test (tiny data, 1 epoch)")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epochs", type=int, default=None, help="default 25 (quick: 1)")
    ap.add_argument("--n-train", type=int, default=None, help="default 300 (quick: 10)")
    ap.add_argument("--n-val", type=int, default=None, help="default 50 (quick: 4)")
    ap.add_argument("--n-test", type=int, default=None, help="default 200 (quick: 8)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--infer-only",
        action="store_true",
        help="only time energy + forces on the "
        "256-atom cell, every model side by side (random weights), into inference.json",
    )
    ap.add_argument("--out", type=Path, default=None, help="default benchmarks/results/"
                    "potentials_transfer[_quick]")  # fmt: skip
    args = ap.parse_args()
    q = args.quick
    for name, full, quick in (("epochs", 25, 1), ("n_train", 300, 10), ("n_val", 50, 4),
                              ("n_test", 200, 8)):  # fmt: skip
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    out = args.out or Path("benchmarks/results/potentials_transfer" + ("_quick" if q else ""))
    torch.set_num_threads(args.threads)

    known = set(registered_models("potential"))
    models = [m for m in args.models if m in known]
    skipped = [m for m in args.models if m not in known]
    for m in skipped:
        print(f"note: {m} is not a registered potential (not merged yet?): skipped", flush=True)
    unlisted = [m for m in models if m not in MODEL_KWARGS]
    if unlisted:
        raise SystemExit(f"no MODEL_KWARGS row for {unlisted}; add one to {__file__}")
    check_model_kwargs({m: MODEL_KWARGS[m] for m in models})
    r_maxes = {m: model_r_max(m, MODEL_KWARGS[m]) for m in models}
    if args.infer_only:
        side_by_side_inference(models, out, args.threads, q)
        return

    plan = data_plan(q)
    t_start = time.perf_counter()
    sets_by_r: dict[float, dict[str, Any]] = {}
    runs = []
    for task in TASKS:
        for seed in args.seeds:
            for model in models:
                key = {"model": model, "task": task, "seed": seed,
                       "kwargs": MODEL_KWARGS[model], "training": TRAINING,
                       "epochs": args.epochs, "n_train": args.n_train, "n_val": args.n_val,
                       "n_test": args.n_test, "data": plan, "quick": q}  # fmt: skip
                path = out / "runs" / f"{task}-{model}-seed{seed}.json"
                if path.is_file():
                    saved = json.loads(path.read_text())
                    if saved["key"] != json.loads(json.dumps(key)):
                        raise SystemExit(
                            f"{path} was run with other settings ({saved['key']}); "
                            "delete it or use another --out"
                        )
                    r = saved["result"]
                    print(f"kept  {task:>4} {model:<8} seed {seed} ({path})", flush=True)
                else:
                    r_max = r_maxes[model]
                    if r_max not in sets_by_r:
                        sets_by_r[r_max] = load_sets(r_max, plan, args)
                    r = run_one(model, task, seed, sets_by_r[r_max], args)
                    atomic_write_text(json.dumps({"key": key, "result": r}, indent=1), path)
                t = r["tests"]
                print(
                    f"{task:>4} {model:<8} seed {seed}: F mix {t['mix']['forces_mae']:6.1f}  "
                    f"300K {t['300K']['forces_mae']:6.1f}  1200K {t['1200K']['forces_mae']:6.1f} "
                    f"meV/Å | E {t['mix']['energy_mae']:5.2f} {t['300K']['energy_mae']:5.2f} "
                    f"{t['1200K']['energy_mae']:5.2f} meV/atom | train {r['train_s']:.0f} s, "
                    f"{r['infer_ms_256']:.0f} ms/call",
                    flush=True,
                )
                for split in ("mix", "300K", "1200K"):
                    if not math.isfinite(t[split]["forces_mae"]):
                        raise SystemExit(f"{model} on {task}, seed {seed}: non-finite {split}")
                runs.append(r)
    if not runs:
        raise SystemExit("no registered model to run")
    rows = summarise(runs, models)
    meta = {
        "models": models, "skipped": skipped, "seeds": args.seeds, "epochs": args.epochs,
        "n_train": args.n_train, "n_val": args.n_val, "n_test": args.n_test,
        "steps": runs[0]["steps"], "threads": sorted({r["threads"] for r in runs}),
        "training": TRAINING, "model_kwargs": {m: MODEL_KWARGS[m] for m in models},
        "data": plan, "quick": q, "infer_repeats": infer_calls(q)[1],
        "seconds_this_call": time.perf_counter() - t_start,
        "torch": torch.__version__, "python": sys.version.split()[0],
        "machine": platform.machine(), "processor": platform.processor(),
    }  # fmt: skip
    results = {"meta": meta, "summary": rows, "runs": runs}
    atomic_write_text(json.dumps(results, indent=1) + "\n", out / "results.json")
    text = table(rows, runs, meta)
    atomic_write_text(text, out / "table.md")
    plot(rows, out / "force_mae.png")
    print("\n" + text)
    print(f"results: {out / 'results.json'}, table: {out / 'table.md'}, "
          f"plot: {out / 'force_mae.png'}")  # fmt: skip


if __name__ == "__main__":
    main()
