"""Charged N-body experiments (issue 5): the table, equivariance vs augmentation, rollouts.

Every run is one ``equidyn nbody`` process (so runs can go in parallel with ``--jobs`` and
each resumes from its own checkpoint); this script decides the runs, starts them, collects
their ``result.json`` files and writes ``summary.md``, ``augmentation.png`` and
``rollout.png`` into ``--out``.

(a) table: every model by the protocol (frame 30 → 40, 3000/2000/2000, Adam 5e-4, batch 100,
    test MSE at best validation), next to the published numbers, with seconds per epoch;
(b) augment: the non-equivariant GNN trained with random rotations vs EGNN at 100, 300,
    1000 and 3000 training trajectories; test MSE and the measured equivariance error
    (mean |f(gx) − g f(x)|² over random g ∈ E(3)); the number of epochs is chosen so that
    every size sees the same number of training samples (``--samples``);
(c) rollout: EGNN with a velocity head vs the neural ODEs (EGNN field; pair-force field),
    all trained on all (t → t + 10) frame pairs, then 10 chained predictions on 200 long
    held-out trajectories: position MSE and energy drift after each.

Allocator settings: default glibc allocator (no MALLOC_* variables); one torch thread per run.

    python benchmarks/nbody.py --quick                 # seconds, for CI
    python benchmarks/nbody.py --part table --jobs 3   # the real thing (minutes to hours)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from equidyn.experiments.published import NBODY_PAPER_EPOCHS as PAPER_EPOCHS
from equidyn.experiments.published import NBODY_TEST_MSE as PUBLISHED

# the pair-force neural ODE's training recipe (docs/nbody.md): stage 1 learns the force law at
# long range (softening 0.2, the 5 % worst trajectories trimmed), stage 2 fine-tunes it with a
# shorter softening on all but the worst 1 %
PAIR_ODE = ["--lr", "3e-3", "--schedule", "cosine", "--clip-grad", "1", "--trim", "0.95"]
PAIR_ODE_FINETUNE = [
    *("--init-from", "table_pair_ode", "--softening", "0.1", "--trim", "0.99", "--lr", "1e-3"),
    *("--schedule", "cosine", "--clip-grad", "1", "--eval-every", "1"),
]

# model -> (epochs, extra arguments) of the table runs
TABLE = {
    "egnn_vel": (300, ["--eval-every", "5", "--schedule", "cosine"]),
    "pair_ode": (11, ["--eval-every", "1", *PAIR_ODE]),
    "gnn": (30, ["--eval-every", "3"]),
    "neural_ode": (5, ["--eval-every", "1", "--layers", "2", "--ode-steps", "2"]),
    "radial_field": (30, ["--eval-every", "3"]),
    "linear": (30, ["--eval-every", "3"]),
    "egnn": (30, ["--eval-every", "3"]),
}
SIZES = (100, 300, 1000, 3000)


def _run_specs(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    specs: list[tuple[str, list[str]]] = []
    scale = args.epoch_scale
    parts = {"table", "augment", "rollout"} if args.part == "all" else {args.part}
    if "table" in parts:
        for model in args.models.split(","):
            epochs, extra = TABLE[model]
            e = max(1, round(epochs * scale))
            specs.append((f"table_{model}", ["--model", model, "--epochs", str(e), *extra]))
            if model == "pair_ode":
                e2 = str(max(1, round(12 * scale)))
                tune = ["--model", model, "--epochs", e2, *PAIR_ODE_FINETUNE]
                specs.append(("table_pair_ode_finetuned", tune))
    if "rollout" in parts:
        e = max(1, round(args.rollout_epochs * scale))
        common = ["--task", "rollout", "--n-train", str(args.rollout_n_train), "--epochs", str(e)]
        specs.append(("rollout_egnn_vel", ["--model", "egnn_vel", *common]))
        specs.append(
            (
                "rollout_neural_ode",
                ["--model", "neural_ode", "--layers", "2", "--ode-steps", "2", *common],
            )
        )
        specs.append(("rollout_pair_ode", ["--model", "pair_ode", *PAIR_ODE, *common]))
    if "augment" in parts:
        for n in (30, 100) if args.quick else SIZES:
            epochs = max(1, round(args.samples / n * scale))
            every = str(max(1, epochs // 10))
            common = ["--n-train", str(n), "--epochs", str(epochs), "--eval-every", every]
            specs.append((f"aug_gnn_{n}", ["--model", "gnn", "--augment", *common]))
            specs.append((f"aug_egnn_vel_{n}", ["--model", "egnn_vel", *common]))
    if args.quick:
        specs = [(name, [*a, "--quick"]) for name, a in specs]
    return specs


def _after(a: list[str]) -> str | None:
    """The run whose checkpoint this run starts from (``--init-from RUN``), if any."""
    return a[a.index("--init-from") + 1] if "--init-from" in a else None


def _launch(specs: list[tuple[str, list[str]]], out: Path, jobs: int) -> None:
    pending = list(specs)
    running: list[tuple[str, subprocess.Popen[bytes], float]] = []
    while pending or running:
        while pending and len(running) < jobs:
            ready = [s for s in pending if _after(s[1]) not in {n for n, *_ in running}]
            ready = [s for s in ready if _after(s[1]) not in {n for n, _ in pending}]
            if not ready:
                break
            pending.remove(ready[0])
            name, a = ready[0]
            if _after(a) is not None:  # a fine-tuning run: start from that run's checkpoint
                i = a.index("--init-from")
                a = [*a[: i + 1], str(out / a[i + 1] / "checkpoint.pt"), *a[i + 2 :]]
            run_dir = out / name
            if (run_dir / "result.json").exists():
                print(f"[skip] {name}: result.json exists")
                continue
            run_dir.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "equidyn", "nbody", *a, "--out", str(run_dir)]
            print(f"[start] {name}: {' '.join(cmd[3:])}", flush=True)
            log = open(run_dir / "stdout.txt", "ab")
            running.append((name, subprocess.Popen(cmd, stdout=log, stderr=log), time.time()))
        time.sleep(0.5)
        for item in list(running):
            name, proc, t0 = item
            if proc.poll() is not None:
                running.remove(item)
                print(f"[done] {name}: exit {proc.returncode} after {time.time() - t0:.0f} s")


def _load(out: Path, name: str) -> dict | None:
    path = out / name / "result.json"
    return json.loads(path.read_text()) if path.exists() else None


def _summary(out: Path, specs: list[tuple[str, list[str]]]) -> str:
    lines: list[str] = []
    names = {n for n, _ in specs}
    table = [n for n, _ in specs if n.startswith("table_")]
    if table:
        lines += [
            "## (a) charged N-body, frame 30 → 40, 3000 training trajectories",
            "",
            "| model | test MSE (ours) | published | epochs (best) | s / epoch | equiv. MSE |",
            "|---|---|---|---|---|---|",
        ]
        for name in table:
            r = _load(out, name)
            if r is None:
                continue
            pub = PUBLISHED.get(r["model"])
            lines.append(
                f"| {name[6:]} | {r['test_mse']:.4f} | {pub if pub else '—'} | "
                f"{r['epochs']} ({r['best_epoch']}) | {r['seconds_per_epoch']:.1f} | "
                f"{r['equivariance_mse']:.1e} |"
            )
        lines += ["", f"(paper: {PAPER_EPOCHS} epochs)", ""]
    sizes = sorted({int(n.rsplit("_", 1)[1]) for n in names if n.startswith("aug_")})
    aug = [(m, n) for m in ("gnn", "egnn_vel") for n in sizes if f"aug_{m}_{n}" in names]
    if aug:
        lines += [
            "## (b) equivariance vs augmentation",
            "",
            "| n_train | GNN + rotations: test MSE | GNN equiv. MSE | EGNN test MSE | "
            "EGNN equiv. MSE | epochs |",
            "|---|---|---|---|---|---|",
        ]
        xs, curves = [], {"gnn": [], "egnn_vel": []}
        for n in sizes:
            g, e = _load(out, f"aug_gnn_{n}"), _load(out, f"aug_egnn_vel_{n}")
            if g is None or e is None:
                continue
            xs.append(n)
            curves["gnn"].append((g["test_mse"], g["equivariance_mse"]))
            curves["egnn_vel"].append((e["test_mse"], e["equivariance_mse"]))
            lines.append(
                f"| {n} | {g['test_mse']:.4f} | {g['equivariance_mse']:.1e} | "
                f"{e['test_mse']:.4f} | {e['equivariance_mse']:.1e} | {e['epochs']} |"
            )
        lines.append("")
        if xs:
            _plot_augmentation(out / "augmentation.png", xs, curves)
    rolling = ("rollout_egnn_vel", "rollout_neural_ode", "rollout_pair_ode")
    rolls = [(n, _load(out, n)) for n in rolling if n in names]
    rolls = [(n, r) for n, r in rolls if r is not None]
    if rolls:
        lines += [
            "## (c) rollouts: 10 chained predictions of 10 frames (1000 steps) each",
            "",
            "| chained step | "
            + " | ".join(f"{n[8:]} MSE | {n[8:]} ΔE" for n, _ in rolls)
            + " | simulator ΔE |",
            "|---|" + "---|---|" * len(rolls) + "---|",
        ]
        for k in range(len(rolls[0][1]["rollout"]["mse"])):
            cells = []
            for _, r in rolls:
                cells += [f"{r['rollout']['mse'][k]:.4f}", f"{r['rollout']['energy_drift'][k]:.4f}"]
            true = rolls[0][1]["rollout"]["true_energy_drift"][k]
            lines.append(f"| {k + 1} | " + " | ".join(cells) + f" | {true:.4f} |")
        one_step = ", ".join(f"{n[8:]} {r['test_mse']:.4f}" for n, r in rolls)
        lines += ["", f"single-step test MSE (frame 30 → 40) of these models: {one_step}", ""]
        _plot_rollout(out / "rollout.png", rolls)
    return "\n".join(lines)


def _plot_augmentation(path: Path, xs: list[int], curves: dict[str, list]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("gnn", "GNN + rotation augmentation"), ("egnn_vel", "EGNN (equivariant)")):
        ax[0].loglog(xs, [c[0] for c in curves[key]], "o-", label=label)
        ax[1].loglog(xs, [max(c[1], 1e-16) for c in curves[key]], "o-", label=label)
    ax[0].set(xlabel="training trajectories", ylabel="test MSE", title="accuracy")
    ax[1].set(xlabel="training trajectories", ylabel="mean |f(gx) − g f(x)|²", title="equivariance")
    for a in ax:
        a.legend()
        a.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_rollout(path: Path, rolls: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in rolls:
        k = range(1, len(r["rollout"]["mse"]) + 1)
        ax[0].semilogy(k, r["rollout"]["mse"], "o-", label=name[8:])
        ax[1].semilogy(k, r["rollout"]["energy_drift"], "o-", label=name[8:])
    k = range(1, len(rolls[0][1]["rollout"]["mse"]) + 1)
    ax[1].semilogy(k, rolls[0][1]["rollout"]["true_energy_drift"], "k--", label="simulator")
    ax[0].set(xlabel="chained predictions (×1000 steps)", ylabel="position MSE")
    ax[1].set(xlabel="chained predictions (×1000 steps)", ylabel="mean |E_k − E_0|")
    for a in ax:
        a.legend()
        a.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["table", "augment", "rollout", "all"], default="all")
    p.add_argument(
        "--models",
        default="egnn_vel,pair_ode,gnn,neural_ode,radial_field,linear",
        help=f"table models, comma separated, from {sorted(TABLE)}",
    )
    p.add_argument("--epoch-scale", type=float, default=1.0, help="multiply every epoch count")
    p.add_argument("--samples", type=int, default=15_000, help="(b): samples seen per run")
    p.add_argument("--rollout-n-train", type=int, default=100)
    p.add_argument("--rollout-epochs", type=int, default=2)
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel")
    p.add_argument("--out", default="runs/nbody_benchmark")
    p.add_argument("--quick", action="store_true", help="tiny runs (CI)")
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.quick and args.out == "runs/nbody_benchmark":
        out = Path("runs/nbody_benchmark_quick")
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    specs = _run_specs(args)
    t0 = time.time()
    _launch(specs, out, args.jobs)
    text = _summary(out, specs)
    (out / "summary.md").write_text(text + "\n")
    print(text)
    print(f"total {time.time() - t0:.0f} s; results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
