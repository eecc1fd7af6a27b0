"""Whole potentials side by side: equidyn NequIP / MACE against the nequip and mace-torch packages.

Inference throughput (energy + forces, autograd) on the 256-atom periodic Cu fcc cell of
docs/protocols.md §2: 4x4x4 cubic cells, a = 3.6 Å, rattled 0.05 Å (seed 0), r_max 5 Å, randomly
initialised models, ``torch.set_num_threads(--threads)`` (2), median of ``--repeats`` (10)
calls after 3 warm-ups, float32 and float64. Matching hyperparameters:

- NequIP: l_max 2, 32 features of every (l, p) ("O(3) full"), 4 layers, 8 Bessel (fixed
  frequencies), p = 6, radial MLP of one hidden layer of 128, and the package's
  self-connections (``self_connection="embedding"``: the tensor product of the features with
  the 32-scalar species embedding, none in the first layer): 848 960 parameters on both
  sides;
- MACE: hidden 64x0e+64x1o, max_ell 3, correlation 3, 2 interactions, 8 Bessel, p = 5,
  radial MLP [64, 64, 64].

mace-torch pins e3nn 0.4.4 and nequip needs e3nn >= 0.6, so each package runs in its own
virtual environment (``--nequip-python``, ``--mace-python``; default the venvs that
``bash benchmarks/reference_envs.sh`` makes in ``benchmarks/.venvs``), as a subprocess;
equidyn runs in a subprocess of this interpreter too,
so every model sees the same environment. ``--allocator tuned`` sets
``MALLOC_MMAP_THRESHOLD_=1000000000000 MALLOC_TRIM_THRESHOLD_=1000000000000
MALLOC_TOP_PAD_=1000000000`` for all of them (docs/protocols.md §2), ``default`` leaves glibc alone.

    python benchmarks/potentials.py --quick           # float32, 1 warm-up, 3 repeats
    python benchmarks/potentials.py --allocator tuned
    python benchmarks/potentials.py --task train      # training steps instead

``--task train`` times one training step instead: energy and forces with the graph of the
forces kept (each package's own training switch), the backward of
``mean(F²) + mean(E²)`` to the parameters (a second derivative through every layer), and the
gradients cleared.

A package that cannot be imported is reported with its error instead of a time. A pair whose
parameter counts differ by more than 10 % is flagged as not comparable, and its ratio is not
printed as a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

from _reference import params_gap, params_warning, reference_python  # benchmarks/_reference.py

TUNED = {
    "MALLOC_MMAP_THRESHOLD_": "1000000000000",
    "MALLOC_TRIM_THRESHOLD_": "1000000000000",
    "MALLOC_TOP_PAD_": "1000000000",
}

COMMON = r"""
import json, statistics, sys, time
import numpy as np, torch
from ase.build import bulk
torch.set_num_threads(THREADS)
atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((4, 4, 4))
atoms.rattle(0.05, seed=0)
DTYPE = getattr(torch, DTYPE_NAME)
torch.set_default_dtype(DTYPE)
torch.manual_seed(0)

def timeit(fn):
    for _ in range(WARMUPS):
        fn()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000

TRAIN = TASK == "train"

def step_of(energy_forces, module):
    # inference: energy + forces; training: also the gradient of a loss on both, which
    # needs the graph of the forces (a second derivative)
    if not TRAIN:
        return lambda: energy_forces()[1]
    def step():
        e, f = energy_forces()
        (f.square().mean() + e.square().mean()).backward()
        for p in module.parameters():
            p.grad = None
    return step
"""

EQUIDYN_NEQUIP = r"""
from equidyn.graph import radius_graph
from equidyn.models import NequIP, Potential
model = NequIP(num_species=1, r_max=5.0, l_max=2, parity=True, num_features=32, num_layers=4,
               num_basis=8, trainable_basis=False, polynomial_p=6, radial_hidden=128,
               radial_layers=1, avg_num_neighbors=43.0, self_connection="embedding")
pot = Potential(model, [29]).to(DTYPE).train(TRAIN)  # train: forces keep their graph
g = radius_graph(torch.tensor(atoms.positions, dtype=DTYPE), atoms.numbers, 5.0,
                 torch.tensor(np.asarray(atoms.cell), dtype=DTYPE), True)
