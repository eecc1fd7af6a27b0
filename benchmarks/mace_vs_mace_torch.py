"""equidyn MACE vs mace-torch: energy + forces on a 256-atom periodic Cu cell, side by side.

Protocol (docs/protocols.md §2): 4x4x4 cubic fcc Cu cell (a = 3.6 Å, 256 atoms) rattled by
0.05 Å (seed 0), r_max 5 Å, randomly initialised models with the same hyperparameters
(64x0e+64x1o, max_ell 3, correlation 3, 2 interactions, 8 Bessel functions, polynomial
cutoff p = 5, radial MLP [64, 64, 64], readout MLP 16), 2 threads, median of 10 calls after
3 warm-ups, float32 and float64. One call = energy and forces (autograd) from a prebuilt
neighbour list (the neighbour list is not timed on either side).

mace-torch 0.3.16 pins e3nn 0.4.4 while equidyn's tests use e3nn 0.6, so each side runs in its
own process and virtual environment: equidyn in this interpreter, mace-torch in
``--mace-python`` (default ``benchmarks/.venvs/mace``, made by
``bash benchmarks/reference_envs.sh``).
The two workers stay alive and are timed in alternation (one call each, in turn), so that load
from other processes on the machine affects both sides alike. Every configuration is run
with the default glibc allocator and with the tuned one of docs/protocols.md §2
(``MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ / MALLOC_TOP_PAD_``), the same for both.

    python benchmarks/mace_vs_mace_torch.py            # full protocol
    python benchmarks/mace_vs_mace_torch.py --quick    # 1 warm-up, 3 calls, float32, tuned only

``--accuracy`` instead trains both models the same way (the protocol of
``benchmarks/potentials_accuracy.py``: same built-in Cu-Au EMT structures in the same order,
same per-species shifts and force scale, MSE of energy per atom + MSE of force components,
AMSGrad at a constant learning rate, same epochs) and prints the test energy / force MAE.

    python benchmarks/mace_vs_mace_torch.py --accuracy --epochs 10 --n-train 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _reference import params_warning, reference_python  # benchmarks/_reference.py
from potentials_accuracy import EQUIDYN_FIT, EQUIDYN_GRAPHS, run  # the shared protocol

TUNED_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": "1000000000000",
    "MALLOC_TRIM_THRESHOLD_": "1000000000000",
    "MALLOC_TOP_PAD_": "1000000000",
}
HIDDEN = "64x0e+64x1o"
HYPER = dict(r_max=5.0, num_basis=8, polynomial_p=5, l_max=3, correlation=3,
             num_layers=2, radial_mlp=[64, 64, 64], readout_hidden=16)  # fmt: skip


def cu_cell():
    """The 256-atom rattled Cu fcc cell of docs/protocols.md §2 (an ase.Atoms)."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((4, 4, 4))
    atoms.rattle(0.05, seed=0)
    return atoms


# ----------------------------------------------------------------------------- workers
def _equidyn_setup(dtype):
    import torch

    from equidyn.graph.batch import radius_graph
    from equidyn.models.mace import MACE
    from equidyn.models.potential import Potential

    atoms = cu_cell()
    torch.manual_seed(0)
    model = MACE(num_species=1, hidden_irreps=HIDDEN, avg_num_neighbors=43.0, **HYPER)
    pot = Potential(model, [29]).to(dtype).eval()
    pos = torch.tensor(atoms.positions, dtype=dtype)
    cell = torch.tensor(atoms.cell.array, dtype=dtype)
    graph = radius_graph(pos, atoms.numbers.tolist(), HYPER["r_max"], cell, True)
    n_edges = int(graph.edge_index.shape[1])

    def call():
        out = pot(graph, compute_forces=True, create_graph=False)
        return out["energy"], out["forces"]

    params = sum(p.numel() for p in pot.parameters())
    return call, params, n_edges


