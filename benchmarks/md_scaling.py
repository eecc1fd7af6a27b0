"""MD step time and memory against system size, NequIP and MACE, with a Verlet-skin list.

One MD step is one ASE ``VelocityVerlet`` step (ASE is the MD engine) of an
:class:`~equidyn.calculators.EquidynCalculator` (energy and forces by autograd, float32,
random weights, neighbour list with a skin, :mod:`equidyn.graph.verlet`). Structures: periodic
Cu fcc supercells (a = 3.61 Å, rattled by a Gaussian of 0.05 Å, velocities at 300 K) from
1000 to 100 000 atoms; r_max = 4 Å (18 neighbours per atom: the memory of 10^5 atoms fits the
shared 23 GB machine), skin 1 Å, time step 2 fs.

Every (model, size) point runs in a fresh subprocess: it builds the structure and the model,
makes one call on a 32-atom cell (lazy loading), then the first force call (the neighbour
search at r_max + skin plus the model) and ``--steps`` timed MD steps. It records

- ``ms / step``: median wall time of one MD step, split into the model's time and the
  neighbour-list time of the step (filtering the stored candidates; no search happens in these
  few steps: at 300 K an atom needs tens of steps to move skin/2 = 0.5 Å);
- ``search ms``: one neighbour search at r_max + skin (the cost of a rebuild) and, for
  comparison, one at r_max (what every step would cost without a skin);
- ``step MB``: the peak resident memory during the steps above what the process held before
  them (``VmHWM`` reset through ``/proc/self/clear_refs``), ``peak MB`` the whole process.

A second kind of point, without a model, measures the neighbour-list stage alone: the peak
memory of the search at r_max + skin and of one filtering step of the stored candidates with
and without chunking (``chunk_edges`` 2^20 against all edges at once). Those workers set a fixed
glibc mmap threshold of 128 kB, so every large freed block goes back to the system and the
peak measures the live tensors.

The model workers use the tuned glibc allocator (``MALLOC_MMAP_THRESHOLD_=1000000000000
MALLOC_TRIM_THRESHOLD_=1000000000000 MALLOC_TOP_PAD_=1000000000``, docs/protocols.md §2) for
both models; ``--threads`` (default 1) is set in every subprocess. A model's sweep stops
before a point predicted (linearly in the edges) to take more than ``--max-seconds`` per step
or more than ``--max-mb`` (or 70 % of the memory available), and the whole sweep skips
what is left after ``--max-wall`` seconds.

    python benchmarks/md_scaling.py --quick    # tiny sizes and models, < 60 s
    python benchmarks/md_scaling.py            # the table (benchmarks/results/md_scaling)

Writes ``results.json``, ``table.md`` and ``md_scaling.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from equidyn._io import atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from atom_scaling import TUNED_MALLOC, _available_mb, _machine, run_worker, slope  # noqa: E402

#: supercells of the 4-atom cubic fcc cell: 1000 ... 100 000 atoms
REPEATS = [(5, 5, 10), (5, 10, 10), (10, 10, 10), (10, 10, 20), (10, 20, 20), (20, 20, 20),
           (20, 20, 40), (25, 25, 40)]  # fmt: skip
QUICK_REPEATS = [(2, 2, 2), (3, 3, 3)]
LATTICE = 3.61  # Å, Cu
RATTLE = 0.05  # Å
TEMPERATURE = 300.0  # K
DT_FS = 2.0
R_MAX = 4.0  # Å
MODELS = ("NequIP", "MACE")
#: the neighbour-list-only workers: every block above 128 kB is mmapped and returned on free
NL_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def model_kwargs(name: str, quick: bool, r_max: float) -> dict[str, Any]:
    """Constructor arguments of the benchmarked models (``quick``: tiny ones)."""
    if name == "NequIP":
        width, channels = (8, 4) if quick else (64, 16)
        return {"num_species": 1, "r_max": r_max, "l_max": 1, "parity": True,
                "num_layers": 2, "num_features": channels, "num_basis": 8,
                "radial_hidden": width, "radial_layers": 2,
                "avg_num_neighbors": 18.0}  # fmt: skip
    if name == "MACE":
        channels, width = (4, 8) if quick else (16, 64)
        return {"num_species": 1, "r_max": r_max, "l_max": 2, "correlation": 3,
                "num_layers": 2, "hidden_irreps": f"{channels}x0e+{channels}x1o",
                "radial_mlp": [width, width], "num_basis": 8,
                "avg_num_neighbors": 18.0}  # fmt: skip
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def cu_supercell(reps: tuple[int, int, int], seed: int = 0) -> Any:
    """Rattled Cu fcc ``ase.Atoms`` (4 * prod(reps) atoms) with 300 K velocities."""
    import numpy as np
    from ase.build import bulk
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat(reps)
    atoms.rattle(RATTLE, seed=seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=TEMPERATURE,
                                 rng=np.random.RandomState(seed))  # fmt: skip
    Stationary(atoms)
    return atoms


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) / 1024.0
    return math.nan


def _reset_peak() -> float:
    """Reset the peak resident memory (VmHWM) to the current one; return the current MB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_mb("VmRSS")