def energy_forces():
    out = pot(g, compute_forces=True)
    return out["energy"], out["forces"]
ms = timeit(step_of(energy_forces, pot))
n_params = sum(p.numel() for p in pot.parameters())
print(json.dumps({"ms": ms, "edges": g.num_edges, "params": n_params}))
"""

EQUIDYN_MACE = r"""
from equidyn.graph import radius_graph
from equidyn.models.potential import Potential
from equidyn.models.mace import MACE
model = MACE(**MACE_KWARGS)
pot = Potential(model, [29]).to(DTYPE).train(TRAIN)  # train: forces keep their graph
g = radius_graph(torch.tensor(atoms.positions, dtype=DTYPE), atoms.numbers, 5.0,
                 torch.tensor(np.asarray(atoms.cell), dtype=DTYPE), True)
def energy_forces():
    out = pot(g, compute_forces=True)
    return out["energy"], out["forces"]
ms = timeit(step_of(energy_forces, pot))
n_params = sum(p.numel() for p in pot.parameters())
print(json.dumps({"ms": ms, "edges": g.num_edges, "params": n_params}))
"""

NEQUIP_PACKAGE = r"""
import nequip
from nequip.utils.global_state import set_global_state
set_global_state()
torch.set_default_dtype(DTYPE)
from nequip.model import NequIPGNNModel
from nequip.data import AtomicDataDict, from_ase
from nequip.data.transforms import NeighborListTransform, ChemicalSpeciesToAtomTypeMapper
model = NequIPGNNModel(
    seed=0, model_dtype=DTYPE_NAME, type_names=["Cu"], r_max=5.0, l_max=2, parity=True,
    num_layers=4, num_features=32, num_bessels=8, polynomial_cutoff_p=6,
    radial_mlp_depth=1, radial_mlp_width=128, avg_num_neighbors=43.0,
)
model.train(TRAIN)  # train: forces keep their graph
data = from_ase(atoms)
data = ChemicalSpeciesToAtomTypeMapper(model_type_names=["Cu"])(data)
data = NeighborListTransform(r_max=5.0)(data)
data = AtomicDataDict.to_(data, torch.device("cpu"))
for k, v in list(data.items()):
    if torch.is_tensor(v) and v.is_floating_point():
        data[k] = v.to(DTYPE)
n_edges = data[AtomicDataDict.EDGE_INDEX_KEY].shape[1]
def energy_forces():
    out = model(dict(data))
    return out[AtomicDataDict.TOTAL_ENERGY_KEY], out[AtomicDataDict.FORCE_KEY]
ms = timeit(step_of(energy_forces, model))
n_params = sum(p.numel() for p in model.parameters())
print(json.dumps({"ms": ms, "edges": int(n_edges), "params": n_params,
                  "version": nequip.__version__}))
"""

MACE_PACKAGE = r"""
import mace
from e3nn import o3
from mace import data as mdata, modules, tools
from mace.tools import torch_geometric
z_table = tools.AtomicNumberTable([29])
model = modules.MACE(
    r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
    interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
    interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
    num_interactions=2, num_elements=1, hidden_irreps=o3.Irreps("64x0e+64x1o"),
    MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(1), avg_num_neighbors=43.0,
    atomic_numbers=[29], correlation=3, gate=torch.nn.functional.silu,
    radial_MLP=[64, 64, 64],
).to(DTYPE).train(TRAIN)
config = mdata.config_from_atoms(atoms)
ad = mdata.AtomicData.from_config(config, z_table=z_table, cutoff=5.0)
loader = torch_geometric.dataloader.DataLoader([ad], batch_size=1)
batch = next(iter(loader)).to_dict()
batch = {k: (v.to(DTYPE) if torch.is_tensor(v) and v.is_floating_point() else v)
         for k, v in batch.items()}
def energy_forces():
    out = model(batch, training=TRAIN, compute_force=True)  # training: forces keep their graph
    return out["energy"], out["forces"]
