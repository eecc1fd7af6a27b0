"""GPU speed: the convolution tensor product and a whole-potential MD step, equidyn vs e3nn vs
cuEquivariance, side by side in one process on one device.

Problems:

* ``conv-L`` (docs/protocols.md §1, the problem of ``benchmarks/tensor_product.py``):
  in1 = ``32x0e+32x1o+32x2e+32x3o`` truncated at L, in2 = spherical harmonics 0..L, every
  ``uvu`` path with l3 <= L and p3 = (-1)^l3, per-edge weights, E = 20 000 edges, float32;
  forward and forward+backward. equidyn (eager: the backend ``o3`` picks on that device, the
  torch-op kernel on CUDA, the native C kernel on CPU; and ``torch.compile``), e3nn 0.6
  ``TensorProduct`` with the same paths, and ``cuequivariance_torch.ChannelWiseTensorProduct``
  (``mul_ir`` layout, same irreps and paths; its CUDA kernels where
  ``cuequivariance-ops-torch-cu12`` is installed, its naive fallback elsewhere).
* ``md-step``: energy + forces (one MD step's force call) of equidyn NequIP and MACE
  (docs/protocols.md §1b hyperparameters; ``--quick`` narrows them) on the 256-atom periodic
  Cu cell, eager and
  ``torch.compile``, float32 and float64; mace-torch (e3nn) and mace-torch with
  ``cueq_config`` (cuEquivariance) in the same process where ``mace`` is importable.

A backend that cannot be imported or fails is reported with its error instead of a time (never
silently dropped). Timing: CUDA events with ``torch.cuda.synchronize`` on GPU,
``time.perf_counter`` on CPU; median of ``--repeats`` after ``--warmups``. Writes
``results.json`` and ``table.md`` to ``--out`` (default ``benchmarks/results/gpu/<device>``).

    pip install cuequivariance-torch cuequivariance-ops-torch-cu12   # optional, GPU kernels
    python benchmarks/gpu.py                      # --device auto: CUDA if available
    python benchmarks/gpu.py --quick --device cpu # ~10 s smoke test (what CI runs)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tensor_product import conv_problem, make_calls  # noqa: E402  (benchmarks/tensor_product.py)

warnings.filterwarnings("ignore")


# ----------------------------------------------------------------------------- timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn: Callable[[], object], device: torch.device, warmups: int, repeats: int) -> float:
    """Median wall time of ``fn`` in ms (CUDA events on GPU)."""
    for _ in range(warmups):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def attempt(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``fn()``'s row, or ``{"error": ...}`` naming why it could not run."""
    try:
        return fn()
    except Exception as err:  # a missing package or a failing backend is a result, not a crash
        last = traceback.extract_tb(err.__traceback__)[-1]
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]} ({last.name})"}


# ------------------------------------------------------------------------ tensor product
def cuet_conv(L: int, n: int, device: torch.device) -> tuple[torch.nn.Module, list[torch.Tensor]]:
    """conv-L as ``cuequivariance_torch.ChannelWiseTensorProduct`` (e3nn layout ``mul_ir``)."""
    import cuequivariance as cue
    import cuequivariance_torch as cuet

    from equidyn import o3

    irreps1 = o3.Irreps([(32, (l, (-1) ** l)) for l in range(L + 1)])
    sh = o3.Irreps.spherical_harmonics(L)
    tp = cuet.ChannelWiseTensorProduct(
        cue.Irreps("O3", str(irreps1)),
        cue.Irreps("O3", str(sh)),
        [cue.O3(l, (-1) ** l) for l in range(L + 1)],
        layout=cue.mul_ir,
        shared_weights=False,
        internal_weights=False,
        device=device,
        dtype=torch.float32,
    )
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(n, d, generator=g) for d in (irreps1.dim, sh.dim, tp.weight_numel)]
    return tp, [x.to(device) for x in inputs]


def time_pair(fwd: Callable, fwd_bwd: Callable, args: argparse.Namespace, device: torch.device):
    """``{"fwd_ms", "fwd_bwd_ms"}`` of the two calls."""
    return {
        "fwd_ms": median_ms(fwd, device, args.warmups, args.repeats),
        "fwd_bwd_ms": median_ms(fwd_bwd, device, args.warmups, args.repeats),
    }


