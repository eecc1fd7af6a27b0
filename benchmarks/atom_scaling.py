"""Time and memory of one MD step against system size: Allegro against NequIP.

One step's cost is one :class:`~equidyn.models.Potential` call (energy and forces by
autograd, float32, random weights, ``eval`` mode); the neighbour list (``radius_graph`` of
:mod:`equidyn.graph`, vesin when installed) is timed separately. Structures: periodic Cu fcc
supercells (a = 3.61 Å, every atom rattled by a Gaussian of 0.05 Å), r_max = 4.0 Å (the first
two shells: about 18 neighbours per atom), from 500 atoms up to 128 000 (supercells of the
4-atom cubic cell, 5x5x5 to 20x40x40).

Every (model, size) point runs in a fresh subprocess: after building the structure, its
neighbour list and the model, the process records its peak resident memory
(``ru_maxrss``; after one call on a 32-atom cell, which loads what loads lazily), makes one
warm-up call and ``--repeats`` timed calls (median; one call when
the warm-up took more than 20 s) and records the peak again: ``call MB`` is the increase
(the memory one step needs), ``peak MB`` the whole process; ``load`` is the machine's 1-minute
load average at the end of the point (other jobs share the cores). A model's sweep stops after a
point whose call took more than ``--max-seconds`` (60) or whose peak exceeded ``--max-mb``
(12 000), and before a point predicted (linearly in the edges from the last one) to exceed
either or the memory available on the machine.

Models (small and comparable, both 2 layers, l_max 1, O(3) features, 16 channels, radial /
latent MLPs of width 64, 8 Bessel functions, avg_num_neighbors 18): ``Allegro`` (strictly
local, features on edges) and equidyn's ``NequIP`` (message passing, features on atoms).

    python benchmarks/atom_scaling.py --quick      # tiny sizes and models, < 30 s
    python benchmarks/atom_scaling.py --threads 1  # the table (benchmarks/results/atom_scaling)

Writes ``results.json``, ``table.md`` and ``atom_scaling.png`` (time per step and memory vs
atoms, log-log, with a reference line linear in the number of edges) to ``--out``. Threads:
``--threads`` (default 2, set in every subprocess). Allocator: ``--allocator default`` (no
MALLOC_* variable: glibc returns every large block to the system, and each new tensor above
its mmap threshold page-faults, which makes big systems slower per edge) or ``tuned`` (the
settings of docs/protocols.md §2; its peak memory is higher, freed memory being kept).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: supercells of the 4-atom cubic fcc cell: 500, 1000, ..., 128 000 atoms
REPEATS = [(5, 5, 5), (5, 5, 10), (5, 10, 10), (10, 10, 10), (10, 10, 20), (10, 20, 20),
           (20, 20, 20), (20, 20, 40), (20, 40, 40)]  # fmt: skip
QUICK_REPEATS = [(2, 2, 2), (3, 3, 3)]
LATTICE = 3.61  # Å, Cu
RATTLE = 0.05  # Å
R_MAX = 4.0  # Å
MODELS = ("Allegro", "NequIP")
#: the tuned glibc allocator of docs/protocols.md §2 (no large block returned to the system,
#: so no page faults on every new tensor); ``--allocator default`` sets no MALLOC_* variable
TUNED_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": "1000000000000",
    "MALLOC_TRIM_THRESHOLD_": "1000000000000",
    "MALLOC_TOP_PAD_": "1000000000",
}


def model_kwargs(name: str, quick: bool) -> dict[str, Any]:
    """Constructor arguments of the benchmarked models (``quick``: tiny ones)."""
    width, channels = (8, 4) if quick else (64, 16)
    common = {"num_species": 1, "r_max": R_MAX, "l_max": 1, "parity": True, "num_layers": 2,
              "num_basis": 8, "avg_num_neighbors": 18.0}  # fmt: skip
    if name == "Allegro":
        return {**common, "num_tensor_features": channels, "latent_dim": width,
                "two_body_hidden": [width, width], "latent_hidden": [width],
                "edge_energy_hidden": [width // 2]}  # fmt: skip
    if name == "NequIP":
        return {**common, "num_features": channels, "radial_hidden": width, "radial_layers": 2}
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def fcc_supercell(reps: tuple[int, int, int], seed: int = 0) -> tuple[Any, Any]:
    """Rattled Cu fcc positions ``[4 * prod(reps), 3]`` (float32) and the cubic cell."""
    import torch

    frac = torch.tensor([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
                        dtype=torch.float64)  # fmt: skip
    grid = torch.cartesian_prod(*[torch.arange(k, dtype=torch.float64) for k in reps])
    pos = ((grid[:, None, :] + frac[None]) * LATTICE).reshape(-1, 3)
    gen = torch.Generator().manual_seed(seed)
    pos = pos + RATTLE * torch.randn(pos.shape, generator=gen, dtype=torch.float64)
    cell = torch.diag(torch.tensor(reps, dtype=torch.float64) * LATTICE)
    return pos.to(torch.float32), cell.to(torch.float32)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One (model, size) point, in its own process (see the module docstring)."""
    import torch

    torch.set_num_threads(spec["threads"])
    from equidyn.graph.batch import radius_graph
    from equidyn.models import Potential, build_model

    reps = tuple(spec["reps"])
    pos, cell = fcc_supercell(reps)
    numbers = [29] * pos.shape[0]
    nl_times = []
    for _ in range(spec["nl_repeats"]):
        t0 = time.perf_counter()
        graph = radius_graph(pos, numbers, R_MAX, cell, True)
        nl_times.append(time.perf_counter() - t0)
    torch.manual_seed(0)
    model = build_model(spec["model"], spec["kwargs"], kind="potential")
    pot = Potential(model, [29]).to(torch.float32).eval()
    # a first call on a tiny cell loads what is loaded lazily (kernels, workspaces), so that
    # the memory recorded next is that of the big call
    small_pos, small_cell = fcc_supercell((2, 2, 2))
    pot(radius_graph(small_pos, [29] * small_pos.shape[0], R_MAX, small_cell, True))
    before = _maxrss_mb()
    t0 = time.perf_counter()
    out = pot(graph)
    float(out["forces"].abs().sum())
    first = time.perf_counter() - t0
    assert bool(torch.isfinite(out["forces"]).all()) and out["forces"].shape == pos.shape
    del out
    times = []
    for _ in range(spec["repeats"] if first < 20.0 else 0):
        t0 = time.perf_counter()
        out = pot(graph)
        float(out["forces"].abs().sum())
        times.append(time.perf_counter() - t0)
        del out
    peak = _maxrss_mb()
    ms = 1e3 * statistics.median(times) if times else 1e3 * first
    return {
        "model": spec["model"],
        "atoms": int(pos.shape[0]),
        "reps": list(reps),
        "edges": int(graph.num_edges),
        "params": sum(p.numel() for p in model.parameters()),
        "nl_ms": 1e3 * statistics.median(nl_times),
        "first_call_ms": 1e3 * first,
        "ms": ms,
        "times_ms": [1e3 * t for t in times],
        "us_per_edge": 1e3 * ms / max(graph.num_edges, 1),
        "call_mb": peak - before,
        "peak_mb": peak,
        "threads": torch.get_num_threads(),
        "load_1min": os.getloadavg()[0],  # of the whole machine, at the end of the point
    }


