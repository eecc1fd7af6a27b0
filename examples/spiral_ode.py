"""Learn a 2-D spiral with a neural ODE (the classic torchdiffeq demo of Chen et al. 2018).

True dynamics: ``dy/dt = y³ A`` (``y`` a row vector, cube taken elementwise) with
``A = [[-0.1, 2], [-2, -0.1]]``, ``y(0) = (2, 0)``, observed at 1000 times in ``[0, 25]``.
A small MLP field ``f_θ(y) = MLP(y³)`` is fitted so that ``odeint(f_θ, y(t_i), t_i..t_i+k)``
reproduces short random segments of the observed trajectory (k = 10 steps); afterwards the
whole trajectory is integrated from ``y(0)`` alone and plotted next to the truth.

    python examples/spiral_ode.py               # ~30 s on 2 CPU cores, writes spiral_ode.png
    python examples/spiral_ode.py --iters 50    # a few seconds
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torchdiffeq import odeint

A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]])


class TrueField(nn.Module):
    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (y**3) @ A


class LearnedField(nn.Module):
    """``f_θ(y) = W₂ tanh(W₁ y³ + b₁) + b₂``: the MLP sees the cubed state."""

    def __init__(self, hidden: int = 50) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.1)
                nn.init.zeros_(m.bias)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y**3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=800)
    p.add_argument("--seconds", type=float, default=45.0, help="stop training after this long")
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--seg", type=int, default=10, help="time steps per training segment")
    p.add_argument("--out", default="spiral_ode.png")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    t = torch.linspace(0.0, 25.0, 1000)
    y0 = torch.tensor([[2.0, 0.0]])
    with torch.no_grad():
        true_y = odeint(TrueField(), y0, t, method="dopri5")  # [1000, 1, 2]

    field = LearnedField()
    opt = torch.optim.RMSprop(field.parameters(), lr=1e-3)
    dt = float(t[1] - t[0])
    start = time.perf_counter()
    for it in range(1, args.iters + 1):
        s = torch.randint(0, len(t) - args.seg, (args.batch,))
        batch_y0 = true_y[s]  # [batch, 1, 2]
        batch_t = t[: args.seg]
        batch_y = torch.stack([true_y[s + i] for i in range(args.seg)])  # [seg, batch, 1, 2]
        pred = odeint(field, batch_y0, batch_t, method="rk4", options={"step_size": dt})
        loss = (pred - batch_y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 100 == 0:
            print(f"iter {it:4d}  segment loss {loss.item():.4f}", flush=True)
        if time.perf_counter() - start > args.seconds:
            print(f"stopping after {it} iterations ({args.seconds:.0f} s budget)")
            break

    with torch.no_grad():
        pred_y = odeint(field, y0, t, method="rk4", options={"step_size": dt})
    mae = (pred_y - true_y).abs().mean().item()
    print(f"whole-trajectory mean |error| from y(0) alone: {mae:.4f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(true_y[:, 0, 0], true_y[:, 0, 1], "g-", label="true")
    ax[0].plot(pred_y[:, 0, 0], pred_y[:, 0, 1], "b--", label="learned")
    ax[0].set(xlabel="y₁", ylabel="y₂", title="phase portrait")
    ax[0].legend()
    ax[1].plot(t, true_y[:, 0, 0], "g-", t, true_y[:, 0, 1], "g-")
    ax[1].plot(t, pred_y[:, 0, 0], "b--", t, pred_y[:, 0, 1], "b--")
    ax[1].set(xlabel="t", ylabel="y", title=f"trajectories (mean |error| {mae:.3f})")
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