def equidyn_tp(L: int, args: argparse.Namespace, device: torch.device, compiled: bool):
    from equidyn.o3 import _tp_backends

    mod, inputs, _ = conv_problem(L, args.edges, "equidyn")
    mod, inputs = mod.to(device), [x.to(device) for x in inputs]
    backend = _tp_backends.select(mod._bound(), *inputs).name  # what eager mode runs
    if compiled:
        mod, backend = torch.compile(mod, fullgraph=True), "torch.compile"
    return {"backend": backend, **time_pair(*make_calls(mod, inputs), args, device)}


def e3nn_tp(L: int, args: argparse.Namespace, device: torch.device):
    import e3nn

    mod, inputs, _ = conv_problem(L, args.edges, "e3nn")
    mod, inputs = mod.to(device), [x.to(device) for x in inputs]
    timed = time_pair(*make_calls(mod, inputs), args, device)
    return {"backend": f"e3nn {e3nn.__version__}", **timed}


def cuet_tp(L: int, args: argparse.Namespace, device: torch.device):
    import cuequivariance_torch as cuet

    mod, inputs = cuet_conv(L, args.edges, device)
    try:
        import cuequivariance_ops_torch  # noqa: F401

        kernel = "CUDA kernels" if device.type == "cuda" else "CPU: naive"
    except ImportError:
        kernel = "naive fallback (no cuequivariance-ops-torch)"
    backend = f"cuequivariance-torch {cuet.__version__}, {kernel}"
    return {"backend": backend, **time_pair(*make_calls(mod, inputs), args, device)}


def tp_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    rows = []
    for L in args.L:
        libs: dict[str, Callable[[], dict[str, Any]]] = {
            "equidyn": partial(equidyn_tp, L, args, device, False),
            "e3nn": partial(e3nn_tp, L, args, device),
            "cuequivariance": partial(cuet_tp, L, args, device),
        }
        if args.compile:
            libs["equidyn compiled"] = partial(equidyn_tp, L, args, device, True)
        for lib, fn in libs.items():
            rows.append({"problem": f"conv-{L}", "edges": args.edges, "lib": lib, **attempt(fn)})
            print(format_row(rows[-1]), flush=True)
    return rows


# -------------------------------------------------------------------------- potentials
MACE_KWARGS = dict(
    r_max=5.0, num_basis=8, polynomial_p=5, l_max=3, correlation=3, num_layers=2,
    hidden_irreps="64x0e+64x1o", radial_mlp=[64, 64, 64], avg_num_neighbors=43.0,
)  # fmt: skip
NEQUIP_KWARGS = dict(
    r_max=5.0, l_max=2, parity=True, num_features=32, num_layers=4, num_basis=8,
    trainable_basis=False, polynomial_p=6, radial_hidden=128, radial_layers=1,
    avg_num_neighbors=43.0, self_connection="embedding",
)  # fmt: skip


def cu_cell(repeat: int):
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((repeat,) * 3)
    atoms.rattle(0.05, seed=0)
    return atoms


#: --quick: the same architectures, narrow (a smoke test of the code path, not a timing)
QUICK_NEQUIP = {**NEQUIP_KWARGS, "num_features": 4, "num_layers": 2, "radial_hidden": 16}
QUICK_MACE = {**MACE_KWARGS, "hidden_irreps": "8x0e+8x1o", "radial_mlp": [16]}


