"""Accuracy after the same training budget: equidyn NequIP vs the nequip package, side by side.

Both models get the same architecture (l_max, features, layers, 8 Bessel functions, p = 6,
radial MLP of one hidden layer), the same per-species energy shifts (least squares on the
training energies) and scale (RMS training force), the same training structures of the
built-in Cu-Au EMT set in the same order, the same loss (MSE of energy per atom + MSE of force
components, weights 1:1), Adam (AMSGrad) at a constant learning rate, no EMA, and the same
number of epochs. The final weights are evaluated on the same test set (energy MAE per atom,
force MAE). Each package runs in its own virtual environment as a subprocess (the nequip
package needs its own e3nn), ``torch.set_num_threads(--threads)``, default allocator.

    python benchmarks/potentials_accuracy.py --quick
    python benchmarks/potentials_accuracy.py --epochs 20 --n-train 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

from _reference import params_warning, reference_python  # benchmarks/_reference.py

from equidyn.data.builtin import builtin_dataset_path
from equidyn.data.split import split_indices

COMMON = r"""
import json, math, time
import numpy as np, torch
torch.set_num_threads(S["threads"])
torch.manual_seed(S.get("seed", 0))
f = np.load(S["npz"])
offsets = np.concatenate([[0], np.cumsum(f["n_atoms"])])
def structure(k):
    lo, hi = offsets[k], offsets[k + 1]
    return (f["numbers"][lo:hi], f["positions"][lo:hi], f["cell"][k], float(f["energy"][k]),
            f["forces"][lo:hi])
train = [structure(k) for k in S["train"]]
test = [structure(k) for k in S["test"]]
types = [29, 79]
counts = np.array([[np.sum(s[0] == z) for z in types] for s in train], float)
shifts = np.linalg.lstsq(counts, np.array([s[3] for s in train]), rcond=None)[0]
scale = float(np.sqrt(np.mean(np.concatenate([s[4].ravel() for s in train]) ** 2)))
order_gen = torch.Generator().manual_seed(S.get("seed", 0))
orders = [torch.randperm(len(train), generator=order_gen).tolist() for _ in range(S["epochs"])]
"""

# equidyn's side of every accuracy comparison: graphs, then a ``model`` (the caller's), then
# the shared training loop and evaluation (also used by mace_vs_mace_torch.py)
EQUIDYN_GRAPHS = r"""
from equidyn.graph import batch_graphs, radius_graph
from equidyn.models import Potential
from equidyn.data.stats import average_num_neighbors
def graph(s):
    return radius_graph(torch.tensor(s[1], dtype=torch.float32), s[0], S["r_max"],
                        torch.tensor(s[2], dtype=torch.float32), True,
                        energy=s[3], forces=torch.tensor(s[4], dtype=torch.float32))
G = [graph(s) for s in train]
T = [graph(s) for s in test]
"""

EQUIDYN_FIT = r"""
pot = Potential(model, types, shifts.tolist(), scale=scale).train()
opt = torch.optim.Adam(pot.parameters(), lr=S["lr"], amsgrad=True)
t0 = time.perf_counter()
for epoch in range(S["epochs"]):
    for i in range(0, len(G), S["batch"]):
        b = batch_graphs([G[j] for j in orders[epoch][i:i + S["batch"]]])
        out = pot(b, compute_forces=True)
        n = b.num_atoms.float()
        loss = (((out["energy"] - b.energy) / n) ** 2).mean()
        loss = loss + ((out["forces"] - b.forces) ** 2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
train_s = time.perf_counter() - t0
pot.eval()
ea, fa, nf = 0.0, 0.0, 0
for g in T:
    out = pot(g, compute_forces=True)
    ea += abs(float(out["energy"][0]) - float(g.energy[0])) / g.num_nodes
    fa += float((out["forces"].detach() - g.forces).abs().sum()); nf += g.forces.numel()
print(json.dumps({"energy_mae": 1000 * ea / len(T), "forces_mae": 1000 * fa / nf,
                  "train_s": train_s, "params": sum(p.numel() for p in pot.parameters())}))
"""

EQUIDYN = (
    EQUIDYN_GRAPHS
    + r"""
from equidyn.models import NequIP
model = NequIP(num_species=2, r_max=S["r_max"], l_max=S["l_max"], parity=True,
               num_features=S["features"], num_layers=S["layers"], num_basis=8,
               trainable_basis=False, polynomial_p=6, radial_hidden=S["radial_width"],
               radial_layers=1, avg_num_neighbors=average_num_neighbors(G),
               self_connection="embedding")  # the nequip package's self-connections
"""
    + EQUIDYN_FIT
)

NEQUIP = r"""
import ase
from nequip.utils.global_state import set_global_state
set_global_state()
torch.set_default_dtype(torch.float32)
from nequip.model import NequIPGNNModel
from nequip.data import AtomicDataDict, from_ase
from nequip.data.transforms import NeighborListTransform, ChemicalSpeciesToAtomTypeMapper
mapper = ChemicalSpeciesToAtomTypeMapper(model_type_names=["Cu", "Au"])
nl = NeighborListTransform(r_max=S["r_max"])
def graph(s):
    atoms = ase.Atoms(numbers=s[0], positions=s[1], cell=s[2], pbc=True)
    d = nl(mapper(from_ase(atoms)))
    return {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v)
            for k, v in d.items()}