ms = timeit(step_of(energy_forces, model))
n_params = sum(p.numel() for p in model.parameters())
print(json.dumps({"ms": ms, "edges": int(batch["edge_index"].shape[1]),
                  "params": n_params, "version": mace.__version__}))
"""

MACE_KWARGS = dict(
    num_species=1,
    r_max=5.0,
    num_basis=8,
    polynomial_p=5,
    l_max=3,
    correlation=3,
    num_layers=2,
    hidden_irreps="64x0e+64x1o",
    radial_mlp=[64, 64, 64],
    avg_num_neighbors=43.0,
)


def run_worker(python: str, body: str, dtype: str, args: argparse.Namespace, env: dict) -> dict:
    code = COMMON.replace("THREADS", str(args.threads)).replace("REPEATS", str(args.repeats))
    code = code.replace("WARMUPS", "1" if args.quick else "3")
    code = code.replace("TASK", repr(args.task))
    code = code.replace("DTYPE_NAME", repr(dtype)) + body.replace("DTYPE_NAME", repr(dtype))
    code = code.replace("MACE_KWARGS", repr(MACE_KWARGS))
    try:
        proc = subprocess.run(
            [python, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            env=env,
            timeout=args.timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": err[:300]}
    return json.loads(lines[-1])


def print_ratio(ours: str, ref: str, dtype: str, a: dict, b: dict) -> None:
    """The speed ratio of a pair, or a loud flag when the two models are not the same size."""
    a["params_gap"] = b["params_gap"] = params_gap(a["params"], b["params"])
    warning = params_warning(ours, a["params"], ref, b["params"])
    if warning:
        print(f"  {dtype}: {warning}; time ratio {b['ms'] / a['ms']:.2f}x is not a speed-up")
    else:
        print(f"  {dtype}: {ref} / {ours} = {b['ms'] / a['ms']:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--task",
        choices=["infer", "train"],
        default="infer",
        help="infer: energy + forces; train: also backward of a loss on energy and forces",
    )
    p.add_argument("--repeats", type=int, default=None, help="default 10 (--quick: 3)")
    p.add_argument("--allocator", choices=["tuned", "default"], default="tuned")
    p.add_argument("--nequip-python", default=reference_python("nequip"))
    p.add_argument("--mace-python", default=reference_python("mace"))
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--only", nargs="+", default=None, help="subset of model names to run")
    p.add_argument("--timeout", type=float, default=1200)
    p.add_argument("--json", default=None, help="write the results here")
    args = p.parse_args()
    if args.quick:
        args.dtypes = ["float32"]
    if args.repeats is None:
        args.repeats = 3 if args.quick else 10
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["OMP_NUM_THREADS"] = str(args.threads)
    if args.allocator == "tuned":
        env.update(TUNED)
    models = [
        ("equidyn NequIP", sys.executable, EQUIDYN_NEQUIP),
        ("nequip (package)", args.nequip_python, NEQUIP_PACKAGE),
        ("equidyn MACE", sys.executable, EQUIDYN_MACE),
        ("mace-torch", args.mace_python, MACE_PACKAGE),
    ]
    if args.only:
        models = [m for m in models if m[0] in args.only]
    print(
        f"256-atom Cu fcc, r_max 5 Å, {args.threads} threads, allocator {args.allocator}, "
        f"median of {args.repeats} "
        + ("(energy + forces)" if args.task == "infer" else "(training step: loss on E and F)")
    )
    results = {}
    for dtype in args.dtypes:
        for name, python, body in models:
            res = run_worker(python, body, dtype, args, env)
            results[f"{name} {dtype}"] = res
            if "error" in res:
                print(f"{name:<18} {dtype}: not run ({res['error']})", flush=True)
            else:
                print(
                    f"{name:<18} {dtype}: {res['ms']:9.1f} ms/call  params {res['params']:>8}  "
                    f"edges {res['edges']}",
                    flush=True,
                )
        for ours, ref in (("equidyn NequIP", "nequip (package)"), ("equidyn MACE", "mace-torch")):
            a, b = results.get(f"{ours} {dtype}", {}), results.get(f"{ref} {dtype}", {})
            if "ms" in a and "ms" in b:
                print_ratio(ours, ref, dtype, a, b)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"settings": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