def _search_ms(atoms: Any, r_max: float, repeats: int) -> float:
    import numpy as np

    from equidyn.graph.neighbors import neighbor_list

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        neighbor_list(atoms.positions, r_max, np.asarray(atoms.cell), True)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def md_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One (model, size) point (see the module docstring)."""
    import torch

    torch.set_num_threads(spec["threads"])
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from equidyn.calculators import EquidynCalculator
    from equidyn.models import Potential, build_model, set_edge_chunk

    atoms = cu_supercell(tuple(spec["reps"]))
    r_max, skin = spec["r_max"], spec["skin"]
    torch.manual_seed(0)
    model = build_model(spec["model"], spec["kwargs"], kind="potential")
    pot = Potential(model, [29], scale=0.1)
    set_edge_chunk(pot, spec.get("edge_chunk"))
    small = cu_supercell((2, 2, 2))
    small.calc = EquidynCalculator(pot, dtype=torch.float32, skin=skin)
    small.get_forces()  # loads what loads lazily, so that the memory below is the step's
    search_r_max = _search_ms(atoms, r_max, spec["search_repeats"])
    search_skin = _search_ms(atoms, r_max + skin, spec["search_repeats"])
    calc = EquidynCalculator(pot, dtype=torch.float32, skin=skin, chunk_edges=spec["chunk_edges"])
    atoms.calc = calc
    before = _reset_peak()
    t0 = time.perf_counter()
    forces = atoms.get_forces()
    first = time.perf_counter() - t0
    assert forces.shape == (len(atoms), 3) and bool(abs(forces).max() < 1e3)
    nl = calc.neighbors
    edges = int(nl.update(atoms.positions, atoms.cell, True, atoms.numbers)[0].shape[1])
    nl.n_updates -= 1  # (that call was the benchmark's, not the MD's)
    dyn = VelocityVerlet(atoms, DT_FS * units.fs)
    steps, model_s, filter_s = [], [], []
    builds_before = nl.n_builds
    for _ in range(spec["steps"] if first < spec["max_seconds"] else 1):
        m0, f0, t0 = calc.model_seconds, nl.filter_seconds + nl.build_seconds, time.perf_counter()
        dyn.run(1)
        steps.append(time.perf_counter() - t0)
        model_s.append(calc.model_seconds - m0)
        filter_s.append(nl.filter_seconds + nl.build_seconds - f0)
    peak = _status_mb("VmHWM")
    ms = 1e3 * statistics.median(steps)
    return {
        "model": spec["model"],
        "atoms": len(atoms),
        "reps": list(spec["reps"]),
        "edges": edges,
        "candidates": nl.n_candidates,
        "params": sum(p.numel() for p in model.parameters()),
        "first_call_ms": 1e3 * first,
        "ms": ms,
        "steps_ms": [1e3 * t for t in steps],
        "model_ms": 1e3 * statistics.median(model_s),
        "nl_step_ms": 1e3 * statistics.median(filter_s),
        "searches_during_steps": nl.n_builds - builds_before,
        "search_skin_ms": search_skin,
        "search_r_max_ms": search_r_max,
        "us_per_edge": 1e3 * ms / max(edges, 1),
        "step_mb": peak - before,
        "peak_mb": peak,
        "threads": torch.get_num_threads(),
        "load_1min": os.getloadavg()[0],
    }


def nl_worker(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Peak memory and time of the neighbour-list stage alone (no model), for every size of
    ``spec["sizes"]`` in turn (one process: the mmap threshold returns freed blocks)."""
    import numpy as np
    import torch

    torch.set_num_threads(spec["threads"])
    from equidyn.graph.verlet import VerletList

    points = []
    for reps in spec["sizes"]:
        atoms = cu_supercell(tuple(reps))
        cell, pbc = np.asarray(atoms.cell), np.ones(3, dtype=bool)
        moved = atoms.positions + 0.01 * np.random.default_rng(1).standard_normal(
            (len(atoms), 3)
        )  # fmt: skip
        out: dict[str, Any] = {"atoms": len(atoms), "reps": list(reps)}
        for label, chunk in (("chunked", 1 << 20), ("unchunked", None)):
            nl = VerletList(spec["r_max"], spec["skin"], chunk_edges=chunk)
            base = _reset_peak()
            t0 = time.perf_counter()
            index, _ = nl.update(atoms.positions, cell, pbc)
            search_ms = 1e3 * (time.perf_counter() - t0)
            search_mb = _status_mb("VmHWM") - base
            del index
            base = _reset_peak()
            t0 = time.perf_counter()
            index, _ = nl.update(moved, cell, pbc)
            filter_ms = 1e3 * (time.perf_counter() - t0)
            out[label] = {"search_mb": search_mb, "filter_mb": _status_mb("VmHWM") - base,
                          "search_ms": search_ms, "filter_ms": filter_ms}  # fmt: skip
            out.update(edges=int(index.shape[1]), candidates=nl.n_candidates, builds=nl.n_builds)
            del index, nl
        out["load_1min"] = os.getloadavg()[0]
        points.append(out)
    return points