def equidyn_step(
    name: str, atoms, dtype: torch.dtype, device: torch.device, compiled: bool, quick: bool
):
    from equidyn.graph import radius_graph
    from equidyn.models import MACE, NequIP, Potential

    torch.manual_seed(0)
    if name == "NequIP":
        model: torch.nn.Module = NequIP(num_species=1, **(QUICK_NEQUIP if quick else NEQUIP_KWARGS))
    else:
        model = MACE(num_species=1, **(QUICK_MACE if quick else MACE_KWARGS))
    pot = Potential(model, [29]).to(dtype=dtype, device=device).eval()
    pos = torch.tensor(atoms.positions, dtype=dtype)
    cell = torch.tensor(np.asarray(atoms.cell), dtype=dtype)
    graph = radius_graph(pos, atoms.numbers, 5.0, cell, True).to(device)

    def call(p: torch.nn.Module) -> Callable[[], torch.Tensor]:
        return lambda: p(graph, compute_forces=True)["forces"]

    if compiled:  # the energy model is one graph; forces by autograd through it, outside
        pot.model = torch.compile(model, fullgraph=True)
    params = sum(p.numel() for p in model.parameters())
    return call(pot), {"params": params, "edges": graph.num_edges}


def mace_torch_step(atoms, dtype: torch.dtype, device: torch.device, cueq: bool):
    import mace
    from e3nn import o3 as eo
    from mace import data as mdata
    from mace import modules, tools
    from mace.tools import torch_geometric

    extra: dict[str, Any] = {}
    if cueq:
        from mace.modules.wrapper_ops import CuEquivarianceConfig

        extra["cueq_config"] = CuEquivarianceConfig(
            enabled=True, layout="ir_mul", group="O3_e3nn", optimize_all=True
        )
    torch.manual_seed(0)
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model = modules.MACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3, interaction_cls=block,
        interaction_cls_first=block, num_interactions=2, num_elements=1,
        hidden_irreps=eo.Irreps("64x0e+64x1o"), MLP_irreps=eo.Irreps("16x0e"),
        atomic_energies=np.zeros(1), avg_num_neighbors=43.0, atomic_numbers=[29],
        correlation=3, gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64], **extra,
    ).to(dtype=dtype, device=device)  # fmt: skip
    z_table = tools.AtomicNumberTable([29])
    ad = mdata.AtomicData.from_config(mdata.config_from_atoms(atoms), z_table=z_table, cutoff=5.0)
    batch = next(iter(torch_geometric.dataloader.DataLoader([ad], batch_size=1))).to_dict()
    batch = {
        k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
        for k, v in batch.items()
        if torch.is_tensor(v)
    }

    def step() -> torch.Tensor:
        return model(batch, training=False, compute_force=True)["forces"]

    info = {"params": sum(p.numel() for p in model.parameters()), "version": mace.__version__}
    return step, {**info, "edges": int(batch["edge_index"].shape[1])}


def timed_step(make: Callable[[], tuple[Callable, dict]], args, device) -> dict[str, Any]:
    step, info = make()
    return {**info, "ms": median_ms(step, device, args.warmups, args.repeats)}


def model_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    atoms = cu_cell(args.repeat)
    rows = []
    for dtype in args.dtypes:
        dt, q = getattr(torch, dtype), args.quick
        runs: dict[str, Callable[[], tuple[Callable, dict]]] = {
            "equidyn NequIP": partial(equidyn_step, "NequIP", atoms, dt, device, False, q),
            "equidyn MACE": partial(equidyn_step, "MACE", atoms, dt, device, False, q),
            "mace-torch (e3nn)": partial(mace_torch_step, atoms, dt, device, False),
            "mace-torch (cuequivariance)": partial(mace_torch_step, atoms, dt, device, True),
        }
        if args.compile:
            for name in ("NequIP", "MACE"):
                runs[f"equidyn {name} compiled"] = partial(
                    equidyn_step, name, atoms, dt, device, True, q
                )
        for name, make in runs.items():
            row = attempt(partial(timed_step, make, args, device))
            rows.append({"problem": "md-step", "lib": name, "dtype": dtype, "atoms": len(atoms),
                         **row})  # fmt: skip
            print(format_row(rows[-1]), flush=True)
    return rows


# ----------------------------------------------------------------------------- report
def format_row(r: dict[str, Any]) -> str:
    head = f"{r['problem']:8s} {r.get('dtype', 'float32'):8s} {r['lib']:30s}"
    if "error" in r:
        return f"{head} not run: {r['error']}"
    if r["problem"] == "md-step":
        return f"{head} {r['ms']:10.2f} ms/step  ({r['atoms']} atoms, {r['edges']} edges)"
    return f"{head} fwd {r['fwd_ms']:9.3f} ms  fwd+bwd {r['fwd_bwd_ms']:9.3f} ms  [{r['backend']}]"