def _mace_setup(dtype):
    import importlib

    import numpy as np
    import torch
    from mace import data, modules, tools
    from mace.tools import torch_geometric

    o3 = importlib.import_module("e3nn.o3")  # after mace, which lets e3nn 0.4.4 load on torch 2.6+

    torch.set_default_dtype(dtype)  # mace-torch builds its constants in the default dtype
    atoms = cu_cell()
    z_table = tools.AtomicNumberTable([29])
    config = data.config_from_atoms(atoms)
    atomic = data.AtomicData.from_config(config, z_table=z_table, cutoff=HYPER["r_max"])
    loader = torch_geometric.dataloader.DataLoader([atomic], batch_size=1, shuffle=False)
    batch = next(iter(loader)).to_dict()
    torch.manual_seed(0)
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model = modules.MACE(
        r_max=HYPER["r_max"], num_bessel=HYPER["num_basis"],
        num_polynomial_cutoff=HYPER["polynomial_p"], max_ell=HYPER["l_max"],
        interaction_cls=block, interaction_cls_first=block,
        num_interactions=HYPER["num_layers"], num_elements=1,
        hidden_irreps=o3.Irreps(HIDDEN), MLP_irreps=o3.Irreps(f"{HYPER['readout_hidden']}x0e"),
        gate=torch.nn.functional.silu, atomic_energies=np.zeros(1), avg_num_neighbors=43.0,
        atomic_numbers=[29], correlation=HYPER["correlation"], radial_MLP=HYPER["radial_mlp"],
    ).to(dtype).eval()  # fmt: skip
    n_edges = int(batch["edge_index"].shape[1])

    def call():
        out = model(batch, compute_force=True, training=False)
        return out["energy"], out["forces"]

    params = sum(p.numel() for p in model.parameters())
    return call, params, n_edges


def worker(side: str, dtype_name: str, threads: int) -> None:
    """Line protocol on stdin/stdout: prints a JSON header, then one JSON line per 'time'."""
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    call, params, n_edges = (_equidyn_setup if side == "equidyn" else _mace_setup)(dtype)
    energy, forces = call()
    print("@@" + json.dumps({"params": params, "edges": n_edges, "energy": float(energy.sum()),
                      "max_force": float(forces.abs().max())}), flush=True)  # fmt: skip
    for line in sys.stdin:
        if line.strip() != "time":
            break
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print("@@" + json.dumps({"ms": wall * 1e3, "cpu_ms": cpu * 1e3}), flush=True)


# ----------------------------------------------------------------------------- driver
class Worker:
    def __init__(self, python: str, side: str, dtype: str, threads: int, tuned: bool) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        if tuned:
            env.update(TUNED_MALLOC)
        env["OMP_NUM_THREADS"] = str(threads)
        src = str(Path(__file__).resolve().parents[1] / "src")
        if side == "equidyn":
            env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(
            [python, str(Path(__file__).resolve()), "--worker", side, "--dtype", dtype,
             "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env,
        )  # fmt: skip
        self.side = side
        self.header = self._read()

    def _read(self) -> dict:
        # protocol lines start with "@@"; anything else a library prints is skipped
        while True:
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read()
                raise RuntimeError(f"{self.side} worker failed:\n{err[-3000:]}")
            if line.startswith("@@"):
                return json.loads(line[2:])

    def time_one(self) -> tuple[float, float]:
        """Wall and process-CPU milliseconds of one call."""
        self.proc.stdin.write("time\n")
        self.proc.stdin.flush()
        r = self._read()
        return r["ms"], r["cpu_ms"]

    def close(self) -> None:
        try:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=60)


# ----------------------------------------------------------------------------- accuracy
ACC_MODEL = dict(r_max=4.0, max_ell=2, correlation=3, num_interactions=2, hidden="8x0e+8x1o",
                 radial_mlp=[16, 16], readout_hidden=16)  # fmt: skip

EQUIDYN_TRAIN = (
    EQUIDYN_GRAPHS
    + r"""
from equidyn.models.mace import MACE
model = MACE(num_species=2, r_max=S["r_max"], num_basis=8, polynomial_p=5, l_max=S["max_ell"],
             correlation=S["correlation"], num_layers=S["num_interactions"],
             hidden_irreps=S["hidden"], radial_mlp=S["radial_mlp"],
             readout_hidden=S["readout_hidden"], avg_num_neighbors=average_num_neighbors(G))
"""
    + EQUIDYN_FIT
)

