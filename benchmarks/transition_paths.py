"""Transition paths on the Müller–Brown surface: Doob's Lagrangian against two-way shooting
and plain MD, counted in energy evaluations (gradients of U at one configuration).

Overdamped Langevin dynamics at kT = 10 (the barrier from A to the lower saddle is 106, so
about 10.6 kT), gamma = 1, dt = 1e-4, paths of T = 0.04 (400 steps) from the deepest
minimum A to the second one B; a path "arrives" within 0.25 of a minimum.

- **Doob's Lagrangian** (equidyn.paths.fit_doob): a 1- and a 2-component Gaussian path
  marginal trained by the simulation-free loss; every training sample costs one gradient;
  paths are then sampled from the learned control at no energy cost.
- **Two-way shooting** from a straight line A -> B (not a trajectory; the first accepted shot
  replaces it): every shot integrates 400 steps.
- **Plain MD**: parallel trajectories from A until they reach B, to count what one
  transition costs without any path sampling, and to give the reference ensemble of reactive
  segments (last exit from A to first arrival in B).

Quality of a path ensemble: the barrier each path climbs (max U along it minus U(A); the
minimum over paths is "MinMax"; the lowest possible is the saddle, 106.0) and the mean
log-likelihood per step under the dynamics.

    python benchmarks/transition_paths.py --quick    # a smoke test (~20 s)
    python benchmarks/transition_paths.py            # the table and the plot (~3 min, 2 cores)

Writes results.json and paths.png to --out. Threads: torch.set_num_threads(--threads),
default 2. Allocator: default glibc settings (only evaluation counts are compared here).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from equidyn.paths import (
    GaussianPathMarginal,
    MullerBrown,
    OverdampedLangevin,
    fit_doob,
    path_statistics,
    sample_paths,
    two_way_shooting,
)

KT, DT, T, RADIUS = 10.0, 1e-4, 0.04, 0.25
N_STEPS = int(round(T / DT))


def run_doob(mb: MullerBrown, k: int, steps: int, batch: int, checkpoints: int, seed: int):
    """Train in ``checkpoints`` chunks; after each, sample 256 paths and measure them."""
    torch.manual_seed(seed)
    dyn = OverdampedLangevin(mb, kT=KT)
    q = GaussianPathMarginal(
        mb.minimum_a, mb.minimum_b, T, dyn.diffusion, num_components=k, spread=0.3 * (k > 1)
    )
    rows, seconds, losses = [], 0.0, []
    chunk = steps // checkpoints
    gen = torch.Generator().manual_seed(seed + 100)
    for c in range(checkpoints):
        # each chunk is one fit_doob call (its own cosine schedule), starting lower each time
        h = fit_doob(q, dyn, steps=chunk, batch_size=batch, lr=3e-3 * 0.6**c, seed=seed + c)
        seconds += h["seconds"]
        losses += h["loss"]
        paths = sample_paths(q, 256, N_STEPS, generator=gen)
        stats = path_statistics(dyn, paths, DT)
        rows.append({"evaluations": dyn.evaluations, "seconds": seconds, **stats})
        print(
            f"doob K={k}: {dyn.evaluations:>9} evaluations  {seconds:6.1f} s  "
            f"loss {sum(h['loss'][-20:]) / 20:8.2f}  MinMax {stats['min_max_energy']:6.1f}  "
            f"median {stats['median_max_energy']:6.1f}  "
            f"logL/step {stats['mean_log_likelihood']:.3f}",
            flush=True,
        )
    return {"components": k, "checkpoints": rows, "loss": losses[::10]}, q


def run_shooting(mb: MullerBrown, shots: int, checkpoints: int, seed: int):
    dyn = OverdampedLangevin(mb, kT=KT)
    a, b = mb.minimum_a, mb.minimum_b
    line = torch.stack([a + (b - a) * s for s in torch.linspace(0, 1, N_STEPS + 1)])
    t0 = time.perf_counter()
    out = two_way_shooting(dyn, line, n_shots=shots, dt=DT, basin_radius=RADIUS, seed=seed)
    seconds = time.perf_counter() - t0
    accepted = out["paths"][1:]  # (n_accepted, N + 1, 2)
    at = out["evaluations_at_accept"]
    rows = []
    for c in range(1, checkpoints + 1):
        budget = out["evaluations"] * c // checkpoints
        n = sum(1 for e in at if e <= budget)
        row = {"evaluations": budget, "accepted": n}
        if n:
            row.update(path_statistics(dyn, accepted[:n].transpose(0, 1), DT))
        rows.append(row)
    stats = rows[-1]
    print(
        f"shooting: {out['evaluations']:>9} evaluations  {seconds:6.1f} s  accepted "
        f"{len(at)}/{shots}  first at {at[0] if at else None}  "
        f"MinMax {stats.get('min_max_energy', float('nan')):6.1f}  "
        f"median {stats.get('median_max_energy', float('nan')):6.1f}",
        flush=True,
    )
    return {
        "shots": shots,
        "accepted": len(at),
        "evaluations": out["evaluations"],
        "evaluations_at_accept": at,
        "seconds": seconds,
        "checkpoints": rows,
    }, accepted


def run_md(mb: MullerBrown, walkers: int, steps: int, seed: int):
    """Walkers from A until B: evaluations per transition and the reactive segments."""
    dyn = OverdampedLangevin(mb, kT=KT)
    a, b = mb.minimum_a, mb.minimum_b
    gen = torch.Generator().manual_seed(seed)
    x = a.repeat(walkers, 1)
    last_exit = torch.zeros(walkers, dtype=torch.long)
    climbed = torch.full((walkers,), -torch.inf, dtype=x.dtype)
    done = torch.zeros(walkers, dtype=torch.bool)
    barriers, durations = [], []
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        x = torch.where(done[:, None], x, dyn.step(x, DT, gen))
        in_a = (x - a).norm(dim=-1) < RADIUS
        in_b = (x - b).norm(dim=-1) < RADIUS
        e = mb(x)
        climbed = torch.where(in_a, torch.full_like(climbed, -torch.inf), climbed.maximum(e))
        last_exit = torch.where(in_a, torch.full_like(last_exit, i), last_exit)
        new = in_b & ~done
        for j in new.nonzero().flatten().tolist():
            barriers.append(float(climbed[j] - mb(a)))
            durations.append((i - int(last_exit[j])) * DT)
        done |= new
    seconds = time.perf_counter() - t0
    n = len(barriers)
    bar = torch.tensor(barriers) if n else torch.empty(0)
    result = {
        "walkers": walkers,
        "steps": steps,
        "evaluations": dyn.evaluations,
        "transitions": n,
        "evaluations_per_transition": dyn.evaluations / n if n else None,
        "seconds": seconds,
        "min_max_energy": float(bar.min()) if n else None,
        "median_max_energy": float(bar.median()) if n else None,
        "median_duration": float(torch.tensor(durations).median()) if n else None,
    }
    print(
        f"plain MD: {dyn.evaluations:>9} evaluations  {seconds:6.1f} s  {n} transitions  "
        f"median barrier {result['median_max_energy']}  median duration "
        f"{result['median_duration']}",
        flush=True,
    )
    return result


def plot(path: Path, mb: MullerBrown, doob_q, shooting_paths, results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, ys = torch.linspace(-1.7, 1.2, 300), torch.linspace(-0.4, 2.1, 300)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).to(torch.float64)
    u = mb(grid).clamp(max=50)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    paths = sample_paths(doob_q, 30, N_STEPS, generator=torch.Generator().manual_seed(7))
    for ax, title, ps, color in (
        (axes[0], "Doob's Lagrangian (K = 2): 30 sampled paths", paths.transpose(0, 1), "C3"),
        (axes[1], "two-way shooting: accepted paths", shooting_paths, "C0"),
    ):
        ax.contourf(xs, ys, u, levels=30, cmap="Greys_r")
        ax.contour(xs, ys, u, levels=30, colors="k", linewidths=0.3, alpha=0.5)
        for p in ps:
            ax.plot(p[:, 0], p[:, 1], color=color, lw=0.6, alpha=0.6)
        for name in ("minimum_a", "minimum_b", "minimum_c"):
            m = getattr(mb, name)
            ax.plot(float(m[0]), float(m[1]), "w*", ms=9)
        ax.set(title=title, xlabel="x", ylabel="y", aspect="equal")
    ax = axes[2]
    for key, label, color in (("doob_k1", "Doob K = 1", "C1"), ("doob_k2", "Doob K = 2", "C3")):
        rows = results[key]["checkpoints"]
        ax.plot(
            [r["evaluations"] for r in rows],
            [r["median_max_energy"] for r in rows],
            "o-",
            color=color,
            label=label,
        )
    rows = [r for r in results["shooting"]["checkpoints"] if r["accepted"]]
    ax.plot(
        [r["evaluations"] for r in rows],
        [r["median_max_energy"] for r in rows],
        "s-",
        color="C0",
        label="two-way shooting (accepted paths)",
    )
    md = results["md"]
    if md["transitions"]:
        ax.axhline(
            md["median_max_energy"],
            color="k",
            ls="--",
            lw=1,
            label=f"plain MD reactive segments ({md['transitions']})",
        )
        ax.axvline(
            md["evaluations_per_transition"],
            color="k",
            ls=":",
            lw=1,
            label="plain MD: evaluations per transition",
        )
    ax.axhline(106.04, color="grey", lw=0.8, label="saddle (MinMax bound)")
    ax.set(
        xscale="log",
        xlabel="energy evaluations",
        ylabel="median barrier of the paths",
        title="path quality against cost",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke test (~1 min)")
    ap.add_argument("--out", default="benchmarks/results/transition_paths")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float64)
    mb = MullerBrown()
    if args.quick:
        doob_steps, batch, shots, walkers, md_steps, checkpoints = 100, 64, 40, 200, 2000, 2
    else:
        doob_steps, batch, shots, walkers, md_steps, checkpoints = 1500, 128, 1500, 2000, 10000, 5
    results: dict = {
        "settings": {
            "kT": KT,
            "dt": DT,
            "T": T,
            "basin_radius": RADIUS,
            "quick": args.quick,
            "doob_steps": doob_steps,
            "batch": batch,
            "shots": shots,
            "md_walkers": walkers,
            "md_steps": md_steps,
            "seed": args.seed,
        }
    }
    results["doob_k1"], _ = run_doob(mb, 1, doob_steps, batch, checkpoints, args.seed)
    results["doob_k2"], q2 = run_doob(mb, 2, doob_steps, batch, checkpoints, args.seed)
    results["shooting"], accepted = run_shooting(mb, shots, checkpoints, args.seed)
    results["md"] = run_md(mb, walkers, md_steps, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(out / "results.json")
    plot(out / "paths.png", mb, q2, accepted, results)
    print(f"wrote {out / 'results.json'} and {out / 'paths.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