def ratios(rows: list[dict[str, Any]]) -> list[str]:
    """'X is r x faster than Y' lines for every measured pair of one problem and dtype."""
    lines = []
    keyed: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in rows:
        if "error" not in r:
            keyed.setdefault((r["problem"], r.get("dtype", "float32")), {})[r["lib"]] = r
    for (problem, dtype), libs in keyed.items():
        metric = ["ms"] if problem == "md-step" else ["fwd_ms", "fwd_bwd_ms"]
        ours = [k for k in libs if k.startswith("equidyn")]
        for a in ours:
            for b in (k for k in libs if not k.startswith("equidyn")):
                parts = [f"{m[:-3]} {libs[b][m] / libs[a][m]:.2f}x" for m in metric]
                lines.append(f"{problem} {dtype}: {a} vs {b}: " + ", ".join(parts))
    return lines


def table(rows: list[dict[str, Any]], settings: str) -> str:
    out = [f"Settings: {settings}", ""]
    out += ["| problem | dtype | library | forward ms | fwd+bwd ms | backend / note |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r["problem"] == "md-step":
            continue
        if "error" in r:
            out.append(f"| {r['problem']} | float32 | {r['lib']} | – | – | not run: {r['error']} |")
        else:
            out.append(f"| {r['problem']} | float32 | {r['lib']} | {r['fwd_ms']:.3f} | "
                       f"{r['fwd_bwd_ms']:.3f} | {r['backend']} |")  # fmt: skip
    out += ["", "| MD step (energy + forces) | dtype | atoms | ms/step | params | note |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        if r["problem"] != "md-step":
            continue
        if "error" in r:
            out.append(
                f"| {r['lib']} | {r['dtype']} | {r['atoms']} | – | – | not run: {r['error']} |"
            )
        else:
            out.append(f"| {r['lib']} | {r['dtype']} | {r['atoms']} | {r['ms']:.2f} | "
                       f"{r['params']} | {r['edges']} edges |")  # fmt: skip
    out += ["", "Ratios (time of the other library / time of equidyn; > 1: equidyn faster):", ""]
    out += [f"- {line}" for line in ratios(rows)]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cuda, cpu")
    p.add_argument(
        "--quick",
        action="store_true",
        help="L=1, 2000 edges, 32 atoms, narrow models, no compile (a smoke test)",
    )
    p.add_argument("--L", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--edges", type=int, default=20000)
    p.add_argument("--repeat", type=int, default=4, help="Cu cell repeats per axis (4: 256 atoms)")
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--warmups", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--skip", nargs="*", default=[], choices=["tp", "models"])
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device not in ("cuda", "cpu") and not args.device.startswith("cuda:"):
        p.error(f"--device must be auto, cuda, cuda:N or cpu, got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda but torch sees no CUDA device (torch.cuda.is_available() is False)")
    device = torch.device(args.device)
    if args.quick:
        args.L, args.edges, args.repeat, args.dtypes = [1], 2000, 2, ["float32"]
        args.warmups, args.repeats = 1, 2
    if args.compile is None:
        args.compile = not args.quick
    torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    settings = (f"device {device} ({name or platform.machine()}), torch {torch.__version__}, "
                f"{args.threads} CPU thread(s), median of {args.repeats} after {args.warmups} "
                f"warm-ups{', quick' if args.quick else ''}")  # fmt: skip
    print(settings, flush=True)
    rows: list[dict[str, Any]] = []
    if "tp" not in args.skip:
        rows += tp_rows(args, device)
    if "models" not in args.skip:
        rows += model_rows(args, device)
    text = table(rows, settings)
    print("\n" + "\n".join(f"  {line}" for line in ratios(rows)))
    default = (
        Path(__file__).resolve().parent
        / "results"
        / "gpu"
        / (device.type + ("_quick" if args.quick else ""))
    )
    out = args.out or default
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=2))
    (out / "table.md").write_text(text)
    print(f"wrote {out / 'results.json'} and {out / 'table.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