MACE_TRAIN = r"""
import warnings; warnings.filterwarnings("ignore")
import ase
from mace import data as mdata, modules, tools
from mace.tools import torch_geometric
import importlib
o3 = importlib.import_module("e3nn.o3")
torch.set_default_dtype(torch.float32)
z_table = tools.AtomicNumberTable(types)
def graph(s):
    atoms = ase.Atoms(numbers=s[0], positions=s[1], cell=s[2], pbc=True)
    return mdata.AtomicData.from_config(mdata.config_from_atoms(atoms), z_table=z_table,
                                        cutoff=S["r_max"])
G = [graph(s) for s in train]
T = [graph(s) for s in test]
avg = sum(g.edge_index.shape[1] for g in G) / sum(len(s[0]) for s in train)
block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
torch.manual_seed(S.get("seed", 0))
model = modules.ScaleShiftMACE(
    r_max=S["r_max"], num_bessel=8, num_polynomial_cutoff=5, max_ell=S["max_ell"],
    interaction_cls=block, interaction_cls_first=block, num_interactions=S["num_interactions"],
    num_elements=2, hidden_irreps=o3.Irreps(S["hidden"]),
    MLP_irreps=o3.Irreps(f"{S['readout_hidden']}x0e"), gate=torch.nn.functional.silu,
    atomic_energies=np.array(shifts), avg_num_neighbors=avg, atomic_numbers=types,
    correlation=S["correlation"], radial_MLP=S["radial_mlp"], atomic_inter_scale=scale,
    atomic_inter_shift=0.0)
E = [torch.tensor([s[3]], dtype=torch.float32) for s in train]
F = [torch.tensor(s[4], dtype=torch.float32) for s in train]
opt = torch.optim.Adam(model.parameters(), lr=S["lr"], amsgrad=True)
t0 = time.perf_counter()
for epoch in range(S["epochs"]):
    for i in range(0, len(G), S["batch"]):
        idx = orders[epoch][i:i + S["batch"]]
        b = torch_geometric.batch.Batch.from_data_list([G[j] for j in idx]).to_dict()
        out = model(b, training=True, compute_force=True)
        n = torch.tensor([len(train[j][0]) for j in idx], dtype=torch.float32)
        loss = (((out["energy"] - torch.cat([E[j] for j in idx])) / n) ** 2).mean() + \
            ((out["forces"] - torch.cat([F[j] for j in idx])) ** 2).mean()
        opt.zero_grad(); loss.backward(); opt.step()
train_s = time.perf_counter() - t0
model.eval()
ea, fa, nf = 0.0, 0.0, 0
for g, s in zip(T, test):
    b = torch_geometric.batch.Batch.from_data_list([g]).to_dict()
    out = model(b, compute_force=True)
    ea += abs(float(out["energy"][0]) - s[3]) / len(s[0])
    fo = out["forces"].detach()
    fa += float((fo - torch.tensor(s[4], dtype=torch.float32)).abs().sum()); nf += fo.numel()
print(json.dumps({"energy_mae": 1000 * ea / len(T), "forces_mae": 1000 * fa / nf,
                  "train_s": train_s, "params": sum(p.numel() for p in model.parameters())}))
"""


