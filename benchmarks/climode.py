"""ClimODE against persistence, climatology and an autoregressive ResNet on generated tracers:
latitude-weighted RMSE and ACC against lead time (6 h ... 72 h), CRPS, mass drift.

Data (generated here, cached; see docs/climode.md): three weather-like tracers advected on
ClimODE's 5.625° grid (32×64) by analytic divergent, time-varying winds with sources and
diffusion, every 6 hours; synthetic years of 120 steps (30 days), 3 training years, 1
validation year, 1 test year. A sample sees 3 frames and forecasts 12 (72 h); the test
samples start every 4 frames of the test year.

Models: Persistence and Climatology (no parameters); ARResNet (width 32, 3 residual blocks)
and ClimODE (width 24; Euler, 2 steps per 6 h; van Leer advection), each trained by the one
Trainer for the same budget (epochs x 10 batches of 8 samples, 4-step rollouts: the ResNet
by latitude-weighted MSE, ClimODE by latitude-weighted Gaussian NLL), Adam lr 2e-3 with a
cosine schedule, gradient norm clipped at 1; the epoch with the best validation RMSE is
scored on the test year.

    python benchmarks/climode.py --quick   # a smoke test (< 60 s)
    python benchmarks/climode.py           # the table (about 15 min on 1 thread)

Writes results.json, table.md, rmse_vs_lead.png and forecast_maps.png to --out, and each
finished run to --out/runs/ (a rerun with the same settings reuses them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from equidyn._io import atomic_save, atomic_write_text, load_checkpoint
from equidyn.fields import (
    ARResNet,
    Climatology,
    ClimODE,
    Persistence,
    WeatherForecastTask,
    tracer_dataset,
)
from equidyn.train.config import TrainingConfig
from equidyn.train.trainer import Trainer

MODELS = ("Persistence", "Climatology", "ARResNet", "ClimODE")
TRAINED = ("ARResNet", "ClimODE")
LEADS_SHOWN = (1, 2, 4, 8, 12)  # steps of 6 h


def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return {"steps_per_year": 24, "years": 3, "spinup": 8, "eval_steps": 4, "eval_stride": 4,
                "epochs": 1, "batches_per_epoch": 2, "width": 8, "fit_iterations": 5}  # fmt: skip
    return {"steps_per_year": 120, "years": 5, "spinup": 40, "eval_steps": 12, "eval_stride": 4,
            "epochs": 12, "batches_per_epoch": 10, "width": 0, "fit_iterations": 50}  # fmt: skip


def build(name: str, task: WeatherForecastTask, width: int) -> torch.nn.Module:
    grid, year = task.grid, task.data.config.steps_per_year
    train = task.frames[task.data.split_slices["train"]]
    if name == "Persistence":
        return Persistence(3, grid)
    if name == "Climatology":
        return Climatology(task.clim)
    model: ARResNet | ClimODE
    if name == "ARResNet":
        model = ARResNet(3, grid, year, width=width or 32)
    else:
        model = ClimODE(3, grid, year, width=width or 24)
    model.set_normalisation(train)
    return model


def run_one(name: str, seed: int, task: WeatherForecastTask, s: dict[str, Any],
            out: Path) -> dict[str, Any]:  # fmt: skip
    torch.manual_seed(seed)
    model = build(name, task, s["width"])
    params = sum(p.numel() for p in model.parameters())
    t0 = time.perf_counter()
    summary: dict[str, Any] = {}
    if name in TRAINED:
        cfg = TrainingConfig(epochs=s["epochs"], lr=2e-3, ema_decay=None, schedule="cosine",
                             max_grad_norm=1.0, seed=seed, output_dir=tempfile.mkdtemp(),
                             progress=False, log_epochs=False, plots=False)  # fmt: skip
        summary = Trainer(model, task, cfg).fit()
    train_s = time.perf_counter() - t0
    sc = task.scores(model, "test")
    if seed == 0:  # one test sample's forecast, for the maps
        f = task.forecasts(model, "test")
        mid = len(f["mean"]) // 2
        atomic_save({"mean": f["mean"][mid], "truth": f["truth"][mid]},
                    out / "runs" / f"maps-{name}.pt")  # fmt: skip
    return {"model": name, "seed": seed, "params": params, "train_seconds": train_s,
            "best_epoch": summary.get("best_epoch"),
            **{k: v.tolist() for k, v in sc.items()}}  # fmt: skip


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in MODELS:
        rs = [r for r in runs if r["model"] == name]
        if not rs:
            continue
        row: dict[str, Any] = {
            "model": name, "seeds": len(rs), "params": rs[0]["params"],
            "train_seconds": statistics.fmean(r["train_seconds"] for r in rs),
        }  # fmt: skip
        for key in ("rmse", "acc", "crps", "mass_drift", "ode_mass_drift"):
            if key not in rs[0]:
                continue
            t = torch.tensor([r[key] for r in rs])  # [seeds, L, K]
            row[key] = t.mean(0).tolist()
            row[key + "_std"] = (t.std(0) if len(rs) > 1 else torch.zeros_like(t[0])).tolist()
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]], meta: dict[str, Any], variables: list[str]) -> str:
    leads = [n for n in LEADS_SHOWN if n <= meta["eval_steps"]]
    head = " | ".join(f"{6 * n} h" for n in leads)
    lines = []
    for key, title in (("rmse", "latitude-weighted RMSE"), ("acc", "ACC")):
        lines += [f"**{title}** (mean ± std over seeds)", "",
                  f"| variable | model | {head} |", "|---|---|" + "---:|" * len(leads)]  # fmt: skip
        for k, var in enumerate(variables):
            for r in rows:
                if key == "acc" and r["model"] == "Climatology":
                    continue  # its anomaly is zero: ACC undefined
                cells = " | ".join(f"{r[key][n - 1][k]:.4f} ± {r[key + '_std'][n - 1][k]:.4f}"
                                   for n in leads)  # fmt: skip
                lines.append(f"| {var} | {r['model']} | {cells} |")
        lines.append("")
    lines += ["**CRPS, mass drift at the last lead, cost**", "",
              "| model | CRPS (" + ", ".join(variables) + f") at {6 * leads[-1]} h | "
              "relative mass drift of the forecast | of the ODE state | parameters | "
              "train s |", "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        crps = ", ".join(f"{c:.4f}" for c in r["crps"][leads[-1] - 1]) if "crps" in r else "–"
        drift = statistics.fmean(r["mass_drift"][-1])
        ode = f"{statistics.fmean(r['ode_mass_drift'][-1]):.1e}" if "ode_mass_drift" in r else "–"
        lines.append(f"| {r['model']} | {crps} | {drift:.1e} | {ode} | {r['params']:,} | "
                     f"{r['train_seconds']:.0f} |")  # fmt: skip
    lines += ["", f"Threads: {meta['threads']}; {meta['seconds']:.0f} s in all; true mass "
              "drift of the data at the last lead (sources on): "
              f"{meta['true_mass_drift']:.1e}."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plots(rows: list[dict[str, Any]], out: Path, variables: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(variables), figsize=(4 * len(variables), 3.2))
    for k, (ax, var) in enumerate(zip(axes, variables)):
        for r in rows:
            mean = torch.tensor(r["rmse"])[:, k]
            std = torch.tensor(r["rmse_std"])[:, k]
            hours = 6 * torch.arange(1, len(mean) + 1)
            ax.errorbar(hours, mean, yerr=std, label=r["model"], marker="o", ms=3, capsize=2)
        ax.set(title=var, xlabel="lead (h)", ylabel="lat-weighted RMSE")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "rmse_vs_lead.png", dpi=110)
    plt.close(fig)
    maps = {m: load_checkpoint(out / "runs" / f"maps-{m}.pt") for m in ("ClimODE", "ARResNet",
            "Persistence") if (out / "runs" / f"maps-{m}.pt").is_file()}  # fmt: skip
    if "ClimODE" not in maps:
        return
    truth = maps["ClimODE"]["truth"]  # [L, K, H, W]
    leads = [1, truth.shape[0] // 2, truth.shape[0]]
    names = ["truth", *maps]
    fig, axes = plt.subplots(len(names), len(leads), figsize=(3.3 * len(leads), 1.9 * len(names)))
    lo, hi = float(truth[:, 0].min()), float(truth[:, 0].max())
    for i, name in enumerate(names):
        field = truth if name == "truth" else maps[name]["mean"]
        for j, n in enumerate(leads):
            ax = axes[i, j]
            ax.imshow(field[n - 1, 0], origin="lower", extent=(0, 360, -90, 90), vmin=lo,
                      vmax=hi, cmap="viridis")  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{variables[0]}, +{6 * n} h", fontsize=9)
            if j == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "forecast_maps.png", dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke test (< 60 s)")
    ap.add_argument("--out", default=None, help="default benchmarks/results/climode[_quick]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=None, help="default 2 (quick: 1)")
    ap.add_argument("--epochs", type=int, default=None, help="default 12 (quick: 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = settings(args.quick)
    if args.epochs is not None:
        s["epochs"] = args.epochs
    seeds = args.seeds or (1 if args.quick else 2)
    out = Path(args.out or ("benchmarks/results/climode" + ("_quick" if args.quick else "")))
    t0 = time.perf_counter()
    data = tracer_dataset(s["steps_per_year"], s["years"], s["spinup"])
    task = WeatherForecastTask(data, history=3, train_steps=4, eval_steps=s["eval_steps"],
                               eval_stride=s["eval_stride"], batch_size=8,
                               batches_per_epoch=s["batches_per_epoch"],
                               fit_iterations=s["fit_iterations"])  # fmt: skip
    print(f"data: {tuple(data.fields.shape)} frames; samples "
          f"{ {k: len(v) for k, v in task.starts.items()} }; {time.perf_counter() - t0:.0f} s",
          flush=True)  # fmt: skip
    runs = []
    for name in MODELS:
        for seed in range(seeds if name in TRAINED else 1):
            key = {"model": name, "seed": seed, **s}
            done = out / "runs" / f"{name}-{seed}.json"
            if done.is_file() and json.loads(done.read_text())["key"] == key:
                r = json.loads(done.read_text())["result"]
            else:
                r = {"threads": args.threads, **run_one(name, seed, task, s, out)}
                atomic_write_text(json.dumps({"key": key, "result": r}), done)
            runs.append(r)
            rmse = torch.tensor(r["rmse"])
            print(f"  {name:<12} seed {seed}  RMSE at 6 h / last lead "
                  f"{rmse[0].tolist()} / {rmse[-1].tolist()}  {r['train_seconds']:.0f} s",
                  flush=True)  # fmt: skip
            if not torch.isfinite(rmse).all():
                raise SystemExit(f"{name} diverged (RMSE {rmse.tolist()})")
    rows = summarise(runs)
    meta = {**s, "threads": args.threads, "seeds": seeds, "seconds": time.perf_counter() - t0,
            "quick": args.quick, "variables": list(data.variables),
            "true_mass_drift": statistics.fmean(runs[0]["true_mass_drift"][-1])}  # fmt: skip
    atomic_write_text(json.dumps({"meta": meta, "summary": rows, "runs": runs}, indent=1),
                      out / "results.json")  # fmt: skip
    text = table(rows, meta, list(data.variables))
    atomic_write_text(text, out / "table.md")
    plots(rows, out, list(data.variables))
    print("\n" + text)


if __name__ == "__main__":
    main()
