"""DINo against a grid-bound CNN on generated 2-D Navier–Stokes (and wave) fields observed on
r = 5 %, 25 %, 100 % of a 64×64 grid: test MSE In-t/Out-t × In-s/Out-s and on a 128×128 grid.

The protocol and sizes are those of ``equidyn dino`` (src/equidyn/fields/dino_cli.py; see
docs/dino.md): 16 train / 8 test trajectories of 20 frames, training horizon 10 frames.

    python benchmarks/dino.py --quick   # a smoke test (< 60 s)
    python benchmarks/dino.py           # the table (about 4 min on 1 thread + ~7 min of data once)

Writes results.json, table.md and the plots forecast_maps.png (truth, DINo and the CNN on the
test set's first trajectory) and error_vs_rate.png to --out; each finished case goes to
--out/runs/ (a rerun with the same settings reuses it: an interrupted benchmark resumes).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from equidyn._io import atomic_save, atomic_write_bytes, atomic_write_text, load_checkpoint
from equidyn.fields.dino_cli import PARTS, format_table, run_case, settings


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(buf.getvalue(), path)


def plot_maps(maps: dict[str, torch.Tensor], title: str, train_frames: int, path: Path) -> None:
    plt = _plt()
    frames = maps["truth"].shape[0]
    picks = sorted(
        {1, train_frames // 2, train_frames - 1, (train_frames + frames) // 2, frames - 1}
    )
    rows = [("truth", "truth"), ("dino", "DINo"), ("cnn", "CNN")]
    fig, axes = plt.subplots(len(rows), len(picks), figsize=(2.2 * len(picks), 2.3 * len(rows)))
    lim = float(maps["truth"].abs().max())
    for i, (key, label) in enumerate(rows):
        for j, t in enumerate(picks):
            ax = axes[i, j]
            ax.imshow(maps[key][t].T.numpy(), origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f"frame {t}" + (" (Out-t)" if t >= train_frames else ""), fontsize=9)
            if j == 0:
                ax.set_ylabel(label)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    plt.close(fig)


def plot_rates(runs: list[dict[str, Any]], path: Path) -> None:
    plt = _plt()
    names = sorted({r["data"] for r in runs})
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        rs = sorted((r for r in runs if r["data"] == name), key=lambda r: r["rate"])
        rates = [100 * r["rate"] for r in rs]
        for model, color in (("dino", "C0"), ("cnn", "C3")):
            for part, style in zip(PARTS, ("-o", "--o", "-s", "--s")):
                ys = [r[model][part] for r in rs]
                if all(math.isnan(y) for y in ys):
                    continue
                ax.plot(
                    rates,
                    ys,
                    style,
                    color=color,
                    alpha=0.9,
                    label=f"{'DINo' if model == 'dino' else 'CNN'} {part.replace('_', ' ')}",
                )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="observed points r (%)",
            ylabel="test MSE",
            title=name,
        )
        ax.set_xticks(rates, [f"{x:g}" for x in rates])
        ax.legend(fontsize=7)
    _save(fig, path)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke test (< 60 s)")
    ap.add_argument("--out", default=None, help="default benchmarks/results/dino[_quick]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--data", nargs="+", default=["navier_stokes"], choices=["navier_stokes", "wave"]
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = settings(args.quick)
    out = Path(args.out or ("benchmarks/results/dino" + ("_quick" if args.quick else "")))
    t0 = time.perf_counter()
    runs = []
    for name in args.data:
        for rate in s["rates"]:
            key = {
                "data": name,
                "rate": rate,
                "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in s.items()},
            }
            done = out / "runs" / f"{name}-{rate:g}.json"
            maps_path = out / "runs" / f"{name}-{rate:g}-maps.pt"
            if done.is_file() and json.loads(done.read_text())["key"] == key:
                run = json.loads(done.read_text())["result"]
            else:
                start = time.perf_counter()
                run = run_case(name, rate, s)
                run["seconds"] = time.perf_counter() - start
                run["threads"] = args.threads
                atomic_save(run.pop("maps"), maps_path)
                atomic_write_text(json.dumps({"key": key, "result": run}), done)
            runs.append(run)
            d, c = run["dino"], run["cnn"]
            print(
                f"{name} r={rate:.0%}: DINo In-t {d['in_t']:.3g} Out-t {d['out_t']:.3g} | "
                f"CNN In-t {c['in_t']:.3g} Out-t {c['out_t']:.3g}  ({run['seconds']:.0f} s)",
                flush=True,
            )
            if not all(math.isfinite(m[k]) for m in (d, c) for k in ("in_t", "out_t")):
                raise SystemExit(f"non-finite MSE on {name} at r={rate}")
    meta = {
        "settings": key["settings"],
        "threads": args.threads,
        "quick": args.quick,
        "seconds": sum(r["seconds"] for r in runs),
        "this_call_seconds": time.perf_counter() - t0,
    }
    atomic_write_text(json.dumps({"meta": meta, "runs": runs}, indent=1), out / "results.json")
    text = format_table(runs)
    text += (
        f"\nMSE of test forecasts, frames 1..{s['frames'] - 1} (In-t < {s['train_frames']}); "
        f"threads: {args.threads}; {meta['seconds']:.0f} s in all (the cases' own times).\n"
    )
    atomic_write_text(text, out / "table.md")
    plot_rates(runs, out / "error_vs_rate.png")
    for name in args.data:
        rate = 0.25 if 0.25 in s["rates"] else s["rates"][0]
        maps = load_checkpoint(out / "runs" / f"{name}-{rate:g}-maps.pt")
        plot_maps(
            maps,
            f"{name}, r = {rate:.0%}: test trajectory 0, channel 0",
            s["train_frames"],
            out / f"forecast_maps_{name}.png",
        )
    print("\n" + text)


if __name__ == "__main__":
    main()