def _available_mb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return math.inf


def _machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform(),
            "load_average": list(os.getloadavg())}  # fmt: skip


def allocator_env(allocator: str) -> dict[str, str]:
    """The MALLOC_* variables of ``allocator``: none (``default``) or :data:`TUNED_MALLOC`."""
    return dict(TUNED_MALLOC) if allocator == "tuned" else {}


def worker_env(threads: int, malloc: dict[str, str]) -> dict[str, str]:
    """The environment of a worker: the thread count and exactly the MALLOC_* given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **malloc)
    return env


def run_worker(script: Path, spec: dict[str, Any], malloc: dict[str, str]) -> Any:
    """``script --worker SPEC`` in a fresh process (``spec["threads"]`` threads, the MALLOC_*
    of ``malloc``): the JSON of its last line of output, or ``{"error": ...}`` if it failed."""
    proc = subprocess.run(
        [sys.executable, str(script), "--worker", json.dumps(spec)],
        capture_output=True, text=True, env=worker_env(spec["threads"], malloc),
    )  # fmt: skip
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout)[-1500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_point(spec: dict[str, Any], allocator: str) -> dict[str, Any]:
    point = run_worker(Path(__file__).resolve(), spec, allocator_env(allocator))
    if "error" in point:
        point = {"model": spec["model"], "reps": spec["reps"], **point}
    return point


def slope(points: list[dict[str, Any]], key: str) -> float | None:
    """Least-squares slope of log(key) against log(edges) (1 = linear in the edges)."""
    pts = [(math.log(p["edges"]), math.log(p[key])) for p in points if p.get(key, 0) > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx > 0 else None


def table(results: dict[str, Any]) -> str:
    head = "| model | atoms | edges | neighbour list (ms) | ms / call | µs / edge | call MB | "
    lines = [head + "peak MB | load |", "|---|" + "---:|" * 8]
    for name in results["models"]:
        for p in results["points"][name]:
            if "error" in p:
                atoms = 4 * math.prod(p["reps"])
                lines.append(f"| {name} | {atoms} | – | – | error | – | – | – | – |")
                continue
            lines.append(
                f"| {name} | {p['atoms']} | {p['edges']} | {p['nl_ms']:.0f} | {p['ms']:.0f} | "
                f"{p['us_per_edge']:.2f} | {p['call_mb']:.0f} | {p['peak_mb']:.0f} | "
                f"{p['load_1min']:.1f} |"
            )
    lines.append("")
    for name in results["models"]:
        s = results["summary"][name]
        stop = s["stopped"] or "ran every size"
        fit = lambda v: f"{v:.2f}" if v is not None else "–"  # noqa: E731
        lines.append(
            f"- {name}: {s['params']} parameters; log-log slope against edges: time "
            f"{fit(s['time_slope'])}, call memory {fit(s['memory_slope'])} (points >= 1000 "
            f"atoms); {stop}."
        )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"Allegro": "tab:blue", "NequIP": "tab:orange"}
    for name in results["models"]:
        pts = [p for p in results["points"][name] if "error" not in p]
        if not pts:
            continue
        atoms = [p["atoms"] for p in pts]
        c = colors.get(name, None)
        axes[0].loglog(atoms, [p["ms"] for p in pts], "o-", color=c, label=f"{name} (E + F)")
        axes[1].loglog(atoms, [p["call_mb"] for p in pts], "o-", color=c, label=name)
        for ax, key in ((axes[0], "ms"), (axes[1], "call_mb")):
            ref = pts[-1]
            if ref[key] > 0:
                line = [ref[key] * p["edges"] / ref["edges"] for p in pts]
                ax.loglog(atoms, line, ":", color=c, alpha=0.6,
                          label=f"∝ edges (through {name}'s largest point)")  # fmt: skip
    nl = [p for p in results["points"][results["models"][0]] if "error" not in p]
    if nl:
        axes[0].loglog([p["atoms"] for p in nl], [p["nl_ms"] for p in nl], "s--", color="gray",
                       label="neighbour list")  # fmt: skip
    axes[0].set(xlabel="atoms", ylabel="ms per call (energy + forces)",
                title=f"time per MD step, {results['settings']['threads']} thread(s)")  # fmt: skip
    axes[1].set(xlabel="atoms", ylabel="peak memory of one call (MB)", title="memory per step")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Cu fcc, r_max 4 Å, float32, random weights, "
                 f"{results['settings']['allocator']} glibc allocator")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes and models (< 30 s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--allocator", default="default", choices=["default", "tuned"],
                   help="glibc settings of the workers (tuned: docs/protocols.md §2)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=3, help="timed calls per point (median)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--max-atoms", type=int, default=None, help="skip larger supercells")
    p.add_argument("--max-seconds", type=float, default=60.0)
    p.add_argument("--max-mb", type=float, default=12000.0)
    p.add_argument("--out", default=None, help="default benchmarks/results/atom_scaling[_quick]")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.threads < 1 or args.repeats < 1:
        p.error("--threads and --repeats must be >= 1")
    default_out = Path(__file__).resolve().parent / "results" / "atom_scaling"
    out = Path(args.out) if args.out else default_out.with_name(
        "atom_scaling_quick" if args.quick else "atom_scaling"
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    sizes = QUICK_REPEATS if args.quick else REPEATS
    if args.max_atoms is not None:
        sizes = [r for r in sizes if 4 * math.prod(r) <= args.max_atoms]
    started = time.time()
    results: dict[str, Any] = {
        "settings": {"threads": args.threads, "repeats": args.repeats, "quick": args.quick,
                     "lattice": LATTICE, "rattle": RATTLE, "r_max": R_MAX, "dtype": "float32",
                     "max_seconds": args.max_seconds, "max_mb": args.max_mb,
                     "allocator": args.allocator,
                     "malloc_env": allocator_env(args.allocator),
                     "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])},
        "machine": _machine(),
        "models": list(args.models),
        "kwargs": {m: model_kwargs(m, args.quick) for m in args.models},
        "points": {m: [] for m in args.models},
        "summary": {},
    }  # fmt: skip
    for name in args.models:
        stopped = ""
        last: dict[str, Any] | None = None
        for reps in sizes:
            atoms = 4 * math.prod(reps)
            if last is not None:
                grow = atoms / last["atoms"]  # edges grow like atoms in a periodic crystal
                predicted_s = last["ms"] / 1e3 * grow
                predicted_mb = last["peak_mb"] * grow
                limit_mb = min(args.max_mb, 0.8 * _available_mb())
                if predicted_s > args.max_seconds or predicted_mb > limit_mb:
                    stopped = (f"stopped before {atoms} atoms: predicted {predicted_s:.0f} s, "
                               f"{predicted_mb:.0f} MB (limits {args.max_seconds:.0f} s, "
                               f"{limit_mb:.0f} MB)")  # fmt: skip
                    break
            spec = {"model": name, "kwargs": results["kwargs"][name], "reps": list(reps),
                    "threads": args.threads, "repeats": 1 if args.quick else args.repeats,
                    "nl_repeats": 1 if args.quick else 3}  # fmt: skip
            point = run_point(spec, args.allocator)
            results["points"][name].append(point)
            if "error" in point:
                stopped = f"failed at {atoms} atoms"
                print(f"{name:8s} {atoms:7d} atoms: ERROR {point['error'][-300:]}", flush=True)
                break
            print(f"{name:8s} {atoms:7d} atoms {point['edges']:8d} edges: "
                  f"{point['ms']:9.1f} ms ({point['us_per_edge']:.2f} µs/edge), call "
                  f"{point['call_mb']:7.0f} MB, peak {point['peak_mb']:7.0f} MB, NL "
                  f"{point['nl_ms']:.0f} ms", flush=True)  # fmt: skip
            last = point
            if point["ms"] / 1e3 > args.max_seconds or point["peak_mb"] > args.max_mb:
                stopped = f"stopped after {atoms} atoms (over the limits)"
                break
        good = [q for q in results["points"][name] if "error" not in q]
        fit = [q for q in good if q["atoms"] >= 1000] or good
        results["summary"][name] = {
            "params": good[0]["params"] if good else None,
            "time_slope": slope(fit, "ms"),
            "memory_slope": slope(fit, "call_mb"),
            "stopped": stopped,
        }
        (out / "results.json").write_text(json.dumps(results, indent=1))
    results["settings"]["wall_s"] = round(time.time() - started, 1)
    results["machine"]["load_average_end"] = list(os.getloadavg())
    (out / "results.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    (out / "table.md").write_text(text)
    plot(results, out / "atom_scaling.png")
    print(text)
    print(f"wrote {out}/results.json, table.md, atom_scaling.png")
    return 0 if all("error" not in q for pts in results["points"].values() for q in pts) else 1


if __name__ == "__main__":
    sys.exit(main())
