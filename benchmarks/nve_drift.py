"""NVE energy conservation of a trained potential over a long run (>= 10 000 steps).

Runs velocity-Verlet MD with :func:`equidyn.calculators.md.run_md` from a Maxwell-Boltzmann
start and reports the drift of the total energy (slope of a least-squares line through
E_tot/N against time, meV/atom/ps) and the largest excursion max|E_tot(t) - E_tot(0)|/N.

    equidyn quickstart                                        # trains ./equidyn-quickstart/model.pt
    python benchmarks/nve_drift.py equidyn-quickstart/model.pt --steps 10000 --dt 2
    python benchmarks/nve_drift.py MODEL --quick              # 200 steps

Threads: torch.set_num_threads(--threads), default 1. Allocator: default glibc settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from equidyn.calculators.md import builtin_structure, run_md


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--structure", default="builtin:cuau")
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--dt", type=float, default=2.0, help="fs")
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--float32", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/nve_drift.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.steps = 200
    res = run_md(
        args.model,
        builtin_structure(args.structure),
        args.steps,
        dt_fs=args.dt,
        ensemble="nve",
        temperature_K=args.temperature,
        log_every=max(1, args.steps // 100),
        dtype="float32" if args.float32 else "float64",
        verbose=False,
    )
    summary = {
        "model": str(args.model),
        "structure": args.structure,
        "n_atoms": res["n_atoms"],
        "steps": args.steps,
        "dt_fs": args.dt,
        "duration_ps": args.steps * args.dt / 1000,
        "dtype": "float32" if args.float32 else "float64",
        "drift_mev_per_atom_per_ps": res["drift_mev_per_atom_per_ps"],
        "max_deviation_mev_per_atom": res["max_deviation_mev_per_atom"],
        "mean_temperature_K": float(res["temperature"][len(res["temperature"]) // 2 :].mean()),
        "wall_s": res["wall_s"],
    }
    for k, v in summary.items():
        print(f"{k:>28}: {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
