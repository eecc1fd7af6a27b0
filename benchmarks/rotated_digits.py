"""Rotated digits: built-in equivariance (P4CNN, P4MCNN) vs augmentation vs canonicalization.

Data: scikit-learn's bundled 8×8 digits (1797 images, no download), scaled to [0, 1] and
zero-padded to 9×9 (one row and column) so that quarter turns and flips are exact symmetries
of the pixel grid and of every layer. One fixed split (seed 0): 1200 training, 597 test
images. Models are trained on **upright** images only and tested on

* ``upright``: the test images as they are;
* ``C4``: each test image turned by a random multiple of 90°;
* ``D4``: each test image transformed by a random element of D4 (quarter turns and flips);
* ``SO2``: each test image turned by a uniformly random angle (bilinear interpolation).

Rows, at roughly matched parameter counts (printed): plain CNN (``Z2CNN``), the same CNN
trained with random D4 augmentation, ``P4CNN`` (C4), ``P4MCNN`` (D4), and the plain CNN
canonicalized by a C4 ``ImageCanonicalizer`` (trained jointly, with the identity prior).
Each row: test error (%) on the four test sets, mean ± std over ``--seeds`` seeds; the
invariance error of the trained model (float64 copy, mean over test images of
max_g |f(gx) − f(x)|∞ / |f(x)|∞ over the elements of C4 and of D4); training wall time.

Note that 6 and 9 are one orbit under 180° turns: a C4-invariant classifier cannot tell them
apart, also on upright images (the published rotated-MNIST numbers train on rotated data).

    python benchmarks/rotated_digits.py --quick     # a few seconds (CI smoke test)
    python benchmarks/rotated_digits.py --seeds 3   # the table of docs/groups.md
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from equidyn.canonical import Canonicalized, ImageCanonicalizer
from equidyn.groups import P4CNN, P4MCNN, Z2CNN, Cyclic, Dihedral, act_on_image, rotate_image
from equidyn.train.checkpoint import atomic_write_text

C4, D4 = Cyclic(4), Dihedral(4)
ROWS = ["CNN", "CNN + aug", "P4CNN", "P4MCNN", "CNN + C4 canon"]


def load_digits_padded(n_train: int, n_test: int) -> dict[str, torch.Tensor]:
    """The digits as (N, 1, 9, 9) float32 in [0, 1], split with a fixed permutation."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0  # [1797, 1, 8, 8]
    x = F.pad(x, (0, 1, 0, 1))  # [1797, 1, 9, 9]
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:n_train], perm[n_train : n_train + n_test]
    return {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}


