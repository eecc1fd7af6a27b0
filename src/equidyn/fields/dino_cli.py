"""``equidyn dino``: DINo against a grid-bound CNN on generated Navier–Stokes (and wave) data,
observed on r = 5 %, 25 %, 100 % of the grid; the MSE table In-t/Out-t × In-s/Out-s and on a
finer grid (the experiment behind ``benchmarks/dino.py``, see ``docs/dino.md``).

Protocol (full settings; ``--quick`` shrinks every size):

- data: ``navier_stokes_dataset`` (ν = 1e-3, DINo's forcing, solver step 1e-3), 64×64, 20
  frames Δt = 1; ``wave_dataset`` (c = 1, 20 frames Δt = 0.05, state (u, u_t) with each
  channel divided by its training standard deviation). Trajectories 0..15 train, 16..23 test.
- training horizon: the first 10 frames (In-t); frames 10..19 are Out-t.
- scores: MSE over the test trajectories' frames 1..19 (frame 0 is the given condition),
  In-t frames 1..9, Out-t 10..19.
- observation: one fixed random mask of ``round(r · 64²)`` points for train and test (In-s);
  the other points are Out-s. The finer grid is 128×128 (the solver's band-limited solution
  evaluated there; 3/4 of its points are new).
- DINo: code 32, MFN width 64, 3 layers, max frequency 16, dynamics MLP 128; 150 epochs of
  batch 4 trajectories × 10 frames × 512 observed points; test codes by 200 Adam steps.
- CNN: 4 circular 3×3 layers of 24 channels (input: the masked field, the mask and sin/cos
  coordinate channels), 2-step unrolled training on the observed points of frames 0..9, 20
  epochs of batch 16, lr 3e-3; forecasts by rollout from the masked first frame,
  bilinearly interpolated to the finer grid.

>>> from equidyn.fields.dino_cli import settings
>>> settings(quick=True)["size"]
32
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from equidyn._io import atomic_write_text
from equidyn.fields.dino import (
    DINo,
    forecast_dino,
    split_mse,
    subsampling_mask,
    train_dino,
)
from equidyn.fields.grid_models import (
    PeriodicCNN,
    grid_rollout,
    train_grid_model,
    upsample_bilinear,
)
from equidyn.fields.pde import FieldTrajectories, navier_stokes_dataset, wave_dataset

__all__ = ["format_table", "load_data", "main", "run_case", "settings"]

RATES = (0.05, 0.25, 1.0)
PARTS = ("in_t_in_s", "in_t_out_s", "out_t_in_s", "out_t_out_s")


def settings(quick: bool = False) -> dict[str, Any]:
    """The sizes of a run (see the module docstring)."""
    if quick:
        return {"size": 32, "fine": 64, "n_train": 4, "n_test": 2, "frames": 8,
                "train_frames": 4, "solver_dt": 5e-3, "code": 16, "width": 32, "hidden": 64,
                "max_frequency": 8.0, "epochs": 8, "batch": 4, "points": 256,
                "adapt_steps": 30, "cnn_width": 8, "cnn_depth": 2, "cnn_epochs": 3,
                "rates": (0.25, 1.0)}  # fmt: skip
    return {"size": 64, "fine": 128, "n_train": 16, "n_test": 8, "frames": 20,
            "train_frames": 10, "solver_dt": 1e-3, "code": 32, "width": 64, "hidden": 128,
            "max_frequency": 16.0, "epochs": 150, "batch": 4, "points": 512,
            "adapt_steps": 200, "cnn_width": 24, "cnn_depth": 4, "cnn_epochs": 20,
            "rates": RATES}  # fmt: skip


def load_data(name: str, s: dict[str, Any]) -> tuple[FieldTrajectories, torch.Tensor]:
    """The trajectories (train first, then test) and the per-channel scale they are divided by."""
    n = s["n_train"] + s["n_test"]
    if name == "navier_stokes":
        data = navier_stokes_dataset(n, size=s["size"], frames=s["frames"], dt=s["solver_dt"])
        return data, torch.ones(1)
    if name == "wave":
        data = wave_dataset(n, size=s["size"], frames=s["frames"])
        scale = data.fields[: s["n_train"]].std(dim=(0, 1, 3, 4))  # [2]
        return data, scale
    raise ValueError(f"unknown data set {name!r}; expected 'navier_stokes' or 'wave'")


def run_case(name: str, rate: float, s: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Train DINo and the CNN on ``name`` observed at ``rate``; their split MSEs and forecasts."""
    data, scale = load_data(name, s)
    fields = data.fields / scale[:, None, None]
    fine = data.at_resolution(s["fine"]) / scale[:, None, None]
    train, test = fields[: s["n_train"]], fields[s["n_train"] :]
    fine_test = fine[s["n_train"] :]
    mask = subsampling_mask(s["size"], rate, seed=seed)
    tf, channels = s["train_frames"], fields.shape[2]
    out: dict[str, Any] = {"data": name, "rate": rate, "seed": seed,
                           "observed_points": int(mask.sum())}  # fmt: skip

    torch.manual_seed(seed)
    dino = DINo(code_dim=s["code"], channels=channels, width=s["width"], layers=3,
                hidden=s["hidden"], max_frequency=s["max_frequency"])  # fmt: skip
    fit = train_dino(dino, train, data.times, mask, tf, epochs=s["epochs"], batch_size=s["batch"],
                     points_per_frame=s["points"], seed=seed)  # fmt: skip
    t0 = time.perf_counter()
    pred_fine = forecast_dino(dino, test[:, 0], mask, data.times, out_size=s["fine"],
                              steps=s["adapt_steps"])  # fmt: skip
    pred = pred_fine[..., :: s["fine"] // s["size"], :: s["fine"] // s["size"]]  # the same points
    # frame 0 is the given condition: scored are frames 1.. (In-t: 1..tf-1, Out-t: tf..)
    out["dino"] = {**split_mse(pred[:, 1:], test[:, 1:], mask, tf - 1),
                   **{f"fine_{k}": v for k, v in
                      split_mse(pred_fine[:, 1:], fine_test[:, 1:], None, tf - 1).items()
                      if k in ("in_t", "out_t")},
                   "train_seconds": fit.seconds, "forecast_seconds": time.perf_counter() - t0,
                   "params": sum(p.numel() for p in dino.parameters() if p.requires_grad),
                   "final_reconstruction": fit.history[-1]["reconstruction"]}  # fmt: skip

    torch.manual_seed(seed)
    cnn = PeriodicCNN(channels, s["cnn_width"], s["cnn_depth"])
    r = train_grid_model(cnn, train, mask, tf, epochs=s["cnn_epochs"], lr=3e-3, seed=seed)
    cnn_pred = grid_rollout(cnn, test[:, 0], mask, test.shape[1])
    cnn_fine = upsample_bilinear(cnn_pred, s["fine"])
    out["cnn"] = {**split_mse(cnn_pred[:, 1:], test[:, 1:], mask, tf - 1),
                  **{f"fine_{k}": v for k, v in
                     split_mse(cnn_fine[:, 1:], fine_test[:, 1:], None, tf - 1).items()
                     if k in ("in_t", "out_t")},
                  "train_seconds": r["seconds"],
                  "params": sum(p.numel() for p in cnn.parameters())}  # fmt: skip
    out["maps"] = {"truth": test[0, :, 0].clone(), "dino": pred[0, :, 0].clone(),
                   "cnn": cnn_pred[0, :, 0].clone(),
                   "mask": mask}  # fmt: skip
    return out


def _fmt(v: float) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def format_table(runs: list[dict[str, Any]]) -> str:
    """A Markdown table: rows (data, r, model), columns the split MSEs and the finer grid."""
    lines = [
        "| data | r | model | In-t In-s | In-t Out-s | Out-t In-s | Out-t Out-s | "
        "finer grid In-t | finer grid Out-t | train s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for model in ("dino", "cnn"):
            m = run[model]
            cells = [_fmt(m[k]) for k in PARTS] + [_fmt(m["fine_in_t"]), _fmt(m["fine_out_t"])]
            label = "DINo" if model == "dino" else "CNN"
            lines.append(f"| {run['data']} | {run['rate']:.0%} | {label} | "
                         + " | ".join(cells) + f" | {m['train_seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="equidyn dino", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    ap.add_argument("--data", nargs="+", default=["navier_stokes"],
                    choices=["navier_stokes", "wave"])  # fmt: skip
    ap.add_argument(
        "--rates",
        nargs="+",
        type=float,
        default=None,
        help="observed fractions of the grid (default 0.05 0.25 1; quick: 0.25 1)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None, help="write the results (no maps) here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    s = settings(args.quick)
    for r in args.rates or ():
        if not 0 < r <= 1:
            ap.error(f"--rates must be in (0, 1], got {r}")
    runs = []
    for name in args.data:
        for rate in args.rates or s["rates"]:
            run = run_case(name, rate, s)
            run.pop("maps")
            runs.append(run)
            print(f"{name} r={rate:.0%}: DINo In-t {run['dino']['in_t']:.3g} Out-t "
                  f"{run['dino']['out_t']:.3g} | CNN In-t {run['cnn']['in_t']:.3g} Out-t "
                  f"{run['cnn']['out_t']:.3g}", flush=True)  # fmt: skip
    print("\n" + format_table(runs))
    if args.json:
        atomic_write_text(json.dumps({"settings": s, "runs": runs}, indent=1), Path(args.json))
    return 0
