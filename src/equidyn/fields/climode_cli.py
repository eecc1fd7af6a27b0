"""``equidyn climode``: train ClimODE and an autoregressive ResNet on the generated tracers and
print latitude-weighted RMSE and ACC against lead time next to persistence.

The data are :func:`~equidyn.fields.tracers.tracer_dataset` (generated and cached on first use;
synthetic years of ``--steps-per-year`` 6-hour steps, the last two for validation and test).
Both models are trained by :class:`~equidyn.train.trainer.Trainer` on 4-step rollouts
(:class:`~equidyn.fields.weather_task.WeatherForecastTask`) for the same budget; the table
is measured on the test year. ``--out`` receives each model's run (checkpoint, log) and
``results.json``. The full comparison (two seeds, plots) is ``benchmarks/climode.py``.

Example: ``equidyn climode --epochs 6 --out runs/climode``; ``equidyn climode --quick`` is a
smoke test (seconds).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from equidyn._io import atomic_write_text
from equidyn.fields.climode import ClimODE
from equidyn.fields.tracers import tracer_dataset
from equidyn.fields.weather_baselines import ARResNet, Persistence
from equidyn.fields.weather_task import WeatherForecastTask
from equidyn.train.config import TrainingConfig
from equidyn.train.trainer import Trainer

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="equidyn climode", description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=6, help="epochs of 10 batches (default 6)")
    ap.add_argument("--steps-per-year", type=int, default=120)
    ap.add_argument("--leads", type=int, default=12, help="6-hour steps forecast (default 12)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="equidyn-climode")
    ap.add_argument("--quick", action="store_true", help="tiny data and budget (a smoke test)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.epochs < 1 or args.leads < 1:
        raise SystemExit(f"--epochs and --leads must be >= 1, got {args.epochs}, {args.leads}")
    torch.set_num_threads(args.threads)
    year = 16 if args.quick else args.steps_per_year
    leads = min(args.leads, 4) if args.quick else args.leads
    data = tracer_dataset(steps_per_year=year, years=3 if args.quick else 5,
                          spinup=4 if args.quick else 40)  # fmt: skip
    task = WeatherForecastTask(data, train_steps=2 if args.quick else 4, eval_steps=leads,
                               eval_stride=4, batch_size=8,
                               batches_per_epoch=2 if args.quick else 10,
                               fit_iterations=5 if args.quick else 50)  # fmt: skip
    train = data.fields[data.split_slices["train"]]
    width = 8 if args.quick else 0
    out = Path(args.out)
    results = {}
    models: dict[str, torch.nn.Module] = {"Persistence": Persistence(3, data.grid)}
    for name in ("ARResNet", "ClimODE"):
        torch.manual_seed(args.seed)
        model: ARResNet | ClimODE
        if name == "ARResNet":
            model = ARResNet(3, data.grid, year, width=width or 32)
        else:
            model = ClimODE(3, data.grid, year, width=width or 24)
        model.set_normalisation(train)
        cfg = TrainingConfig(epochs=1 if args.quick else args.epochs, lr=2e-3, ema_decay=None,
                             schedule="cosine", max_grad_norm=1.0, seed=args.seed,
                             output_dir=str(out / name), progress=False, log_epochs=True,
                             plots=False)  # fmt: skip
        print(f"training {name}", flush=True)
        Trainer(model, task, cfg).fit()
        models[name] = model
    for name, trained in models.items():
        results[name] = {k: v.tolist() for k, v in task.scores(trained, "test").items()}
    atomic_write_text(json.dumps({"variables": list(data.variables), "results": results},
                                 indent=1), out / "results.json")  # fmt: skip
    shown = [n for n in (1, 2, 4, 8, 12, 20, 28) if n <= leads]
    print("\nlatitude-weighted RMSE / ACC on the test year, by lead time")
    print(f"{'variable':<8} {'model':<12} " + " ".join(f"{6 * n:>12} h" for n in shown))
    for k, var in enumerate(data.variables):
        for name, r in results.items():
            cells = " ".join(f"{r['rmse'][n - 1][k]:.4f} / {r['acc'][n - 1][k]:.3f}" for n in shown)
            print(f"{var:<8} {name:<12} {cells}")
    print(f"\nwritten to {out}/")
    return 0
