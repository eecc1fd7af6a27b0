"""``equidyn quickstart``: train a small NequIP, evaluate it, run MD — in a few minutes on a CPU.

1. generates (first time only, then cached) the built-in Cu–Au EMT data set;
2. trains the NequIP of the packaged ``quickstart.yaml`` config (``equidyn train
   builtin:quickstart`` does the same step alone) with a progress bar;
3. prints the test-set energy and force errors and writes loss curves and parity plots;
4. runs a short NVE molecular dynamics with the trained model and prints the energies.

Everything is written to ``./equidyn-quickstart/`` (``--output-dir``). ``--quick`` shrinks
every step (tiny data, model and run; ~20 s) to check an installation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main", "quick_config"]


def quick_config(output_dir: str):
    """The packaged quickstart config, shrunk for ``--quick`` (a smoke test, not a model)."""
    from equidyn.train.config import load_config

    cfg = load_config("builtin:quickstart")
    cfg.model.update(num_features=4, num_layers=1, radial_hidden=8)
    cfg.data.n_structures, cfg.data.n_train, cfg.data.n_val, cfg.data.n_test = 40, 20, 5, 15
    cfg.training.epochs = 2
    cfg.training.batch_size = 5
    cfg.training.max_time_s = 30
    cfg.training.output_dir = output_dir
    return cfg


def main(argv: list[str]) -> int:
    """Entry point of ``equidyn quickstart``."""
    parser = argparse.ArgumentParser(
        prog="equidyn quickstart",
        description="Train a small NequIP on built-in Cu-Au data, evaluate it and run MD.",
    )
    parser.add_argument("--output-dir", default="equidyn-quickstart")
    parser.add_argument("--quick", action="store_true", help="a ~20 s smoke-test version")
    parser.add_argument("--md-steps", type=int, default=None, help="MD steps (default 200)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from equidyn.calculators.md import builtin_structure, run_md
    from equidyn.train.cli import run_training
    from equidyn.train.config import load_config

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    out = Path(args.output_dir)
    if args.quick:
        cfg = quick_config(str(out))
    else:
        cfg = load_config("builtin:quickstart")
        cfg.training.output_dir = str(out)
    if args.no_progress:
        cfg.training.progress = False
    md_steps = args.md_steps if args.md_steps is not None else (20 if args.quick else 200)
    start = time.perf_counter()
    print("== equidyn quickstart: NequIP on the built-in Cu-Au EMT data ==")
    try:
        summary, metrics = run_training(cfg, resume=False)
    except (ValueError, FileNotFoundError) as e:
        print(f"equidyn quickstart: error: {e}", file=sys.stderr)
        return 1
    if metrics is None:
        print("interrupted: the checkpoint is in", out / "checkpoint.pt")
        return 130
    print(
        f"\n== {md_steps} steps of NVE molecular dynamics (2 fs, 300 K) with the trained model =="
    )
    md = run_md(
        out / "model.pt", builtin_structure("builtin:cuau"), md_steps, dt_fs=2.0,
        ensemble="nve", temperature_K=300.0, out=out / "md.traj",
        log_every=max(1, md_steps // 10),
    )  # fmt: skip
    wall = time.perf_counter() - start
    print("\n== summary ==")
    print(
        f"test energy MAE {metrics['energy_mae']:.2f} meV/atom, force MAE "
        f"{metrics['forces_mae']:.1f} meV/Å ({metrics['n_structures']} structures)"
    )
    print(f"NVE drift {md['drift_mev_per_atom_per_ps']:+.3f} meV/atom/ps over {md_steps} steps")
    print(f"total time {wall:.0f} s. Files in {out}/:")
    for name, what in (
        ("model.pt", "trained model: equidyn.models.load_model(path) or equidyn evaluate/md"),
        ("log.csv", "per-epoch losses and validation errors"),
        ("plots/loss.png", "loss curves"),
        ("plots/force_parity.png", "predicted vs reference forces (test set)"),
        ("plots/energy_parity.png", "predicted vs reference energies (test set)"),
        ("test_metrics.json", "test errors"),
        ("md.traj", "MD trajectory (ase gui / ase.io.read)"),
        ("config.yaml", "the configuration: equidyn train config.yaml reproduces the run"),
    ):
        if (out / name).exists():
            print(f"  {name:<24} {what}")
    return 0
