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
decay, batch 100, through equidyn's one trainer (``equidyn.experiments.nbody_task.train``:
best-validation selection, CSV log, resumable checkpoints in ``--out``). The E(3)
equivariance error of the trained model is reported too.

    python benchmarks/canonical_nbody.py --quick          # small simulated set, seconds
    python benchmarks/canonical_nbody.py --epochs 300     # the protocol sizes

The canonicalized network stands on the particle-model contract (:class:`CanonicalizedParticles`,
charges as the node attribute), so it trains with the same task and trainer as EGNN.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import Tensor

from equidyn._io import atomic_write_text
from equidyn.canonical import Canonicalized, PointCanonicalizer
from equidyn.dynamics import ChargedNBodyDataset
from equidyn.experiments.nbody_task import train
from equidyn.models.gnn import GNN
from equidyn.models.particles import ParticleInputs, ParticleModel
from equidyn.testing import equivariance_error

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


class CanonicalizedParticles(ParticleModel):
    """A ``Canonicalized(pos, vel, q)`` network as a :class:`ParticleModel` (node attribute:
    the charge), so the shared N-body task and trainer run it like any other model."""

    def __init__(self, model: Canonicalized) -> None:
        super().__init__(node_attr_dim=1, edge_attr_dim=0)
        self.model = model

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor | None]:
        return self.model(inputs.pos, inputs.vel, inputs.node_attr), None  # [B, n, 3]


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
    p.add_argument("--cache", default=None, help="data cache dir (default $EQUIDYN_CACHE)")
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
    sizes = {k: (args.quick_size if args.quick else n) for k, n in SIZES.items()}
    splits = [ChargedNBodyDataset(k, n, draw=args.draw, cache=args.cache) for k, n in sizes.items()]
    model = CanonicalizedParticles(build_model(args.backbone, args.hidden, args.canon_hidden))
    out = args.out.with_name(args.out.name + "_quick") if args.quick else args.out
    run = out / f"run_{args.backbone}_seed{args.seed}"
    state = train(
        model, *splits, epochs=args.epochs, out=run, seed=args.seed, lr=args.lr,
        schedule="cosine", eval_every=args.eval_every, batch_size=100, progress=False,
        config={k: str(v) for k, v in vars(args).items()},
    )  # fmt: skip
    best = {"valid": state["best_valid"], "test": state["best_test"],
            "epoch": state["best_epoch"], "seconds": state["train_seconds"]}  # fmt: skip
    test = splits[-1]
    pos, vel, q = (t[:64].double() for t in (test.pos, test.vel, test.charges))
    specs_in, specs_out = ["cartesian_points", "1o", None], ["cartesian_points"]
    err = equivariance_error(
        model.model.double().eval(), specs_in, specs_out, args_in=[pos, vel, q], translations=True
    )
    result = {
        "settings": {k: str(v) for k, v in vars(args).items()},
        **best,
        "params": sum(t.numel() for t in model.parameters()),
        "equivariance_error": err,
    }
    print(json.dumps(result, indent=1))
    out.mkdir(parents=True, exist_ok=True)
    name = f"result_{args.backbone}_seed{args.seed}.json"
    atomic_write_text(json.dumps(result, indent=1), out / name)
    return result


if __name__ == "__main__":
    main()
