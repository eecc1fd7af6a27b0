"""Tensor product speed: equidyn vs e3nn 0.6, side by side in one process.

Problems (docs/protocols.md §1):

* ``conv-L`` (L = 1, 2, 3): in1 = ``32x0e+32x1o+32x2e+32x3o`` truncated at L, in2 = spherical
  harmonics 0..L, every path l1 x l2 -> l3 with l3 <= L and p3 = (-1)^l3 (mode ``uvu``), one
  weight per path and channel and edge, E = 20 000 edges, float32;
* ``fctp``: ``FullyConnectedTensorProduct`` on ``32x0e+32x1o+32x2e`` (both inputs and output),
  N = 2000, internal weights.

For each: forward and forward+backward (gradients of all inputs and weights), eager and
``torch.compile(fullgraph=True)``, ``torch.set_num_threads(2)`` (``--threads``); e3nn and
equidyn interleaved, median of ``--repeats``. GFLOP/s are counted on the sparse Clebsch-Gordan
non-zeros (2 * rows * channel pairs * nnz per path, plus the dense weight contraction 2 * N * U
* V * W * (2l3+1) for uvw); forward+backward counts 3x the forward FLOPs. "of mm" is that rate
divided by a plain fp32 2048 x 2048 matmul's rate measured in the same run. Peak memory of one
forward+backward (after warm-up) is the peak of live tensor memory seen by
``torch.profiler(profile_memory=True)`` (see ``peak_memory_mib``).

Run: ``python benchmarks/tensor_product.py [--quick] [--json rows.json] [--plot speed.png]``
(``--plot``: time and speed-up of the convolutions against L, eager, both libraries).
Allocator settings matter (docs/protocols.md §2); the script prints the ``MALLOC_*`` variables
in effect.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable

import torch

warnings.filterwarnings("ignore")


def conv_problem(L: int, n: int, lib: str) -> tuple[torch.nn.Module, list[torch.Tensor], float]:
    """The conv-L ChannelwiseTensorProduct of docs/protocols.md §1 (same paths and output order
    for both libs)."""
    from equidyn import o3

    irreps1 = o3.Irreps([(32, (l, (-1) ** l)) for l in range(L + 1)])
    sh = o3.Irreps.spherical_harmonics(L)
    filt = [o3.Irrep((l, (-1) ** l)) for l in range(L + 1)]
    ours = o3.ChannelwiseTensorProduct(irreps1, sh, filt)
    if lib == "e3nn":
        import e3nn.o3 as eo

        mod = eo.TensorProduct(
            str(irreps1),
            str(sh),
            str(ours.irreps_out),
            [(p.in1, p.in2, p.out, p.mode, p.weighted) for p in ours.paths],
            shared_weights=False,
            internal_weights=False,
        )
    else:
        mod = ours
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(n, irreps1.dim, generator=g)
    x2 = torch.randn(n, sh.dim, generator=g)
    w = torch.randn(n, ours.weight_numel, generator=g)
    return mod, [x1, x2, w], _flops(ours, n)


def fctp_problem(n: int, lib: str) -> tuple[torch.nn.Module, list[torch.Tensor], float]:
    from equidyn import o3

    irreps = "32x0e+32x1o+32x2e"
    ours = o3.FullyConnectedTensorProduct(irreps, irreps, irreps)
    if lib == "e3nn":
        import e3nn.o3 as eo

        mod = eo.FullyConnectedTensorProduct(irreps, irreps, irreps)
    else:
        mod = ours
    g = torch.Generator().manual_seed(0)
    x1 = torch.randn(n, ours.irreps_in1.dim, generator=g)
    x2 = torch.randn(n, ours.irreps_in2.dim, generator=g)
    return mod, [x1, x2], _flops(ours, n)


def _flops(tp: torch.nn.Module, n: int) -> float:
    from equidyn.o3.wigner import wigner_3j

    total = 0.0
    for p in tp.paths:
        (m1, ir1), (m2, ir2), (m3, ir3) = (
            tp.irreps_in1[p.in1],
            tp.irreps_in2[p.in2],
            tp.irreps_out[p.out],
        )
        nnz = int((wigner_3j(ir1.l, ir2.l, ir3.l, dtype=torch.float64).abs() > 1e-12).sum())
        pairs = {"uvw": m1 * m2, "uvu": m1 * m2, "uuu": m1, "uvuv": m1 * m2}[p.mode]
        total += 2.0 * n * pairs * nnz
        if p.mode == "uvw":
            total += 2.0 * n * m1 * m2 * m3 * ir3.dim
    return total


def build(name: str, n: int, lib: str) -> tuple[torch.nn.Module, list[torch.Tensor], float]:
    if name.startswith("conv-"):
        return conv_problem(int(name[5:]), n, lib)
    return fctp_problem(n, lib)


def timer(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_calls(mod: torch.nn.Module, inputs: list[torch.Tensor]):
    leaves = [x.clone().requires_grad_(True) for x in inputs]

    def fwd() -> None:
        with torch.no_grad():
            mod(*inputs)

    def fwd_bwd() -> None:
        out = mod(*leaves)
        out.backward(torch.ones_like(out))
        for x in leaves:
            x.grad = None
        for p in mod.parameters():
            p.grad = None

    return fwd, fwd_bwd


def matmul_gflops(repeats: int) -> float:
    a = torch.randn(2048, 2048)
    b = torch.randn(2048, 2048)
    a @ b
    t = statistics.median(timer(lambda: a @ b) for _ in range(repeats))
    return 2 * 2048**3 / t / 1e9


def peak_memory_mib(fn: Callable[[], object]) -> float:
    """Peak of live tensor memory during one call of ``fn`` (already warmed up), from
    ``torch.profiler(profile_memory=True)``: the running sum of every event's self CPU memory
    (allocations attributed to ops, frees as ``[memory]`` events) in order of start time. It
    counts tensors allocated through torch's CPU allocator only (all of them here, compiled
    kernels included), relative to the memory live before the call."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(
        (e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start
    )
    cur = peak = 0
    for e in events:
        cur += e.self_cpu_memory_usage
        peak = max(peak, cur)
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, eager only (< 60 s)")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    ap.add_argument("--plot", default=None, help="also plot the conv-L rows to this PNG")
    ap.add_argument("--problems", default=None, help="comma list, e.g. conv-2,fctp")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    quick = args.quick
    repeats = args.repeats or (3 if quick else 7)
    problems = args.problems.split(",") if args.problems else ["conv-1", "conv-2", "conv-3", "fctp"]
    sizes = {p: (5000 if quick else 20000) for p in problems if p.startswith("conv")}
    sizes["fctp"] = 500 if quick else 2000
    compile_modes = [False] if (quick or args.no_compile) else [False, True]
    malloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32")
    print(f"allocator: {malloc or 'glibc defaults (no MALLOC_* variables set)'}")
    from equidyn.o3 import _native

    native = _native.available()
    kernel = "native C kernel" if native else "torch-op kernel (native off or unavailable)"
    print(f"equidyn convolution kernel: {kernel}")
    mm = matmul_gflops(repeats)
    print(f"fp32 2048^2 matmul: {mm:.1f} GFLOP/s")
    header = (
        f"{'problem':8s} {'mode':8s} {'pass':8s} {'e3nn ms':>9s} {'ours ms':>9s} {'speedup':>8s}"
        f" {'ours GF/s':>9s} {'of mm':>6s} {'e3nn GF/s':>9s} {'max|diff|':>9s}"
        f" {'e3nn MiB':>8s} {'ours MiB':>8s}"
    )
    print(header)
    rows = []
    for name in problems:
        n = sizes[name]
        e_mod, inputs, flops = build(name, n, "e3nn")
        o_mod, _, _ = build(name, n, "equidyn")
        if name == "fctp":
            with torch.no_grad():
                o_mod.weight.copy_(e_mod.weight)
        with torch.no_grad():
            diff = (e_mod(*inputs) - o_mod(*inputs)).abs().max().item()
        for compiled in compile_modes:
            if compiled:
                torch._dynamo.reset()
                e_run = torch.compile(e_mod)
                o_run = torch.compile(o_mod, fullgraph=True)
            else:
                e_run, o_run = e_mod, o_mod
            calls = {lib: make_calls(m, inputs) for lib, m in (("e3nn", e_run), ("ours", o_run))}
            for pass_i, pass_name in enumerate(("fwd", "fwd+bwd")):
                for lib in calls:  # warm-up (and compilation)
                    calls[lib][pass_i]()
                    calls[lib][pass_i]()
                ts: dict[str, list[float]] = {"e3nn": [], "ours": []}
                for _ in range(repeats):  # interleaved
                    for lib in ("e3nn", "ours"):
                        ts[lib].append(timer(calls[lib][pass_i]))
                te, to = statistics.median(ts["e3nn"]), statistics.median(ts["ours"])
                mem = {"e3nn": float("nan"), "ours": float("nan")}
                if pass_name == "fwd+bwd" and not args.no_memory:
                    mem = {lib: peak_memory_mib(calls[lib][pass_i]) for lib in calls}
                f = flops * (1 if pass_name == "fwd" else 3)
                row = {
                    "problem": name,
                    "n": n,
                    "mode": "compiled" if compiled else "eager",
                    "pass": pass_name,
                    "e3nn_ms": te * 1e3,
                    "ours_ms": to * 1e3,
                    "speedup": te / to,
                    "ours_gflops": f / to / 1e9,
                    "e3nn_gflops": f / te / 1e9,
                    "of_mm": f / to / 1e9 / mm,
                    "e3nn_peak_mib": mem["e3nn"],
                    "ours_peak_mib": mem["ours"],
                }
                rows.append(row)
                print(
                    f"{name:8s} {row['mode']:8s} {pass_name:8s} {row['e3nn_ms']:9.1f} "
                    f"{row['ours_ms']:9.1f} {row['speedup']:7.2f}x {row['ours_gflops']:9.2f} "
                    f"{100 * row['of_mm']:5.1f}% {row['e3nn_gflops']:9.2f} {diff:9.1e} "
                    f"{mem['e3nn']:8.0f} {mem['ours']:8.0f}",
                    flush=True,
                )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"matmul_gflops": mm, "malloc": malloc, "rows": rows}, fh, indent=1)
    if args.plot:
        plot_conv_rows(rows, args.plot, f"{torch.get_num_threads()} threads, float32, {kernel}")


