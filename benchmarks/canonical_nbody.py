"""Charged N-body with an O(3)-canonicalized plain MLP (Kaba et al. 2023, §5.2).

Protocol (Satorras et al. 2021, EGNN): 5 charged particles; input the positions, velocities
and charges at frame 30, predict the positions at frame 40; 3000 training, 2000 validation and
2000 test trajectories (``equidyn.dynamics.load_charged_nbody``; ``--draw egnn`` replays the
EGNN repository's own draw); the number reported is the test MSE at the epoch of best
validation MSE. Published: EGNN 0.0071; the canonicalization paper's canonicalized GNN about
0.0043 (its Table 2).

The model is ``Canonicalized(PointCanonicalizer(O3), backbone)`` with the backbone
``--backbone gnn`` (default: the plain message-passing GNN of the EGNN paper,
``equidyn.models.GNN``, permutation equivariant only) or ``--backbone mlp`` (a flat MLP on
the canonical positions, velocities and charges of the five particles: equivariant to
nothing by itself, not even to permutations). Training: Adam with cosine
decay, batch 100. The E(3) equivariance error of the trained model is reported too.

    python benchmarks/canonical_nbody.py --quick          # small simulated set, seconds
    python benchmarks/canonical_nbody.py --epochs 300     # the protocol sizes

This script has its own small training loop; it should move to the shared trainer (a
``ParticleModel`` wrapper and a training ``Task``) once those exist.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch

from equidyn.canonical import Canonicalized, PointCanonicalizer
from equidyn.dynamics import load_charged_nbody
from equidyn.dynamics.systems import simulate_charged_nbody
from equidyn.models.gnn import GNN
from equidyn.testing import equivariance_error
from equidyn.train.checkpoint import atomic_write_text

SIZES = {"train": 3000, "valid": 2000, "test": 2000}


class FlatMLP(torch.nn.Module):
    """Positions + MLP(flattened positions, velocities, charges): no symmetry built in."""

    def __init__(self, n_particles: int = 5, hidden: int = 256) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(7 * n_particles, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, 3 * n_particles),
        )  # fmt: skip

    def forward(self, pos: torch.Tensor, vel: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        h = torch.cat([pos, vel, q], dim=-1).flatten(1)  # [B, 7 n]
        return pos + self.net(h).unflatten(-1, (-1, 3))  # [B, n, 3]


class ChargedGNN(torch.nn.Module):
    """The EGNN paper's plain GNN baseline (``equidyn.models.GNN``), charges as node
    attributes and products of charges as edge attributes: permutation equivariant only."""

    def __init__(self, hidden: int = 64, layers: int = 4) -> None:
        super().__init__()
        self.gnn = GNN(hidden, layers, node_attr_dim=1, edge_attr_dim=1)

    def forward(self, pos: torch.Tensor, vel: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        qq = q[:, :, None, :] * q[:, None, :, :]  # [B, n, n, 1]
        return self.gnn(pos, vel, q, qq)  # [B, n, 3]


def build_model(backbone: str, hidden: int, canon_hidden: int) -> Canonicalized:
    canon = PointCanonicalizer(inputs=["points", "vectors", "scalars"], outputs=["points"],
                               scalar_dims=[1], group="O3", hidden=canon_hidden)  # fmt: skip
    net = FlatMLP(hidden=hidden) if backbone == "mlp" else ChargedGNN(hidden=hidden)
    return Canonicalized(canon, net)


def load_split(split: str, args: argparse.Namespace) -> tuple[torch.Tensor, ...]:
    """(pos at frame 30, vel at frame 30, charges (B, 5, 1), pos at frame 40), float32."""
    if args.quick:
        d = simulate_charged_nbody(args.quick_size, n_steps=4200, seed=list(SIZES).index(split))
    else:
        d = load_charged_nbody(split, draw=args.draw)
    n = args.quick_size if args.quick else SIZES[split]
    pos, vel, q = d["pos"][:n].float(), d["vel"][:n].float(), d["charges"][:n].float()
    return pos[:, 30], vel[:, 30], q[..., None], pos[:, 40]


@torch.no_grad()
def mse(model: torch.nn.Module, data: tuple[torch.Tensor, ...]) -> float:
    model.eval()
    *x, y = data
    return float((model(*x) - y).square().mean())


def train(model: torch.nn.Module, splits: dict, args: argparse.Namespace) -> dict:
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-12)
    n = len(splits["train"][0])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * math.ceil(n / 100))
    gen = torch.Generator().manual_seed(args.seed)
    best = {"valid": math.inf}
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        for idx in torch.randperm(n, generator=gen).split(100):
            *x, y = (t[idx] for t in splits["train"])
            loss = (model(*x) - y).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch % args.eval_every == 0 or epoch == args.epochs:
            valid = mse(model, splits["valid"])
            if valid < best["valid"]:
                best = {"valid": valid, "test": mse(model, splits["test"]), "epoch": epoch,
                        "state": copy.deepcopy(model.state_dict())}  # fmt: skip
            print(f"epoch {epoch} valid {valid:.5f} best test {best['test']:.5f}", flush=True)
    best["seconds"] = time.perf_counter() - t0
    return best


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--backbone", default="gnn", choices=["gnn", "mlp"])
    p.add_argument("--hidden", type=int, default=None, help="default: gnn 64, mlp 256")
    p.add_argument("--canon-hidden", type=int, default=32)
    p.add_argument("--eval-every", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draw", default="equidyn", choices=["equidyn", "egnn"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "canonical_nbody"
    )
    args = p.parse_args(argv)
    args.quick_size = 32
    if args.hidden is None:
        args.hidden = 64 if args.backbone == "gnn" else 256
    if args.quick:
        args.epochs, args.eval_every, args.hidden, args.canon_hidden = 2, 1, 16, 8
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    splits = {s: load_split(s, args) for s in SIZES}
    model = build_model(args.backbone, args.hidden, args.canon_hidden)
    best = train(model, splits, args)
    model.load_state_dict(best.pop("state"))
    pos, vel, q, _ = (t[:64].double() for t in splits["test"])
    specs_in, specs_out = ["cartesian_points", "1o", None], ["cartesian_points"]
    err = equivariance_error(
        model.double().eval(), specs_in, specs_out, args_in=[pos, vel, q], translations=True
    )
    result = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        **best,
        "params": sum(t.numel() for t in model.parameters()),
        "equivariance_error": err,
    }
    print(json.dumps(result, indent=1))
    out = args.out.with_name(args.out.name + "_quick") if args.quick else args.out
    out.mkdir(parents=True, exist_ok=True)
    name = f"result_{args.backbone}_seed{args.seed}.json"
    atomic_write_text(json.dumps(result, indent=1), out / name)
    return result


if __name__ == "__main__":
    main()