def run_point(spec: dict[str, Any], malloc: dict[str, str]) -> dict[str, Any]:
    point = run_worker(Path(__file__).resolve(), spec, malloc)
    return {"reps": spec["reps"], **point} if "error" in point else point


def table(results: dict[str, Any]) -> str:
    fit = lambda v: f"{v:.2f}" if v is not None else "–"  # noqa: E731
    lines = ["| model | atoms | edges | ms / step | model ms | list ms / step | search ms "
             "(r_max + skin / r_max) | µs / edge | step MB | peak MB | load |",
             "|---|" + "---:|" * 10]  # fmt: skip
    for name in results["models"]:
        for p in results["points"][name]:
            if "error" in p:
                lines.append(f"| {name} | {4 * math.prod(p['reps'])} | error |" + " – |" * 8)
                continue
            lines.append(
                f"| {name} | {p['atoms']} | {p['edges']} | {p['ms']:.0f} | {p['model_ms']:.0f} | "
                f"{p['nl_step_ms']:.1f} | {p['search_skin_ms']:.0f} / {p['search_r_max_ms']:.0f} | "
                f"{p['us_per_edge']:.2f} | {p['step_mb']:.0f} | {p['peak_mb']:.0f} | "
                f"{p['load_1min']:.1f} |"
            )
    lines.append("")
    for name in results["models"]:
        s = results["summary"][name]
        lines.append(
            f"- {name}: {s['params']} parameters; log-log slope against edges (points >= 1000 "
            f"atoms): step time {fit(s['time_slope'])}, model time {fit(s['model_slope'])}, "
            f"step memory {fit(s['memory_slope'])}; {s['stopped'] or 'ran every size'}."
        )
    nl = [p for p in results["neighbor_list"] if "error" not in p]
    if nl:
        lines += ["", "Neighbour-list stage alone (skin list, no model; peak MB above the "
                  "process before it):", "",
                  "| atoms | edges | candidates | search ms | search MB | filter ms "
                  "(chunked / not) | filter MB (chunked / not) |",
                  "|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for p in nl:
            c, u = p["chunked"], p["unchunked"]
            lines.append(
                f"| {p['atoms']} | {p['edges']} | {p['candidates']} | {c['search_ms']:.0f} | "
                f"{c['search_mb']:.0f} | {c['filter_ms']:.0f} / {u['filter_ms']:.0f} | "
                f"{c['filter_mb']:.0f} / {u['filter_mb']:.0f} |"
            )
        lines.append("")
        slopes = results["nl_slopes"]
        lines.append(f"- list slopes against edges: search time {fit(slopes['search'])}, "
                     f"filter time {fit(slopes['filter'])}.")  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.4))
    colors = {"NequIP": "tab:orange", "MACE": "tab:green"}
    for name in results["models"]:
        pts = [p for p in results["points"][name] if "error" not in p]
        if not pts:
            continue
        edges, c = [p["edges"] for p in pts], colors.get(name)
        axes[0].loglog(edges, [p["ms"] for p in pts], "o-", color=c, label=f"{name}: MD step")
        axes[1].loglog(edges, [p["step_mb"] for p in pts], "o-", color=c, label=name)
        for ax, key in ((axes[0], "ms"), (axes[1], "step_mb")):
            ref = pts[-1]
            if ref[key] > 0:
                ax.loglog(edges, [ref[key] * e / ref["edges"] for e in edges], ":", color=c,
                          alpha=0.6, label=f"∝ edges (through {name}'s largest)")  # fmt: skip
    first = next((results["points"][m] for m in results["models"] if results["points"][m]), [])
    pts = [p for p in first if "error" not in p]
    if pts:
        e = [p["edges"] for p in pts]
        axes[0].loglog(e, [p["search_r_max_ms"] for p in pts], "s--", color="gray",
                       label="neighbour search at r_max (every step without skin)")  # fmt: skip
        axes[0].loglog(e, [max(p["nl_step_ms"], 1e-3) for p in pts], "v--", color="black",
                       label="skin list: filter per step")  # fmt: skip
    nl = [p for p in results["neighbor_list"] if "error" not in p]
    if nl:
        e = [p["edges"] for p in nl]
        for label, style in (("chunked", "v-"), ("unchunked", "^--")):
            axes[1].loglog(e, [max(p[label]["filter_mb"], 0.1) for p in nl], style,
                           color="gray", label=f"list filter step, {label}")  # fmt: skip
    s = results["settings"]
    axes[0].set(xlabel="edges (within r_max)", ylabel="ms",
                title=f"time per MD step, {s['threads']} thread(s)")  # fmt: skip
    axes[1].set(xlabel="edges (within r_max)", ylabel="MB above the process before the steps",
                title="peak memory of the MD steps")  # fmt: skip
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Cu fcc, r_max {s['r_max']} Å, skin {s['skin']} Å, float32, random weights, "
                 "tuned glibc allocator; machine shared (see load)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes and models (< 60 s)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=3, help="timed MD steps per point (median)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--r-max", type=float, default=R_MAX)
    p.add_argument("--skin", type=float, default=1.0)
    p.add_argument("--max-atoms", type=int, default=None, help="skip larger supercells")
    p.add_argument("--max-seconds", type=float, default=90.0, help="per MD step")
    p.add_argument("--max-mb", type=float, default=14000.0)
    p.add_argument("--max-wall", type=float, default=1800.0, help="of the whole sweep (s)")
    p.add_argument("--no-list-stage", action="store_true", help="skip the list-only points")
    p.add_argument(
        "--edge-chunk",
        type=int,
        default=None,
        help="edges per chunk of the models' convolutions (models.set_edge_chunk)",
    )
    p.add_argument("--out", default=None, help="default benchmarks/results/md_scaling[_quick]")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        spec = json.loads(args.worker)
        result: Any = md_worker(spec) if spec["kind"] == "md" else nl_worker(spec)
        print(json.dumps(result))
        return 0
    if args.threads < 1 or args.steps < 1:
        p.error("--threads and --steps must be >= 1")
    if not (args.r_max > 0 and args.skin >= 0):
        p.error(f"--r-max must be > 0 and --skin >= 0, got {args.r_max} and {args.skin}")
    default = Path(__file__).resolve().parent / "results" / "md_scaling"
    out = Path(args.out) if args.out else default.with_name(
        "md_scaling_quick" if args.quick else "md_scaling"
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    sizes = QUICK_REPEATS if args.quick else REPEATS
    if args.max_atoms is not None:
        sizes = [r for r in sizes if 4 * math.prod(r) <= args.max_atoms]
    started = time.time()
    results: dict[str, Any] = {
        "settings": {"threads": args.threads, "steps": args.steps, "quick": args.quick,
                     "lattice": LATTICE, "rattle": RATTLE, "temperature_K": TEMPERATURE,
                     "dt_fs": DT_FS, "r_max": args.r_max, "skin": args.skin,
                     "edge_chunk": args.edge_chunk,
                     "dtype": "float32", "max_seconds": args.max_seconds,
                     "max_mb": args.max_mb, "max_wall": args.max_wall,
                     "malloc_models": TUNED_MALLOC, "malloc_list_stage": NL_MALLOC,
                     "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])},
        "machine": _machine(),
        "models": list(args.models),
        "kwargs": {m: model_kwargs(m, args.quick, args.r_max) for m in args.models},
        "points": {m: [] for m in args.models},
        "summary": {},
        "neighbor_list": [],
    }  # fmt: skip

    def save() -> None:
        atomic_write_text(json.dumps(results, indent=1), out / "results.json")

    def over_wall() -> bool:
        return time.time() - started > args.max_wall

    for name in args.models:
        stopped, last = "", None
        for reps in sizes:
            atoms = 4 * math.prod(reps)
            if over_wall():
                stopped = f"skipped from {atoms} atoms: sweep over --max-wall {args.max_wall:.0f} s"
                break
            if last is not None:
                grow = atoms / last["atoms"]  # edges grow like atoms in a crystal
                predicted_s, predicted_mb = last["ms"] / 1e3 * grow, last["peak_mb"] * grow
                limit_mb = min(args.max_mb, 0.7 * _available_mb() + last["peak_mb"])
                if predicted_s > args.max_seconds or predicted_mb > limit_mb:
                    stopped = (f"stopped before {atoms} atoms: predicted {predicted_s:.0f} s per "
                               f"step, {predicted_mb:.0f} MB (limits {args.max_seconds:.0f} s, "
                               f"{limit_mb:.0f} MB)")  # fmt: skip
                    break
            spec = {"kind": "md", "model": name, "kwargs": results["kwargs"][name],
                    "reps": list(reps), "threads": args.threads, "r_max": args.r_max,
                    "skin": args.skin, "steps": 2 if args.quick else args.steps,
                    "search_repeats": 1 if args.quick or atoms > 20000 else 3,
                    "chunk_edges": 1 << 20, "max_seconds": args.max_seconds,
                    "edge_chunk": args.edge_chunk}  # fmt: skip
            point = run_point(spec, TUNED_MALLOC)
            point.setdefault("model", name)
            results["points"][name].append(point)
            save()
            if "error" in point:
                stopped = f"failed at {atoms} atoms"
                print(f"{name:7s} {atoms:7d} atoms: ERROR {point['error'][-400:]}", flush=True)
                break
            print(f"{name:7s} {atoms:7d} atoms {point['edges']:8d} edges: {point['ms']:9.1f} ms "
                  f"per step (model {point['model_ms']:.1f}, list {point['nl_step_ms']:.1f}), "
                  f"search {point['search_skin_ms']:.0f} / {point['search_r_max_ms']:.0f} ms, "
                  f"step {point['step_mb']:7.0f} MB, peak {point['peak_mb']:7.0f} MB, load "
                  f"{point['load_1min']:.1f}", flush=True)  # fmt: skip
            last = point
        good = [q for q in results["points"][name] if "error" not in q]
        fit = [q for q in good if q["atoms"] >= 1000] or good
        results["summary"][name] = {
            "params": good[0]["params"] if good else None,
            "time_slope": slope(fit, "ms"),
            "model_slope": slope(fit, "model_ms"),
            "memory_slope": slope(fit, "step_mb"),
            "stopped": stopped,
        }
        save()
    if not args.no_list_stage and not over_wall():
        spec = {"kind": "nl", "sizes": [list(r) for r in sizes], "threads": args.threads,
                "r_max": args.r_max, "skin": args.skin}  # fmt: skip
        stage = run_worker(Path(__file__).resolve(), spec, NL_MALLOC)
        if isinstance(stage, dict):  # {"error": ...}
            results["neighbor_list"] = [{"reps": [0, 0, 0], **stage}]
            print(f"list stage: ERROR {stage['error'][-400:]}")
        else:
            results["neighbor_list"] = stage
        save()
        for point in results["neighbor_list"]:
            if "error" in point:
                continue
            c, u = point["chunked"], point["unchunked"]
            print(f"list    {point['atoms']:7d} atoms {point['candidates']:8d} candidates: search "
                  f"{c['search_ms']:.0f} ms {c['search_mb']:.0f} MB; filter {c['filter_ms']:.0f} "
                  f"/ {u['filter_ms']:.0f} ms, {c['filter_mb']:.0f} / {u['filter_mb']:.0f} MB "
                  "(chunked / not)", flush=True)  # fmt: skip
    good_nl = [q for q in results["neighbor_list"] if "error" not in q]
    flat = [{"edges": q["edges"], "search": q["chunked"]["search_ms"],
             "filter": q["chunked"]["filter_ms"]}
            for q in good_nl if q["atoms"] >= 1000]  # fmt: skip
    results["nl_slopes"] = {k: slope(flat, k) for k in ("search", "filter")}
    results["settings"]["wall_s"] = round(time.time() - started, 1)
    results["machine"]["load_average_end"] = list(os.getloadavg())
    save()
    text = table(results)
    atomic_write_text(text, out / "table.md")
    plot(results, out / "md_scaling.png")
    print(text)
    print(f"wrote {out}/results.json, table.md, md_scaling.png")
    errors = [q for pts in results["points"].values() for q in pts if "error" in q]
    return 0 if not errors and all("error" not in q for q in results["neighbor_list"]) else 1


if __name__ == "__main__":
    sys.exit(main())