def transformed_test_sets(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The upright, C4, D4 and arbitrary-angle versions of the test images (fixed seed)."""
    gen = torch.Generator().manual_seed(1)
    c4 = torch.randint(0, 4, (len(x),), generator=gen).tolist()
    d4 = torch.randint(0, 8, (len(x),), generator=gen).tolist()
    angles = (torch.rand(len(x), generator=gen, dtype=torch.float64) * 2 * math.pi).tolist()
    return {
        "upright": x,
        "C4": torch.stack([act_on_image(C4, g, xi) for g, xi in zip(c4, x)]),
        "D4": torch.stack([act_on_image(D4, g, xi) for g, xi in zip(d4, x)]),
        "SO2": torch.stack([rotate_image(xi, a) for a, xi in zip(angles, x)]),
    }


def build(row: str, width: dict[str, int], num_layers: int) -> torch.nn.Module:
    common = dict(in_channels=1, num_classes=10, num_layers=num_layers, pool_after=(1,))
    if row in ("CNN", "CNN + aug"):
        return Z2CNN(channels=width["z2"], **common)
    if row == "P4CNN":
        return P4CNN(channels=width["p4"], **common)
    if row == "P4MCNN":
        return P4MCNN(channels=width["p4m"], **common)
    canon = ImageCanonicalizer(C4, in_channels=1, channels=width["canon"], kernel_size=5)
    return Canonicalized(canon, Z2CNN(channels=width["canon_backbone"], **common))


def _logits_and_prior(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(model, Canonicalized):
        out, frame = model.forward_with_frame(x)
        return out, model.canonicalizer.prior_loss(frame)
    return model(x), torch.zeros(())


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image transformed by a random element of D4."""
    gs = torch.randint(0, 8, (len(x),), generator=gen).tolist()
    return torch.stack([act_on_image(D4, g, xi) for g, xi in zip(gs, x)])


def train(model, row: str, data, args, seed: int) -> float:
    """Adam with cosine decay; returns the training wall time (s)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n = len(data["x_train"])
    steps = args.epochs * math.ceil(n / args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    t0 = time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        for idx in torch.randperm(n, generator=gen).split(args.batch):
            x, y = data["x_train"][idx], data["y_train"][idx]
            if row == "CNN + aug":
                x = augment(x, gen)
            logits, prior = _logits_and_prior(model, x)
            loss = F.cross_entropy(logits, y) + args.prior_weight * prior
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return time.perf_counter() - t0


@torch.no_grad()
def invariance_error(model: torch.nn.Module, x: torch.Tensor, group) -> float:
    """Mean over images of max_g |f(gx) - f(x)|_inf / |f(x)|_inf, in float64."""
    m = copy.deepcopy(model).double().eval()
    x = x.double()
    ref = m(x)
    worst = torch.zeros(len(x), dtype=torch.float64)
    for g in group.elements()[1:]:
        worst = torch.maximum(worst, (m(act_on_image(group, g, x)) - ref).abs().amax(-1))
    return float((worst / ref.abs().amax(-1)).mean())


@torch.no_grad()
def test_errors(model: torch.nn.Module, tests: dict[str, torch.Tensor], y: torch.Tensor) -> dict:
    model.eval()
    return {k: float((model(x).argmax(-1) != y).double().mean() * 100) for k, x in tests.items()}


def run_one(row: str, seed: int, data, tests, args) -> dict:
    torch.manual_seed(seed)
    model = build(row, args.width, args.layers)
    seconds = train(model, row, data, args, seed)
    x_inv = data["x_test"][: args.n_invariance]
    return {
        "row": row,
        "seed": seed,
        "params": sum(p.numel() for p in model.parameters()),
        "error_pct": test_errors(model, tests, data["y_test"]),
        "invariance_C4": invariance_error(model, x_inv, C4),
        "invariance_D4": invariance_error(model, x_inv, D4),
        "train_seconds": seconds,
    }


def summarise(runs: list[dict]) -> list[str]:
    """Markdown table, mean ± std over seeds."""
    head = "| model | params | upright | C4 | D4 | SO(2) | inv. err C4 | inv. err D4 | train s |"
    lines = [head, "|" + "---|" * 9]
    for row in ROWS:
        rs = [r for r in runs if r["row"] == row]
        if rs:
            lines.append(_table_row(row, rs))
    return lines


def _table_row(row: str, rs: list[dict]) -> str:
    errs = [
        "{:.2f} ± {:.2f}".format(*_ms([r["error_pct"][k] for r in rs]))
        for k in ("upright", "C4", "D4", "SO2")
    ]
    invs = [f"{np.mean([r[k] for r in rs]):.1e}" for k in ("invariance_C4", "invariance_D4")]
    secs = "{:.0f}".format(np.mean([r["train_seconds"] for r in rs]))
    return " | ".join(["", row, str(rs[0]["params"]), *errs, *invs, secs, ""]).strip()


def _ms(v: list[float]) -> tuple[float, float]:
    return float(np.mean(v)), float(np.std(v))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-2)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--prior-weight", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", nargs="+", default=ROWS, choices=ROWS)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "rotated_digits")
    args = p.parse_args(argv)
    args.n_train, args.n_test, args.n_invariance = 1200, 597, 200
    args.width = {"z2": 20, "p4": 10, "p4m": 7, "canon": 4, "canon_backbone": 19}
    if args.quick:
        args.seeds, args.epochs, args.layers, args.n_train, args.n_test = 1, 1, 2, 128, 64
        args.n_invariance = 16
        args.width = {"z2": 4, "p4": 2, "p4m": 2, "canon": 2, "canon_backbone": 4}
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_digits_padded(args.n_train, args.n_test)
    tests = transformed_test_sets(data["x_test"])
    runs = []
    for seed in range(args.seeds):
        for row in args.rows:
            runs.append(run_one(row, seed, data, tests, args))
            print(json.dumps(runs[-1]), flush=True)
    table = summarise(runs)
    print("\n".join(table))
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = {"settings": settings, "runs": runs, "table": table}
    out = args.out if not args.quick else args.out.with_name(args.out.name + "_quick")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(json.dumps(result, indent=1), out / "results.json")
    atomic_write_text("\n".join(table) + "\n", out / "table.md")
    return result


if __name__ == "__main__":
    main()
