"""Spatio-temporal forecasting: ESTAG against EGNN on the last frame, EGNN with stacked frames
and linear extrapolation, on windows of past frames (test MSE over >= 3 seeds, time per epoch).

Data (generated here, cached; see docs/estag.md):

- **nbody**: the charged 5-body system (EGNN protocol simulator), whole trajectories of 49
  frames 0.1 apart; windows of K = 8 frames spaced 2 frames (0.2) apart, target 10 frames
  (1.0, the EGNN protocol's 1000 steps) after the last, a sample every 4 start frames;
  trajectories 0..499 of the train split (train), 100 of valid (val), 200 of test (test).
  Node attributes: the charge; pair attributes: q_i q_j. Units: the simulator's.
- **cluster**: 5000 frames (20 fs apart) of NVE MD of the 13-atom Cu7Au6 cluster with EMT at
  500 K, cut in time 60/20/20 (train/val/test); K = 8 frames 1 apart, target 5 frames
  (100 fs) after the last, a sample every 4 frames. Node attributes: one-hot species. Å.

Models: LinearExtrapolation (no parameters, steps_ahead = H / Δ), LastFrameEGNN and
StackedFramesEGNN (64 features, 4 layers), ESTAG (64 features, 2 spatial + 2 temporal layers,
K // 2 frequencies). Each trained model: Adam, lr 1e-3 with a cosine schedule, gradient norm
clipped at 10, the same budget for every model (nbody: 40 epochs of batch 100, cluster: 60
epochs of batch 32; about 1400 steps each); the epoch with the best validation MSE gives the
test MSE.

    python benchmarks/estag.py --quick   # a smoke test (~30 s)
    python benchmarks/estag.py           # the table (about 50 min on 1 thread)

Writes results.json and a Markdown table (table.md) to --out, and each finished run to
--out/runs/ (a rerun with the same settings reuses them: an interrupted benchmark resumes).
Threads: --threads (default 2; each run records its own). Allocator: default glibc
settings, the same for every model of the run.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from equidyn._io import atomic_write_text
from equidyn.data import TrajectoryWindows, builtin_trajectory, time_split
from equidyn.dynamics import charged_nbody_trajectories
from equidyn.models import ESTAG, LastFrameEGNN, LinearExtrapolation, StackedFramesEGNN
from equidyn.train import forecast_mse, train_forecaster

#: dataset -> (window K, spacing Δ, horizon H, stride)
WINDOWS = {"nbody": (8, 2, 10, 4), "cluster": (8, 1, 5, 4)}
#: dataset -> samples per optimiser step (about 1400 steps in either full budget)
BATCH = {"nbody": 100, "cluster": 32}
MODELS = ("LinearExtrapolation", "LastFrameEGNN", "StackedFramesEGNN", "ESTAG")


def load(name: str, quick: bool) -> tuple[TrajectoryWindows, ...]:
    K, spacing, horizon, stride = WINDOWS[name]
    cut = lambda trajs: TrajectoryWindows(trajs, K, spacing, horizon, stride)  # noqa: E731
    if name == "nbody":
        sizes = (40, 10, 20) if quick else (500, 100, 200)
        splits = ("train", "valid", "test")
        return tuple(cut(charged_nbody_trajectories(s, n)) for s, n in zip(splits, sizes))
    traj = builtin_trajectory("cuau-cluster", frames=400 if quick else 5000).to(torch.float32)
    return tuple(cut([part]) for part in time_split(traj, (0.6, 0.2, 0.2)))


def build(model: str, windows: TrajectoryWindows, width: int) -> torch.nn.Module:
    K, d, e = windows.window, windows.node_attr_dim, windows.edge_attr_dim
    if model == "LinearExtrapolation":
        return LinearExtrapolation(K, windows.horizon / windows.spacing, d, e)
    if model == "LastFrameEGNN":
        return LastFrameEGNN(K, width, 4, d, e)
    if model == "StackedFramesEGNN":
        return StackedFramesEGNN(K, width, 4, d, e)
    return ESTAG(K, width, 2, d, e)


def run_one(name: str, model_name: str, seed: int, data: tuple, args: argparse.Namespace) -> dict:
    train, val, test = data
    torch.manual_seed(seed)
    model = build(model_name, train, args.width)
    n_params = sum(p.numel() for p in model.parameters())
    if n_params == 0:  # nothing to train: evaluate as is
        t0 = time.perf_counter()
        mse = forecast_mse(model, test)
        return {"test_mse": mse, "val_mse": forecast_mse(model, val), "params": 0,
                "seconds_per_epoch": 0.0, "eval_seconds": time.perf_counter() - t0}  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        r = train_forecaster(
            model, train, val, test, epochs=args.epochs[name], out=out, batch_size=BATCH[name],
            lr=1e-3, seed=seed, resume=False, progress=False,
        )  # fmt: skip
    return {"test_mse": r["best_test"], "val_mse": r["best_valid"], "params": n_params,
            "seconds_per_epoch": r["seconds_per_epoch"], "best_epoch": r["best_epoch"]}  # fmt: skip


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in WINDOWS:
        for model in MODELS:
            rs = [r for r in runs if r["data"] == name and r["model"] == model]
            if not rs:
                continue
            mse = [r["test_mse"] for r in rs]
            rows.append({
                "data": name, "model": model, "seeds": len(rs), "params": rs[0]["params"],
                "test_mse_mean": statistics.fmean(mse),
                "test_mse_std": statistics.stdev(mse) if len(mse) > 1 else 0.0,
                "seconds_per_epoch": statistics.fmean(r["seconds_per_epoch"] for r in rs),
            })  # fmt: skip
    return rows


def table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "| data | model | parameters | test MSE (mean ± std over seeds) | s / epoch |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['model']} | {r['params']:,} | {r['test_mse_mean']:.4g} ± "
            f"{r['test_mse_std']:.2g} ({r['seeds']}) | {r['seconds_per_epoch']:.2f} |"
        )
    epochs = ", ".join(
        f"{k}: {v} of batch {meta['batch_size'][k]}" for k, v in meta["epochs"].items()
    )
    lines.append("")
    lines.append(f"Epochs: {epochs}; threads: {meta['threads']}; {meta['seconds']:.0f} s in all.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke test (~30 s)")
    ap.add_argument("--out", default=None, help="default benchmarks/results/estag[_quick]")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=None, help="default 3 (quick: 1)")
    ap.add_argument("--data", nargs="+", default=list(WINDOWS), choices=list(WINDOWS))
    ap.add_argument(
        "--epochs",
        type=int,
        default=None,
        dest="epoch_budget",
        help="one epoch budget for every data set (default: nbody 40, cluster 60)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.width = 16 if args.quick else 64
    args.epochs = {"nbody": 2, "cluster": 2} if args.quick else {"nbody": 40, "cluster": 60}
    if args.epoch_budget is not None:
        args.epochs = dict.fromkeys(WINDOWS, args.epoch_budget)
    seeds = args.seeds or (1 if args.quick else 3)
    out = Path(args.out or ("benchmarks/results/estag" + ("_quick" if args.quick else "")))
    t0 = time.perf_counter()
    runs = []
    for name in args.data:
        data = load(name, args.quick)
        print(f"{name}: {[len(d) for d in data]} train/val/test windows "
              f"(K, spacing, horizon, stride = {WINDOWS[name]})", flush=True)  # fmt: skip
        for model in MODELS:
            for seed in range(seeds if model != "LinearExtrapolation" else 1):
                # each finished run is kept: an interrupted benchmark resumes where it stopped
                key = {"data": name, "model": model, "seed": seed, "width": args.width,
                       "epochs": args.epochs[name], "windows": list(WINDOWS[name]),
                       "batch_size": BATCH[name],
                       "quick": args.quick}  # fmt: skip
                done = out / "runs" / f"{name}-{model}-{seed}.json"
                if done.is_file() and json.loads(done.read_text())["key"] == key:
                    r = json.loads(done.read_text())["result"]
                else:
                    r = {"data": name, "model": model, "seed": seed, "threads": args.threads,
                         **run_one(name, model, seed, data, args)}  # fmt: skip
                    atomic_write_text(json.dumps({"key": key, "result": r}), done)
                runs.append(r)
                print(f"  {model:<20} seed {seed}  test MSE {r['test_mse']:.5g}  "
                      f"{r['seconds_per_epoch']:.2f} s/epoch", flush=True)  # fmt: skip
                if not math.isfinite(r["test_mse"]):
                    raise SystemExit(f"{model} on {name} diverged (test MSE {r['test_mse']})")
    meta = {"epochs": {k: args.epochs[k] for k in args.data}, "threads": args.threads,
            "batch_size": {k: BATCH[k] for k in args.data},
            "width": args.width, "windows": {k: WINDOWS[k] for k in args.data},
            "seconds": time.perf_counter() - t0, "quick": args.quick}  # fmt: skip
    rows = summarise(runs)
    atomic_write_text(json.dumps({"meta": meta, "summary": rows, "runs": runs}, indent=1),
                      out / "results.json")  # fmt: skip
    text = table(rows, meta)
    atomic_write_text(text, out / "table.md")
    print("\n" + text)


if __name__ == "__main__":
    main()