def accuracy(args: argparse.Namespace) -> None:
    """Train both models on the same data for the same epochs; print test MAEs."""
    from equidyn.data.builtin import builtin_dataset_path
    from equidyn.data.split import split_indices

    n_structures = 3000
    npz = builtin_dataset_path("cuau-emt", n_structures=n_structures, seed=0)
    train, _, test = split_indices(n_structures, args.n_train, 0, args.n_test, seed=0)
    settings = dict(ACC_MODEL, npz=str(npz), train=train, test=test, epochs=args.epochs,
                    batch=args.batch, lr=args.lr, threads=args.threads, seed=args.seed)  # fmt: skip
    print(f"{args.n_train} train / {args.n_test} test structures (built-in Cu-Au EMT), "
          f"{args.epochs} epochs, batch {args.batch}, lr {args.lr}; model {ACC_MODEL}")  # fmt: skip
    results = {}
    for name, python, body in (
        ("equidyn MACE", sys.executable, EQUIDYN_TRAIN),
        ("mace-torch", args.mace_python, MACE_TRAIN),
    ):
        r = run(python, body, settings, args.timeout)
        results[name] = r
        if "error" in r:
            print(f"{name:<13} not run: {r['error']}", flush=True)
        else:
            print(f"{name:<13} energy MAE {r['energy_mae']:7.2f} meV/atom  force MAE "
                  f"{r['forces_mae']:7.2f} meV/Å  params {r['params']:>7}  "
                  f"training {r['train_s']:.0f} s", flush=True)  # fmt: skip
    ours, theirs = results["equidyn MACE"], results["mace-torch"]
    if "params" in ours and "params" in theirs:
        print(params_warning("equidyn MACE", ours["params"], "mace-torch", theirs["params"])
              or "same model size (parameter counts within 10 %)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 warm-up, 3 calls, float32, tuned")
    p.add_argument("--mace-python", default=reference_python("mace"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument(
        "--allocators", nargs="+", default=["default", "tuned"], choices=["default", "tuned"]
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--accuracy", action="store_true", help="train both; compare test MAEs")
    p.add_argument("--n-train", type=int, default=100)
    p.add_argument("--n-test", type=int, default=50)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0, help="--accuracy: weights and batch order")
    p.add_argument("--timeout", type=float, default=3000)
    p.add_argument("--worker", choices=["equidyn", "mace"], help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.dtype, args.threads)
        return
    if args.accuracy:
        if args.quick:
            args.n_train, args.n_test, args.epochs = 10, 5, 1
        accuracy(args)
        return
    if args.quick:
        args.warmup, args.repeats, args.dtypes, args.allocators = 1, 3, ["float32"], ["tuned"]
    have_mace = Path(args.mace_python).exists()
    if not have_mace:
        print(f"note: {args.mace_python} not found: timing equidyn only (see the docstring)")

    print(f"256-atom Cu fcc cell, r_max 5, {HIDDEN}, max_ell 3, correlation 3, 2 interactions; "
          f"{args.threads} threads, median of {args.repeats} after {args.warmup} warm-ups, "
          "energy + forces, workers timed in alternation")  # fmt: skip
    header = (f"{'allocator':<9} {'dtype':<8} {'equidyn ms':>11} {'mace-torch ms':>14} "
              f"{'ratio':>7} {'ours CPU':>10} {'their CPU':>10} {'ratio':>7}")  # fmt: skip
    rows, results = [], []
    for alloc in args.allocators:
        for dtype in args.dtypes:
            ours = Worker(sys.executable, "equidyn", dtype, args.threads, alloc == "tuned")
            theirs = (
                Worker(args.mace_python, "mace", dtype, args.threads, alloc == "tuned")
                if have_mace
                else None
            )
            times: dict[str, list[float]] = {"equidyn": [], "mace": []}
            cpu: dict[str, list[float]] = {"equidyn": [], "mace": []}
            for k in range(args.warmup + args.repeats):
                for w in (ours, theirs):
                    if w is None:
                        continue
                    ms, cpu_ms = w.time_one()
                    if k >= args.warmup:
                        times[w.side].append(ms)
                        cpu[w.side].append(cpu_ms)
            med_ours = statistics.median(times["equidyn"])
            med_theirs = statistics.median(times["mace"]) if theirs else float("nan")
            cpu_ours = statistics.median(cpu["equidyn"])
            cpu_theirs = statistics.median(cpu["mace"]) if theirs else float("nan")
            res = {"allocator": alloc, "dtype": dtype, "equidyn_ms": med_ours,
                   "mace_torch_ms": med_theirs, "speedup": med_theirs / med_ours,
                   "equidyn": ours.header, "mace_torch": theirs.header if theirs else None,
                   "equidyn_all": times["equidyn"], "mace_torch_all": times["mace"],
                   "equidyn_cpu_ms": cpu_ours, "mace_torch_cpu_ms": cpu_theirs}  # fmt: skip
            results.append(res)
            rows.append(f"{alloc:<9} {dtype:<8} {med_ours:>11.1f} {med_theirs:>14.1f} "
                        f"{med_theirs / med_ours:>6.2f}x {cpu_ours:>10.1f} {cpu_theirs:>10.1f} "
                        f"{cpu_theirs / cpu_ours:>6.2f}x")  # fmt: skip
            print(rows[-1] if len(rows) > 1 else header + "\n" + rows[-1], flush=True)
            ours.close()
            if theirs:
                theirs.close()
    first = results[0]
    ours_h, theirs_h = first["equidyn"], first["mace_torch"]
    print(f"\nparameters: equidyn {ours_h['params']:,}"
          + (f", mace-torch {theirs_h['params']:,}" if theirs_h else ""))  # fmt: skip
    warning = theirs_h and params_warning("equidyn MACE", ours_h["params"], "mace-torch",
                                          theirs_h["params"])  # fmt: skip
    if warning:
        print(warning + "; the time ratios above are not a like-for-like speed-up")
    print(f"edges: equidyn {ours_h['edges']}"
          + (f", mace-torch {theirs_h['edges']}" if theirs_h else ""))  # fmt: skip
    print(
        "ratio = mace-torch time / equidyn time (> 1: equidyn is faster); CPU = process CPU "
        "time per call (all threads), less sensitive to other load on the machine"
    )
    print(f"tuned allocator: {' '.join(f'{k}={v}' for k, v in TUNED_MALLOC.items())}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
