"""GATr on gravitational n-body (issue 14): the table, forward+backward timing, a scale study.

Data (generated here): one heavy body (mass U(1, 2)) and ``--planets`` light ones (mass
U(0.01, 0.05)) on roughly circular orbits (radius U(0.5, 2), speed U(0.8, 1.2) × circular,
random orbital planes), the centre of mass at rest and the whole system shifted by N(0, 1);
softened gravity (ε = 0.05) integrated with RK4 for 100 steps of dt 0.01. Task: predict the
final positions from the initial positions, velocities and masses (as in Brehmer et al. 2023).

Rows: GATr, a plain Transformer, the Transformer trained with random E(3) transformations
(rotations, reflections, translations), equidyn's SEGNN and SE(3)-Transformer (node attribute
the mass, edge attribute m_i m_j); the same data, batch size, optimiser and number of steps.

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

import torch
from torch import nn

from equidyn.dynamics.systems import GravityNBody, simulate
from equidyn.models import SEGNN, SE3Transformer
from equidyn.models.gatr import GATr
from equidyn.o3 import rand_matrix

MODELS = ("gatr", "transformer", "transformer_aug", "segnn", "se3_transformer")
# Brehmer et al. 2023, reference implementation README: evaluation MSE, 1 % of the data
PUBLISHED = {
    "gatr": 0.0005,
    "segnn": 0.0006,
    "se3_transformer": 0.0025,
    "transformer": 0.0050,
    "mlp": 0.0776,
}


def make_gravity(n: int, planets: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` systems: ``{"pos", "vel", "mass" (n, k[, 3]), "target" (n, k, 3)}``, float64."""
    g = torch.Generator().manual_seed(seed)
    f64 = dict(generator=g, dtype=torch.float64)
    mass = torch.cat([1 + torch.rand(n, 1, **f64), 0.01 + 0.04 * torch.rand(n, planets, **f64)], 1)
    radius = 0.5 + 1.5 * torch.rand(n, planets, 1, **f64)
    r_hat = nn.functional.normalize(torch.randn(n, planets, 3, **f64), dim=-1)
    tangent = nn.functional.normalize(
        torch.linalg.cross(r_hat, torch.randn(n, planets, 3, **f64)), dim=-1
    )
    speed = (mass[:, :1, None] / radius).sqrt() * (0.8 + 0.4 * torch.rand(n, planets, 1, **f64))
    pos = torch.cat([torch.zeros(n, 1, 3, dtype=torch.float64), radius * r_hat], 1)
    vel = torch.cat([torch.zeros(n, 1, 3, dtype=torch.float64), speed * tangent], 1)
    total = mass.sum(1, keepdim=True)[..., None]
    pos = pos - (mass[..., None] * pos).sum(1, keepdim=True) / total
    vel = vel - (mass[..., None] * vel).sum(1, keepdim=True) / total
    pos = pos + torch.randn(n, 1, 3, **f64)
    xs, _ = simulate(GravityNBody(mass, softening=0.05), pos, vel, dt=0.01, n_steps=100,
                     save_every=100, integrator="rk4")  # fmt: skip
    return {"pos": pos, "vel": vel, "mass": mass, "target": xs[:, -1]}


class TransformerBaseline(nn.Module):
    """Tokens ``[x, v, m]`` -> encoder -> displacement; predicts ``x + Δ``."""

    def __init__(self, width: int = 128, n_layers: int = 4, n_heads: int = 8) -> None:
        super().__init__()
        self.inp = nn.Linear(7, width)
        layer = nn.TransformerEncoderLayer(width, n_heads, 2 * width, dropout=0.0,
                                           batch_first=True, norm_first=True)  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out = nn.Linear(width, 3)

    def forward(self, pos, vel, node_attr, edge_attr=None):
        h = self.encoder(self.inp(torch.cat([pos, vel, node_attr], -1)))
        return pos + self.out(h)