def plot_conv_rows(rows: list[dict], path: str, settings: str) -> None:
    """Time per call of the eager conv-L rows against L for both libraries (left) and the
    speed-up (right), forward and forward+backward; written atomically to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conv = [r for r in rows if r["problem"].startswith("conv") and r["mode"] == "eager"]
    if not conv:
        raise ValueError("--plot needs at least one conv-L problem")
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(9, 3.6))
    for pass_name, style in (("fwd", "--"), ("fwd+bwd", "-")):
        sel = sorted((r for r in conv if r["pass"] == pass_name), key=lambda r: r["problem"])
        L = [int(r["problem"].split("-")[1]) for r in sel]
        for lib, key, colour in (
            ("e3nn 0.6", "e3nn_ms", "tab:gray"),
            ("equidyn", "ours_ms", "tab:blue"),
        ):
            ax_t.plot(
                L,
                [r[key] for r in sel],
                style,
                marker="o",
                color=colour,
                label=f"{lib} {pass_name}",
            )
        ax_s.plot(
            L, [r["speedup"] for r in sel], style, marker="o", color="tab:blue", label=pass_name
        )
    ax_t.set_yscale("log")
    ax_t.set_xlabel("L (features and spherical harmonics up to L)")
    ax_t.set_ylabel(f"ms per call ({conv[0]['n']} edges)")
    ax_t.legend(fontsize=8)
    ax_s.axhline(1, color="k", lw=0.6)
    ax_s.set_xlabel("L")
    ax_s.set_ylabel("speed-up over e3nn")
    ax_s.legend(fontsize=8)
    for ax in (ax_t, ax_s):
        ax.set_xticks(sorted({int(r["problem"].split("-")[1]) for r in conv}))
    fig.suptitle(f"Convolution tensor product, 32 channels per l ({settings})", fontsize=9)
    fig.tight_layout()
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
