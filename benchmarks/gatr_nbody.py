"""GATr on gravitational n-body (issue 14): the table, forward+backward timing, a scale study.

Data (``equidyn.dynamics.PlanetaryNBodyDataset``, generated here): one heavy body (mass
U(1, 2)) and ``--planets`` light ones (mass U(0.01, 0.05)) on roughly circular orbits (radius
U(0.5, 2), speed U(0.8, 1.2) × circular, random orbital planes), the centre of mass at rest and
the whole system shifted by N(0, 1); softened gravity (ε = 0.05) integrated with RK4 for 100
steps of dt 0.01. Task: predict the final positions from the initial positions, velocities and
masses (as in Brehmer et al. 2023).

Rows: GATr, a plain Transformer (``equidyn.models.Transformer``), the Transformer trained with
random E(3) transformations (rotations, reflections, translations: ``augment="e3"``),
equidyn's SEGNN and SE(3)-Transformer (node attribute the mass, edge attribute m_i m_j). Every
model is built by name from the registry and trained by the shared N-body task and trainer
(``equidyn.experiments.nbody_task.train``: Adam with a cosine schedule, best-validation
selection, CSV log, resumable checkpoints in ``--out/<run>``); the same data, batch size,
optimiser and number of optimiser steps for every row. A finished run is read back from its
``result.json``, an interrupted one resumes.

    python benchmarks/gatr_nbody.py --quick                  # seconds, for CI
    python benchmarks/gatr_nbody.py --steps 2000 --out runs/gatr
    python benchmarks/gatr_nbody.py --part scale --out runs/gatr_scale
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from equidyn._io import atomic_write_text
from equidyn.dynamics import PlanetaryNBodyDataset
from equidyn.experiments.nbody_task import train as train_task
from equidyn.models import ParticleModel, ParticleSystem, build_model

MODELS = ("gatr", "transformer", "transformer_aug", "segnn", "se3_transformer")
# Brehmer et al. 2023, reference implementation README: evaluation MSE, 1 % of the data
PUBLISHED = {
    "gatr": 0.0005,
    "segnn": 0.0006,
    "se3_transformer": 0.0025,
    "transformer": 0.0050,
    "mlp": 0.0776,
}


def build(name: str, width: int, blocks: int) -> ParticleModel:
    """Row ``name`` at GATr width ``width`` (the other models scaled to similar cost)."""
    registered, kwargs = {
        "gatr": ("GATr", {"num_features": width, "num_scalars": 2 * width}),
        "transformer": ("Transformer", {"num_features": 8 * width}),
        "transformer_aug": ("Transformer", {"num_features": 8 * width}),
        "segnn": ("SEGNN", {"num_features": 4 * width, "edge_attr_dim": 1}),
        "se3_transformer": ("SE3Transformer", {"num_features": 2 * width, "edge_attr_dim": 1}),
    }[name]
    model = build_model(registered, {**kwargs, "num_layers": blocks, "node_attr_dim": 1},
                        kind="particle")  # fmt: skip
    assert isinstance(model, ParticleModel)
    return model


def system(d: PlanetaryNBodyDataset, n: int) -> ParticleSystem:
    return ParticleSystem(d.pos[:n], d.vel[:n], d.charges[:n])


def steps_per_epoch(n_train: int, batch: int) -> int:
    return math.ceil(n_train / batch)


def train(
    name: str,
    data: dict,
    args: argparse.Namespace,
    width: int,
    blocks: int,
    seed: int,
    out: Path,
    steps: int | None = None,
) -> dict[str, Any]:
    """Train row ``name`` for about ``steps`` (default ``args.steps``) optimiser steps (whole
    epochs) in ``out``; a finished run is read back from ``out/result.json``."""
    steps = args.steps if steps is None else steps
    done = out / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    n_train = len(data["train"])
    per_epoch = steps_per_epoch(n_train, args.batch)
    epochs = max(1, round(steps / per_epoch))
    eval_every = max(1, round(args.eval_every / per_epoch))
    config = {"model": name, "width": width, "blocks": blocks, "n_train": n_train,
              "planets": args.planets, "steps": steps, "batch": args.batch, "lr": args.lr,
              "seed": seed}  # fmt: skip
    torch.manual_seed(seed)
    model = build(name, width, blocks)
    state = train_task(
        model, data["train"], data["val"], data["test"], epochs=epochs, out=out, seed=seed,
        augment="e3" if name == "transformer_aug" else False, eval_every=eval_every,
        batch_size=args.batch, lr=args.lr, weight_decay=0.0, schedule="cosine", config=config,
        progress=False,
    )  # fmt: skip
    result = {**config, "val_mse": state["best_valid"], "test_mse": state["best_test"],
              "params": sum(p.numel() for p in model.parameters()),
              "train_seconds": state["train_seconds"], "epochs": epochs,
              "steps_taken": epochs * per_epoch}  # fmt: skip
    atomic_write_text(json.dumps(result, indent=1), done)
    return result


def time_step(model: ParticleModel, batch: ParticleSystem, repeats: int) -> float:
    """Median seconds of one forward + backward on ``batch``."""
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        model.predict(batch).square().mean().backward()
        times.append(time.perf_counter() - t)
    return sorted(times[1:])[len(times[1:]) // 2]


def datasets(args: argparse.Namespace) -> dict[str, PlanetaryNBodyDataset]:
    def make(n: int, offset: int) -> PlanetaryNBodyDataset:
        return PlanetaryNBodyDataset(n, planets=args.planets, seed=args.data_seed + offset)

    return {
        "train": make(args.n_train, 1),
        "val": make(args.n_eval, 2),
        "test": make(args.n_eval, 3),
    }


def subset(d: PlanetaryNBodyDataset, n: int) -> PlanetaryNBodyDataset:
    """The first ``n`` systems of ``d`` (nested training sets)."""
    out = PlanetaryNBodyDataset.__new__(PlanetaryNBodyDataset)
    for key in ("pos", "vel", "masses", "charges", "future_pos", "future_vel", "target_pos",
                "target_vel"):  # fmt: skip
        setattr(out, key, getattr(d, key)[:n])
    return out


def part_table(args: argparse.Namespace, out: Path) -> str:
    data = datasets(args)
    rows = []
    for name in args.models:
        for seed in args.seeds:
            rows.append(train(name, data, args, args.width, args.blocks, seed,
                              out / f"{name}_seed{seed}"))  # fmt: skip
    batch = system(data["test"], args.batch)
    timing = {n: time_step(build(n, args.width, args.blocks), batch, args.repeats)
              for n in ("gatr", "transformer")}  # fmt: skip
    summary = {"rows": rows, "step_seconds": timing}
    atomic_write_text(json.dumps(summary, indent=1), out / "table.json")
    lines = [
        "| model | test MSE (mean ± std over seeds) | published (1 % data) | params | train s |",
        "|---|---|---|---|---|",
    ]
    for name in args.models:
        rs = [r for r in rows if r["model"] == name]
        mean, std = mean_std([r["test_mse"] for r in rs])
        pub = PUBLISHED.get(name.removesuffix("_aug"), "")
        secs = sum(r["train_seconds"] for r in rs) / len(rs)
        lines.append(f"| {name} | {mean:.5f} ± {std:.5f} | {pub} | {rs[0]['params']} | "
                     f"{secs:.0f} |")  # fmt: skip
    lines.append("")
    lines.append(f"forward+backward, batch {args.batch} x {args.planets + 1} bodies: "
                 + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in timing.items()))  # fmt: skip
    return "\n".join(lines)


def mean_std(xs: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    mean = sum(xs) / len(xs)
    return mean, (sum((x - mean) ** 2 for x in xs) / max(len(xs) - 1, 1)) ** 0.5


def training_flops(name: str, width: int, blocks: int, batch: ParticleSystem) -> int:
    """FLOPs of one forward + backward of a batch (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build(name, width, blocks)
    with FlopCounterMode(display=False) as fc:
        model.predict(batch).sum().backward()
    return fc.get_total_flops()


def part_scale(args: argparse.Namespace, out: Path) -> str:
    """Test MSE over data size, model size and steps; power laws in compute and in data."""
    if max(args.scale_train) > args.n_train:
        args = argparse.Namespace(**{**vars(args), "n_train": max(args.scale_train)})
    base = datasets(args)
    runs = []
    for n_train in args.scale_train:
        data = dict(base, train=subset(base["train"], n_train))
        batch = system(data["train"], args.batch)
        for width in args.scale_width:
            for name in ("gatr", "transformer", "transformer_aug"):
                step = training_flops(name, width, args.blocks, batch)
                for steps in args.scale_steps:
                    for seed in args.seeds:
                        run_dir = out / f"{name}_w{width}_n{n_train}_s{steps}_seed{seed}"
                        r = train(name, data, args, width, args.blocks, seed, run_dir, steps)
                        r["flops"] = step * r["steps_taken"]
                        runs.append(r)
                        print(json.dumps(r), flush=True)
    atomic_write_text(json.dumps(runs, indent=1), out / "scale.json")
    cells = mean_over_seeds(runs)
    most_data = [c for c in cells if c["n_train"] == max(args.scale_train)]
    largest = (max(args.scale_width), max(args.scale_steps))
    biggest = [c for c in cells if (c["width"], c["steps"]) == largest]
    compute_fits = fit_power_laws(most_data, "flops")
    data_fits = fit_power_laws(biggest, "n_train")
    plot_scale(out / "scale.png", most_data, compute_fits, biggest, data_fits)
    lines = ["| model | width | n_train | steps | training FLOPs | test MSE (mean ± std) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for c in cells:
        mse = f"{c['test_mse']:.4f} ± {c['test_mse_std']:.4f}"
        lines.append(f"| {c['model']} | {c['width']} | {c['n_train']} | {c['steps']} | "
                     f"{c['flops']:.2g} | {mse} |")  # fmt: skip
    lines += ["", f"in compute, n_train = {max(args.scale_train)} (all widths and steps):"]
    lines += [
        f"  {k}: MSE ≈ {a:.3g} · C^{b:.3f} ({n} points)" for k, (a, b, n) in compute_fits.items()
    ]
    lines += ["", f"in data, width {max(args.scale_width)}, {max(args.scale_steps)} steps:"]
    lines += [
        f"  {k}: MSE ≈ {a:.3g} · D^{b:.3f} ({n} points)" for k, (a, b, n) in data_fits.items()
    ]
    return "\n".join(lines)


def mean_over_seeds(runs: list[dict]) -> list[dict]:
    """One row per (model, width, n_train, steps): the test MSE's mean and std over seeds."""
    key = lambda r: (r["model"], r["width"], r["n_train"], r["steps"])  # noqa: E731
    cells = []
    for model, width, n_train, steps in sorted({key(r) for r in runs}):
        rs = [r for r in runs if key(r) == (model, width, n_train, steps)]
        mean, std = mean_std([r["test_mse"] for r in rs])
        cells.append({"model": model, "width": width, "n_train": n_train, "steps": steps,
                      "flops": rs[0]["flops"], "test_mse": mean, "test_mse_std": std,
                      "seeds": len(rs)})  # fmt: skip
    return cells


def fit_power_laws(cells: list[dict], x_key: str) -> dict[str, tuple[float, float, int]]:
    """Least-squares line in log-log space per model, ``MSE = a · x^b``: ``(a, b, points)``;
    models with fewer than two distinct ``x`` are left out."""
    fits = {}
    for name in sorted({c["model"] for c in cells}):
        pts = [(math.log(c[x_key]), math.log(c["test_mse"])) for c in cells if c["model"] == name]
        x, y = torch.tensor(pts, dtype=torch.float64).reshape(-1, 2).T
        if len(pts) < 2 or float(x.max() - x.min()) == 0:
            continue
        b = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
        fits[name] = (math.exp(float(y.mean()) - b * float(x.mean())), b, len(pts))
    return fits


def plot_scale(
    path: Path, by_compute: list[dict], compute_fits: dict, by_data: list[dict], data_fits: dict
) -> None:
    """Two log-log panels: test MSE against training FLOPs, and against training-set size."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot")
        return
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, cells, fits, key, label in (
        (axes[0], by_compute, compute_fits, "flops", "training FLOPs"),
        (axes[1], by_data, data_fits, "n_train", "training systems"),
    ):
        for name in sorted({c["model"] for c in cells}):
            pts = sorted((c[key], c["test_mse"]) for c in cells if c["model"] == name)
            ax.scatter(*zip(*pts), label=name, s=14)
            if name in fits:
                a, b, _ = fits[name]
                xs = torch.tensor([pts[0][0], pts[-1][0]], dtype=torch.float64)
                ax.plot(xs, a * xs**b, lw=1)
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="test MSE")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["table", "scale"], default="table")
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (for CI)")
    p.add_argument("--out", default="runs/gatr_nbody")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-eval", type=int, default=500)
    p.add_argument("--planets", type=int, default=4)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=16, help="GATr channels (others scaled)")
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds")
    p.add_argument("--data-seed", type=int, default=0, help="the data sets' seeds")
    p.add_argument("--scale-train", type=int, nargs="+", default=[100, 300, 1000])
    p.add_argument("--scale-width", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--scale-steps", type=int, nargs="+", default=None, help="default: --steps")
    args = p.parse_args(argv)
    if args.quick:
        args.n_train, args.n_eval, args.steps, args.batch = 16, 16, 4, 8
        args.width, args.blocks, args.eval_every, args.repeats = 2, 1, 2, 1
        args.scale_train, args.scale_width, args.scale_steps = [8, 16], [2, 4], [2, 4]
    args.scale_steps = args.scale_steps or [args.steps]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = part_table(args, out) if args.part == "table" else part_scale(args, out)
    load = os.getloadavg()[0]
    report += f"\n\n(load average {load:.1f} on {os.cpu_count()} cores while running)"
    atomic_write_text(report + "\n", out / f"{args.part}.md")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