G = [graph(s) for s in train]
T = [graph(s) for s in test]
avg = sum(g[AtomicDataDict.EDGE_INDEX_KEY].shape[1] for g in G) / sum(len(s[0]) for s in train)
model = NequIPGNNModel(seed=S.get("seed", 0), model_dtype="float32", type_names=["Cu", "Au"],
    r_max=S["r_max"],
    l_max=S["l_max"], parity=True, num_layers=S["layers"], num_features=S["features"],
    num_bessels=8, polynomial_cutoff_p=6, radial_mlp_depth=1, radial_mlp_width=S["radial_width"],
    avg_num_neighbors=avg, per_type_energy_shifts={"Cu": float(shifts[0]), "Au": float(shifts[1])},
    per_type_energy_scales={"Cu": scale, "Au": scale})
model.train()
E = [torch.tensor([s[3]], dtype=torch.float32) for s in train]
F = [torch.tensor(s[4], dtype=torch.float32) for s in train]
opt = torch.optim.Adam(model.parameters(), lr=S["lr"], amsgrad=True)
t0 = time.perf_counter()
for epoch in range(S["epochs"]):
    for i in range(0, len(G), S["batch"]):
        idx = orders[epoch][i:i + S["batch"]]
        b = AtomicDataDict.batched_from_list([dict(G[j]) for j in idx])
        out = model(b)
        n = torch.tensor([len(train[j][0]) for j in idx], dtype=torch.float32)
        e = out[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1)
        loss = (((e - torch.cat([E[j] for j in idx])) / n) ** 2).mean() + \
            ((out[AtomicDataDict.FORCE_KEY] - torch.cat([F[j] for j in idx])) ** 2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
train_s = time.perf_counter() - t0
model.eval()
ea, fa, nf = 0.0, 0.0, 0
for g, s in zip(T, test):
    out = model(dict(g))
    ea += abs(float(out[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1)[0]) - s[3]) / len(s[0])
    fo = out[AtomicDataDict.FORCE_KEY].detach()
    fa += float((fo - torch.tensor(s[4], dtype=torch.float32)).abs().sum()); nf += fo.numel()
print(json.dumps({"energy_mae": 1000 * ea / len(T), "forces_mae": 1000 * fa / nf,
                  "train_s": train_s, "params": sum(p.numel() for p in model.parameters())}))
"""


def run(python: str, body: str, settings: dict, timeout: float) -> dict:
    code = "S = " + json.dumps(settings) + "\n" + COMMON + body
    env = dict(os.environ, OMP_NUM_THREADS=str(settings["threads"]))
    try:
        proc = subprocess.run(
            [python, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    return json.loads(lines[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--l-max", type=int, default=1)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--radial-width", type=int, default=16)
    p.add_argument("--r-max", type=float, default=4.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="seeds of the initial weights and batch order; each runs both sides",
    )
    p.add_argument("--nequip-python", default=reference_python("nequip"))
    p.add_argument("--timeout", type=float, default=3000)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.quick:
        args.n_train, args.n_test, args.epochs = 20, 10, 2
    n_structures = 3000
    npz = builtin_dataset_path("cuau-emt", n_structures=n_structures, seed=0)
    train, _, test = split_indices(n_structures, args.n_train, 0, args.n_test, seed=0)
    settings = {
        "npz": str(npz),
        "train": train,
        "test": test,
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "l_max": args.l_max,
        "features": args.features,
        "layers": args.layers,
        "radial_width": args.radial_width,
        "r_max": args.r_max,
        "threads": args.threads,
    }
    print(
        f"{args.n_train} train / {args.n_test} test structures, {args.epochs} epochs, batch "
        f"{args.batch}, l_max {args.l_max}, {args.features} features, {args.layers} layers, "
        f"seeds {args.seeds}"
    )
    sides = (
        ("equidyn NequIP", sys.executable, EQUIDYN),
        ("nequip (package)", args.nequip_python, NEQUIP),
    )
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in sides}
    for seed in args.seeds:
        for name, python, body in sides:
            r = run(python, body, dict(settings, seed=seed), args.timeout)
            runs[name].append(dict(r, seed=seed))
            if "error" in r:
                print(f"seed {seed} {name:<18} not run: {r['error']}", flush=True)
            else:
                print(
                    f"seed {seed} {name:<18} energy MAE {r['energy_mae']:7.2f} meV/atom  "
                    f"force MAE {r['forces_mae']:7.2f} meV/Å  params {r['params']:>7}  "
                    f"training {r['train_s']:.0f} s",
                    flush=True,
                )
    summary = {name: summarize(rs) for name, rs in runs.items()}
    for name, m in summary.items():
        if m:
            print(
                f"{name:<18} over {m['n']} seeds: energy MAE {m['energy_mae']:.2f} ± "
                f"{m['energy_mae_std']:.2f} meV/atom, force MAE {m['forces_mae']:.2f} ± "
                f"{m['forces_mae_std']:.2f} meV/Å, training {m['train_s']:.0f} s"
            )
    ours, theirs = summary["equidyn NequIP"], summary["nequip (package)"]
    if ours and theirs:
        warning = params_warning("equidyn NequIP", ours["params"], "nequip", theirs["params"])
        print(warning or "same model size (parameter counts within 10 %)")
    if args.json:
        write_json_atomic(
            args.json,
            {
                "settings": dict(settings, seeds=args.seeds, train=None, test=None),
                "runs": runs,
                "summary": summary,
            },
        )


def summarize(rs: list[dict]) -> dict:
    """Mean and sample standard deviation over the seeds that ran (empty when none did)."""
    ok = [r for r in rs if "error" not in r]
    if not ok:
        return {}
    out: dict = {"n": len(ok), "params": ok[0]["params"]}
    for key in ("energy_mae", "forces_mae", "train_s"):
        xs = [r[key] for r in ok]
        mean = sum(xs) / len(xs)
        var = sum((x - mean) ** 2 for x in xs) / max(len(xs) - 1, 1)
        out[key], out[key + "_std"] = mean, var**0.5
    return out


def write_json_atomic(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
