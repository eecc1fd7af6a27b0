"""PNG plots of a training run (matplotlib, Agg backend: no display needed).

- :func:`plot_loss_curves`: training and validation loss, and the validation MAEs, per epoch,
  from the CSV log, on logarithmic axes.
- :func:`plot_parity`: predicted against reference values (e.g. force components), with the
  diagonal, MAE and RMSE.

>>> import tempfile, pathlib, torch
>>> out = pathlib.Path(tempfile.mkdtemp()) / "parity.png"
>>> plot_parity(torch.tensor([0.0, 1.1]), torch.tensor([0.0, 1.0]), out, "force", "eV/Å")
>>> out.stat().st_size > 0
True
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from equidyn.train.logging import read_csv_log

__all__ = ["plot_loss_curves", "plot_parity"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike[str]) -> None:
    from io import BytesIO

    from equidyn._io import atomic_write_bytes

    buf = BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(buf.getvalue(), path)


def plot_loss_curves(log_path: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> None:
    """Loss curves and validation MAEs per epoch from a ``log.csv`` written by the trainer."""
    rows = read_csv_log(log_path)
    if not rows:
        raise ValueError(f"{str(log_path)!r} has no rows to plot")
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ax = axes[0]
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        ax.plot(epochs, [r[key] for r in rows], label=label)
    ax.set(xlabel="epoch", ylabel="weighted loss", yscale="log", title="loss")
    ax.legend()
    ax = axes[1]
    for key, label in (
        ("val_energy_mae", "energy MAE (meV/atom)"),
        ("val_forces_mae", "force MAE (meV/Å)"),
        ("val_stress_mae", "stress MAE (meV/Å³)"),
    ):
        if key in rows[0]:
            ax.plot(epochs, [r[key] for r in rows], label=label)
    ax.set(xlabel="epoch", ylabel="validation MAE", yscale="log", title="validation errors")
    ax.legend()
    fig.tight_layout()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    _save(fig, out_path)
    plt.close(fig)


def plot_parity(
    pred: torch.Tensor,
    ref: torch.Tensor,
    out_path: str | os.PathLike[str],
    quantity: str,
    unit: str,
    title: str | None = None,
) -> None:
    """Scatter of ``pred`` against ``ref`` (flattened) with the diagonal, MAE and RMSE."""
    p = pred.detach().double().reshape(-1).cpu()
    r = ref.detach().double().reshape(-1).cpu()
    if p.shape != r.shape or p.numel() == 0:
        raise ValueError(
            f"pred and ref must be non-empty and the same size, got {p.shape}, {r.shape}"
        )
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(r.numpy(), p.numpy(), s=3, alpha=0.4, linewidths=0)
    lo, hi = float(torch.minimum(p.min(), r.min())), float(torch.maximum(p.max(), r.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    mae = float((p - r).abs().mean())
    rmse = float(((p - r) ** 2).mean().sqrt())
    ax.text(
        0.04,
        0.96,
        f"MAE {mae:.4g} {unit}\nRMSE {rmse:.4g} {unit}",
        transform=ax.transAxes,
        va="top",
    )
    ax.set(xlabel=f"reference {quantity} ({unit})", ylabel=f"predicted {quantity} ({unit})")
    ax.set_title(title or f"{quantity} parity")
    fig.tight_layout()
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    _save(fig, out_path)
    plt.close(fig)