def build(name: str, width: int, blocks: int) -> nn.Module:
    if name == "gatr":
        return GATr(node_attr_dim=1, num_features=width, num_scalars=2 * width, num_layers=blocks)
    if name in ("transformer", "transformer_aug"):
        return TransformerBaseline(width=8 * width, n_layers=blocks)
    if name == "segnn":
        return SEGNN(hidden_features=4 * width, n_layers=blocks, node_attr_dim=1, edge_attr_dim=1)
    if name == "se3_transformer":
        return SE3Transformer(hidden_features=2 * width, n_layers=blocks, node_attr_dim=1,
                              edge_attr_dim=1)  # fmt: skip
    raise ValueError(f"unknown model {name!r}")


def predict(model: nn.Module, name: str, d: dict[str, torch.Tensor]) -> torch.Tensor:
    m = d["mass"][..., None]
    edge = m[:, :, None] * m[:, None] if name in ("segnn", "se3_transformer") else None
    return model(d["pos"], d["vel"], m, edge)


def augment(d: dict[str, torch.Tensor], g: torch.Generator) -> dict[str, torch.Tensor]:
    """A random element of E(3) (rotation, reflection with probability ½, translation)."""
    b = d["pos"].shape[0]
    R = rand_matrix(b, generator=g, dtype=d["pos"].dtype)
    sign = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0).to(R.dtype)
    R = R * sign[:, None, None]
    t = torch.randn(b, 1, 3, generator=g, dtype=R.dtype)
    rot = lambda x: torch.einsum("bij,bnj->bni", R, x)  # noqa: E731
    return {"pos": rot(d["pos"]) + t, "vel": rot(d["vel"]), "mass": d["mass"],
            "target": rot(d["target"]) + t}  # fmt: skip


def batches(d: dict[str, torch.Tensor], size: int, g: torch.Generator):
    while True:
        perm = torch.randperm(d["pos"].shape[0], generator=g)
        for i in range(0, len(perm) - size + 1, size):
            yield {k: v[perm[i : i + size]] for k, v in d.items()}


@torch.no_grad()
def evaluate(model: nn.Module, name: str, d: dict[str, torch.Tensor]) -> float:
    model.eval()
    err = [((predict(model, name, {k: v[i : i + 256] for k, v in d.items()})
             - d["target"][i : i + 256]) ** 2).sum().item()
           for i in range(0, d["pos"].shape[0], 256)]  # fmt: skip
    model.train()
    return sum(err) / d["target"].numel()


