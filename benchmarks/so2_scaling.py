"""Scaling in L of the edge convolution: SO(2) convolution vs channelwise tensor product vs e3nn.

Problem ``conv-L`` of docs/protocols.md §1 for L = 1 ... 8: features
``32x0e+32x1o+32x2e+...`` up to L, every output l3 <= L of natural parity, one weight per
coefficient, channel and edge, E edges (``--edges``, default 2000), float32. All methods start
from the edge vectors, so each includes its own geometry:

* ``e3nn TP``: ``e3nn.o3.spherical_harmonics`` + e3nn's ``TensorProduct`` (the same uvu paths);
* ``equidyn TP``: ``o3.spherical_harmonics`` + ``o3.ChannelwiseTensorProduct``;
* ``SO(2) exact``: ``o3.SO2Convolution`` with m_max = L (Wigner D of the edge frames, rotation
  in, per-m maps, rotation out; equal to the product summed over l2, see ``equidyn.o3.so2``);
* ``SO(2) m_max=2``: the same truncated at m_max = 2 (eSCN's choice; exactly equivariant, not
  equal to the full product).

Forward+backward (gradients of features, vectors and weights) and forward, median of
``--repeats`` after a warm-up, ``torch.set_num_threads(--threads)``; peak live tensor memory
of one forward+backward from ``torch.profiler`` (``tensor_product.peak_memory_mib``). A method
whose warm-up forward+backward takes longer than ``--cap`` seconds is not run at larger L.
Methods are interleaved per L in one process, default glibc allocator unless ``MALLOC_*`` is
set (printed).

    python benchmarks/so2_scaling.py --quick
    python benchmarks/so2_scaling.py --out benchmarks/results/so2_scaling
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from tensor_product import peak_memory_mib, timer  # benchmarks/tensor_product.py

METHODS = ("e3nn TP", "equidyn TP", "SO(2) exact", "SO(2) m_max=2")


def problem(L: int, n: int, method: str) -> tuple[Callable[..., torch.Tensor], list[torch.Tensor]]:
    """The convolution of ``method`` as ``fn(x, vec, w)`` and its inputs."""
    from equidyn import o3

    irreps = o3.Irreps([(32, (l, (-1) ** l)) for l in range(L + 1)])
    sh = o3.Irreps.spherical_harmonics(L)
    filt = [o3.Irrep((l, (-1) ** l)) for l in range(L + 1)]
    g = torch.Generator().manual_seed(L)
    x = torch.randn(n, irreps.dim, generator=g)
    vec = torch.randn(n, 3, generator=g)
    if method.startswith("SO(2)"):
        conv = o3.SO2Convolution(irreps, filt, m_max=L if method == "SO(2) exact" else min(2, L))
        w = torch.randn(n, conv.weight_numel, generator=g)
        return (lambda x, vec, w: conv(x, vec, w)), [x, vec, w]
    tp = o3.ChannelwiseTensorProduct(irreps, sh, filt)
    w = torch.randn(n, tp.weight_numel, generator=g)
    if method == "equidyn TP":

        def ours(x: torch.Tensor, vec: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
            Y = o3.spherical_harmonics(sh, vec, normalize=True, normalization="component")
            return tp(x, Y, w)

        return ours, [x, vec, w]
    import e3nn.o3 as eo

    ref = eo.TensorProduct(
        str(irreps),
        str(sh),
        str(tp.irreps_out),
        [(p.in1, p.in2, p.out, p.mode, p.weighted) for p in tp.paths],
        shared_weights=False,
        internal_weights=False,
    )

    def theirs(x: torch.Tensor, vec: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        Y = eo.spherical_harmonics(str(sh), vec, normalize=True, normalization="component")
        return ref(x, Y, w)

    return theirs, [x, vec, w]


def measure(L: int, n: int, method: str, repeats: int, memory: bool) -> dict:
    fn, inputs = problem(L, n, method)
    leaves = [t.clone().requires_grad_(True) for t in inputs]

    def fwd() -> None:
        with torch.no_grad():
            fn(*inputs)

    def fwd_bwd() -> None:
        out = fn(*leaves)
        out.backward(torch.ones_like(out))
        for t in leaves:
            t.grad = None

    warm = timer(fwd_bwd)
    row = {"L": L, "method": method, "edges": n, "warmup_fwd_bwd_s": warm}
    row["fwd_bwd_ms"] = 1e3 * statistics.median(timer(fwd_bwd) for _ in range(repeats))
    fwd()
    row["fwd_ms"] = 1e3 * statistics.median(timer(fwd) for _ in range(repeats))
    if memory:
        row["peak_mib"] = peak_memory_mib(fwd_bwd)
    return row


def write_outputs(rows: list[dict], out: Path, settings: dict) -> str:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))
    Ls = sorted({r["L"] for r in rows})
    get = {(r["L"], r["method"]): r for r in rows}
    lines = [
        "| L | " + " | ".join(f"{m} fwd+bwd ms (MiB)" for m in METHODS) + " | TP / SO(2) exact |",
        "|---|" + "---:|" * (len(METHODS) + 1),
    ]
    for L in Ls:
        cells = []
        for m in METHODS:
            r = get.get((L, m))
            if r is None:
                cells.append("–")
            else:
                mem = f" ({r['peak_mib']:.0f})" if "peak_mib" in r else ""
                cells.append(f"{r['fwd_bwd_ms']:.1f}{mem}")
        tp, so2 = get.get((L, "equidyn TP")), get.get((L, "SO(2) exact"))
        ratio = f"{tp['fwd_bwd_ms'] / so2['fwd_bwd_ms']:.2f}" if tp and so2 else "–"
        lines.append(f"| {L} | " + " | ".join(cells) + f" | {ratio} |")
    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return table
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for m in METHODS:
        pts = [get[(L, m)] for L in Ls if (L, m) in get]
        if not pts:
            continue
        axes[0].plot([p["L"] for p in pts], [p["fwd_bwd_ms"] for p in pts], "o-", label=m)
        if all("peak_mib" in p for p in pts):
            axes[1].plot([p["L"] for p in pts], [p["peak_mib"] for p in pts], "o-", label=m)
    for ax, what in zip(axes, ("forward+backward (ms)", "peak memory (MiB)")):
        ax.set_yscale("log")
        ax.set_xlabel("L")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(
        f"conv-L, 32 channels, {settings['edges']} edges, float32, {settings['threads']} thread(s)"
    )
    fig.tight_layout()
    fig.savefig(out / "so2_scaling.png", dpi=120)
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="L = 1, 2 on 200 edges (seconds)")
    ap.add_argument("--l-max", type=int, default=8)
    ap.add_argument("--edges", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cap", type=float, default=30.0, help="seconds per call before giving up")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default=None, help="results directory (default: none written)")
    args = ap.parse_args()
    if args.quick:
        args.l_max, args.edges, args.repeats = 2, 200, 2
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown --methods {sorted(unknown)}; choose from {list(METHODS)}")
    try:
        import e3nn  # noqa: F401
    except ImportError:
        print("e3nn TP: not run (e3nn is not installed: pip install e3nn)")
        methods = [m for m in methods if m != "e3nn TP"]
    malloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    settings = {"edges": args.edges, "threads": args.threads, "repeats": args.repeats,
                "cap_s": args.cap, "malloc": malloc or "default glibc",
                "torch": torch.__version__}  # fmt: skip
    print(f"conv-L, {args.edges} edges, threads {args.threads}, allocator {settings['malloc']}")
    rows: list[dict] = []
    stopped: set[str] = set()
    for L in range(1, args.l_max + 1):
        for m in methods:
            if m in stopped:
                continue
            row = measure(L, args.edges, m, args.repeats, not args.no_memory)
            rows.append(row)
            mem = f", peak {row['peak_mib']:.0f} MiB" if "peak_mib" in row else ""
            print(f"L={L} {m:<14} fwd {row['fwd_ms']:9.2f} ms  fwd+bwd {row['fwd_bwd_ms']:9.2f} ms"
                  f"{mem}", flush=True)  # fmt: skip
            if row["warmup_fwd_bwd_s"] > args.cap:
                stopped.add(m)
                print(f"  {m}: over {args.cap} s per call, not run at larger L")
    crossover = next(
        (
            L
            for L in sorted({r["L"] for r in rows})
            if any(r["L"] == L and r["method"] == "SO(2) exact" for r in rows)
            and any(r["L"] == L and r["method"] == "equidyn TP" for r in rows)
            and [r for r in rows if r["L"] == L and r["method"] == "SO(2) exact"][0]["fwd_bwd_ms"]
            < [r for r in rows if r["L"] == L and r["method"] == "equidyn TP"][0]["fwd_bwd_ms"]
        ),
        None,
    )
    settings["crossover_L_so2_exact_beats_equidyn_tp"] = crossover
    print(f"SO(2) exact is faster than equidyn's TP from L = {crossover}")
    if args.out:
        print(write_outputs(rows, Path(args.out), settings))


if __name__ == "__main__":
    main()
