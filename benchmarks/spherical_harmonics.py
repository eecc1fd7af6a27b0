"""Speed of real spherical harmonics: equidyn vs e3nn 0.6 vs sphericart-torch, side by side.

All l <= l_max of 10^5 random float32 vectors, normalize=True, forward and forward+backward
(gradient w.r.t. the vectors of <Y, w> for a fixed random w), 2 threads, median of several
runs after warm-up; the three libraries are timed round-robin in one process so that the
ratios see the same machine state. sphericart uses its own basis (z polar, integral
normalization): the same amount of work, different numbers.

Allocator: glibc returns large blocks to the system on every free unless tuned, and the page
faults that follow cost a lot here (docs/protocols.md §2). Run the script as is for the default
allocator, with ``MALLOC_MMAP_THRESHOLD_=1000000000000 MALLOC_TRIM_THRESHOLD_=1000000000000
MALLOC_TOP_PAD_=1000000000`` for the tuned one, or with ``--both`` to run itself under both.

    python benchmarks/spherical_harmonics.py            # full table
    python benchmarks/spherical_harmonics.py --quick    # < 30 s
    python benchmarks/spherical_harmonics.py --both     # default and tuned allocator
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

from equidyn.o3 import spherical_harmonics

TUNED_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": "1000000000000",
    "MALLOC_TRIM_THRESHOLD_": "1000000000000",
    "MALLOC_TOP_PAD_": "1000000000",
}


def _allocator_settings() -> str:
    found = {k: v for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_")}
    if not found:
        return "default glibc allocator (no MALLOC_* variables set)"
    return " ".join(f"{k}={v}" for k, v in found.items())


def _load_e3nn() -> tuple[Callable | None, str]:
    try:
        from e3nn import o3 as e3nn_o3
    except Exception as error:  # noqa: BLE001 - report any import failure and skip
        return None, f"e3nn unavailable: {type(error).__name__}: {error}"
    import e3nn

    def fn(lmax: int) -> Callable[[torch.Tensor], torch.Tensor]:
        ls = list(range(lmax + 1))
        return lambda x: e3nn_o3.spherical_harmonics(ls, x, True, "component")

    return fn, f"e3nn {e3nn.__version__}"


def _load_sphericart() -> tuple[Callable | None, str]:
    try:
        import sphericart.torch as sphericart_torch
    except Exception as error:  # noqa: BLE001 - report any import failure and skip
        return None, f"sphericart-torch unavailable: {type(error).__name__}: {error}"
    try:
        from importlib.metadata import version

        label = f"sphericart-torch {version('sphericart-torch')}"
    except Exception:  # noqa: BLE001
        label = "sphericart-torch"

    def fn(lmax: int) -> Callable[[torch.Tensor], torch.Tensor]:
        module = sphericart_torch.SphericalHarmonics(lmax)
        return lambda x: module(x)

    return fn, label


def _ours(lmax: int) -> Callable[[torch.Tensor], torch.Tensor]:
    ls = list(range(lmax + 1))
    return lambda x: spherical_harmonics(ls, x, True, "component")


def _ours_contig(lmax: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Ours followed by a copy to row-major storage (what e3nn and sphericart return)."""
    ls = list(range(lmax + 1))
    return lambda x: spherical_harmonics(ls, x, True, "component").contiguous()


def _cell(ms: dict[str, float], name: str, width: int) -> str:
    return f"{ms[name]:{width}.2f}" if name in ms else f"{'-':>{width}}"


def _ratio(ms: dict[str, float], ours: str, other: str, width: int) -> str:
    return f"{ms[ours] / ms[other]:{width}.2f}" if other in ms else f"{'-':>{width}}"


def _time_round_robin(
    jobs: dict[str, Callable[[], object]], warmup: int, reps: int
) -> dict[str, float]:
    """Median wall time (ms) of each job, the jobs interleaved rep by rep."""
    for _ in range(warmup):
        for job in jobs.values():
            job()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(reps):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}


def _forward_job(fn: Callable, x: torch.Tensor) -> Callable[[], object]:
    def job() -> object:
        with torch.no_grad():
            return fn(x)

    return job


def _forward_backward_job(fn: Callable, x: torch.Tensor, w: torch.Tensor) -> Callable[[], object]:
    def job() -> object:
        xg = x.detach().requires_grad_(True)
        y = fn(xg)
        (grad,) = torch.autograd.grad(y, xg, grad_outputs=w)
        return grad

    return job


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repetitions")
    parser.add_argument("--lmax", type=int, nargs="+", default=None)
    parser.add_argument("--n", type=int, default=100_000, help="number of vectors")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--both", action="store_true", help="run under both allocators")
    args = parser.parse_args(argv)

    if args.both:
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--both"]
        base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        for env in (base, {**base, **TUNED_MALLOC}):
            subprocess.run([sys.executable, __file__, *rest], env=env, check=True)
            print()
        return

    lmaxes = args.lmax or ([2, 8] if args.quick else [2, 4, 8, 12])
    reps = args.reps or (5 if args.quick else 15)
    warmup = 2 if args.quick else 3
    n = args.n
    torch.set_num_threads(args.threads)

    e3nn_fn, e3nn_label = _load_e3nn()
    sc_fn, sc_label = _load_sphericart()
    print(f"spherical harmonics, {n} float32 vectors, all l <= l_max, normalize=True")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {e3nn_label}; {sc_label}")
    print(f"allocator: {_allocator_settings()}")
    print(f"median of {reps} runs after {warmup} warm-ups, libraries interleaved\n")

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    names = ["equidyn", "equidyn+contig", "e3nn", "sphericart"]
    header = (
        f"{'l_max':>5} | {'pass':>7} | {'equidyn':>8} | {'+contig':>8} | {'e3nn':>8} |"
        f" {'sphericart':>10} | {'ours/e3nn':>9} | {'ours/sphericart':>15} |"
        f" {'contig/sphericart':>17}"
    )
    print(header)
    print("-" * len(header))
    for lmax in lmaxes:
        fns: dict[str, Callable] = {"equidyn": _ours(lmax), "equidyn+contig": _ours_contig(lmax)}
        if e3nn_fn is not None:
            fns["e3nn"] = e3nn_fn(lmax)
        if sc_fn is not None:
            fns["sphericart"] = sc_fn(lmax)
        w = torch.randn(n, (lmax + 1) ** 2, generator=generator)
        for label in ("fwd", "fwd+bwd"):
            if label == "fwd":
                jobs = {name: _forward_job(fn, x) for name, fn in fns.items()}
            else:
                jobs = {name: _forward_backward_job(fn, x, w) for name, fn in fns.items()}
            ms = _time_round_robin(jobs, warmup, reps)
            cells = [_cell(ms, name, width) for name, width in zip(names, (8, 8, 8, 10))]
            print(
                f"{lmax:>5} | {label:>7} | " + " | ".join(cells) + " | "
                f"{_ratio(ms, 'equidyn', 'e3nn', 9)} | {_ratio(ms, 'equidyn', 'sphericart', 15)} |"
                f" {_ratio(ms, 'equidyn+contig', 'sphericart', 17)}"
            )
    print(
        "\ntimes in ms; ratio < 1 means equidyn is faster. equidyn returns a (n, dim) view of"
        " component-major storage; '+contig' adds the copy to row-major storage."
    )


if __name__ == "__main__":
    main()