def train(name: str, data: dict, args: argparse.Namespace, width: int, blocks: int) -> dict:
    torch.manual_seed(args.seed)
    model = build(name, width, blocks)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    g = torch.Generator().manual_seed(args.seed)
    it = batches(data["train"], min(args.batch, data["train"]["pos"].shape[0]), g)
    t0, best = time.perf_counter(), (math.inf, math.inf)
    for step in range(1, args.steps + 1):
        batch = next(it)
        if name == "transformer_aug":
            batch = augment(batch, g)
        loss = ((predict(model, name, batch) - batch["target"]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            val = evaluate(model, name, data["val"])
            if val < best[0]:
                best = (val, evaluate(model, name, data["test"]))
    seconds = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    return {"model": name, "val_mse": best[0], "test_mse": best[1], "params": n_params,
            "train_seconds": seconds, "steps": args.steps, "width": width, "blocks": blocks,
            "n_train": data["train"]["pos"].shape[0]}  # fmt: skip


def time_step(model: nn.Module, name: str, d: dict, repeats: int) -> float:
    """Median seconds of one forward + backward on the batch ``d``."""
    times = []
    for _ in range(repeats + 1):
        t = time.perf_counter()
        predict(model, name, d).square().mean().backward()
        times.append(time.perf_counter() - t)
    return sorted(times[1:])[len(times[1:]) // 2]


def datasets(args: argparse.Namespace) -> dict:
    data = {"train": make_gravity(args.n_train, args.planets, args.seed + 1),
            "val": make_gravity(args.n_eval, args.planets, args.seed + 2),
            "test": make_gravity(args.n_eval, args.planets, args.seed + 3)}  # fmt: skip
    return {s: {k: v.float() for k, v in d.items()} for s, d in data.items()}


def part_table(args: argparse.Namespace, out: Path) -> str:
    data = datasets(args)
    rows = [train(n, data, args, args.width, args.blocks) for n in args.models]
    d = {k: v[: args.batch] for k, v in data["test"].items()}
    timing = {n: time_step(build(n, args.width, args.blocks), n, d, args.repeats)
              for n in ("gatr", "transformer")}  # fmt: skip
    (out / "table.json").write_text(json.dumps({"rows": rows, "step_seconds": timing}, indent=1))
    lines = [
        "| model | test MSE | published (1 % data) | params | train s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        pub = PUBLISHED.get(r["model"].removesuffix("_aug"), "")
        lines.append(f"| {r['model']} | {r['test_mse']:.5f} | {pub} | {r['params']} | "
                     f"{r['train_seconds']:.0f} |")  # fmt: skip
    lines.append("")
    lines.append(f"forward+backward, batch {args.batch} x {args.planets + 1} bodies: "
                 + ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in timing.items()))  # fmt: skip
    return "\n".join(lines)


def part_scale(args: argparse.Namespace, out: Path) -> str:
    """Test MSE against training compute (FLOPs of the steps taken) over data and model sizes."""
    from torch.utils.flop_counter import FlopCounterMode

    base = datasets(args)
    runs = []
    for n_train in args.scale_train:
        data = dict(base, train={k: v[:n_train] for k, v in base["train"].items()})
        for width in args.scale_width:
            for name in ("gatr", "transformer", "transformer_aug"):
                r = train(name, data, args, width, args.blocks)
                batch = {k: v[: args.batch] for k, v in data["train"].items()}
                with FlopCounterMode(display=False) as fc:
                    predict(build(name, width, args.blocks), name, batch).sum().backward()
                r["flops"] = fc.get_total_flops() * args.steps
                runs.append(r)
                print(json.dumps(r), flush=True)
    (out / "scale.json").write_text(json.dumps(runs, indent=1))
    fits = fit_power_laws(runs)
    plot_scale(out / "scale.png", runs, fits)
    return "\n".join(f"{k}: MSE ≈ {a:.3g} · C^{b:.3f}" for k, (a, b) in fits.items())


def fit_power_laws(runs: list[dict]) -> dict[str, tuple[float, float]]:
    """Least-squares line in log-log space per model: ``MSE = a · C^b``."""
    fits = {}
    for name in sorted({r["model"] for r in runs}):
        pts = [(math.log(r["flops"]), math.log(r["test_mse"])) for r in runs if r["model"] == name]
        if len(pts) < 2:
            continue
        x, y = torch.tensor(pts, dtype=torch.float64).T
        b = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
        fits[name] = (math.exp(float(y.mean()) - b * float(x.mean())), b)
    return fits


def plot_scale(path: Path, runs: list[dict], fits: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot")
        return
    fig, ax = plt.subplots(figsize=(5, 4))
    for name in sorted({r["model"] for r in runs}):
        pts = sorted((r["flops"], r["test_mse"]) for r in runs if r["model"] == name)
        ax.scatter(*zip(*pts), label=name, s=14)
        if name in fits:
            a, b = fits[name]
            xs = torch.tensor([pts[0][0], pts[-1][0]])
            ax.plot(xs, a * xs**b, lw=1)
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs", ylabel="test MSE")
    ax.legend()
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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale-train", type=int, nargs="+", default=[100, 300, 1000])
    p.add_argument("--scale-width", type=int, nargs="+", default=[4, 8, 16])
    args = p.parse_args(argv)
    if args.quick:
        args.n_train, args.n_eval, args.steps, args.batch = 16, 16, 3, 8
        args.width, args.blocks, args.eval_every, args.repeats = 2, 1, 3, 1
        args.scale_train, args.scale_width = [8, 16], [2]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = part_table(args, out) if args.part == "table" else part_scale(args, out)
    load = os.getloadavg()[0]
    report += f"\n\n(load average {load:.1f} on {os.cpu_count()} cores while running)"
    (out / f"{args.part}.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
