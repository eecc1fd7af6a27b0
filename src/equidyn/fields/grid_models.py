r"""The grid-bound baseline DINo is compared to: a periodic CNN stepping the field forward.

:math:`\hat v_{t+\Delta} = m \odot \hat v_t + F_\theta(m \odot \hat v_t, m, e(x))`, with
:math:`F_\theta` a stack of circularly padded 3×3 convolutions (GELU), :math:`m` the
observation mask and :math:`e(x) = (\sin 2\pi x, \cos 2\pi x, \sin 2\pi y, \cos 2\pi y)`
coordinate channels (the Navier–Stokes forcing depends on position, which a convolution
alone cannot see; FNO adds its grid to the input for the same reason). The model only ever
*sees* the observed points: its input is the field zero-filled outside the mask plus the mask
itself as a channel, at every step of a rollout too (its own forecast is re-masked before the
next step), and its training loss counts observed points only. So on
subsampled data it must in-paint the unseen points from the zero-filled grid; it cannot be
queried off its grid (for a finer grid its forecast is interpolated, see
:func:`upsample_bilinear`).

(``neuraloperator``'s FNO was tried as the baseline: it installs only with wandb,
opentelemetry, h5py and a dozen more packages, so this small CNN stands in for it.)

>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<...>
>>> model = PeriodicCNN(channels=1, width=8, depth=2)
>>> mask = torch.ones(16, 16, dtype=torch.bool)
>>> grid_rollout(model, torch.randn(2, 1, 16, 16), mask, frames=4).shape
torch.Size([2, 4, 1, 16, 16])
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor, nn

__all__ = ["PeriodicCNN", "grid_rollout", "train_grid_model", "upsample_bilinear"]


class PeriodicCNN(nn.Module):
    """:math:`F_\\theta`: ``depth`` circular 3×3 convolutions of ``width`` channels (GELU),
    input the masked field, the mask and 4 coordinate channels (``channels + 5``), output
    an update (``channels``; the last layer starts at zero, so the first model is the
    identity on the observed points)."""

    def __init__(self, channels: int = 1, width: int = 32, depth: int = 4) -> None:
        super().__init__()
        if min(channels, width, depth) < 1:
            raise ValueError(
                f"channels, width, depth must be >= 1, got {channels}, {width}, {depth}"
            )
        self.channels = channels
        layers: list[nn.Module] = []
        c_in = channels + 5
        for _ in range(depth):
            layers += [nn.Conv2d(c_in, width, 3, padding=1, padding_mode="circular"), nn.GELU()]
            c_in = width
        last = nn.Conv2d(width, channels, 3, padding=1, padding_mode="circular")
        nn.init.zeros_(last.weight)
        with torch.no_grad():
            last.bias.zero_()  # type: ignore[union-attr]
        self.net = nn.Sequential(*layers, last)

    def forward(self, field: Tensor, mask: Tensor) -> Tensor:
        """One step: ``field [B, C, H, W]`` (only its ``mask [H, W]`` points are used)
        -> the next field ``[B, C, H, W]``."""
        if field.dim() != 4 or field.shape[1] != self.channels:
            raise ValueError(f"field must be [B, {self.channels}, H, W], got {tuple(field.shape)}")
        if mask.shape != field.shape[-2:]:
            raise ValueError(f"mask must be {tuple(field.shape[-2:])} like the field's grid, "
                             f"got {tuple(mask.shape)}")  # fmt: skip
        b, (h, w) = field.shape[0], mask.shape
        m = mask.to(field.dtype).expand(b, 1, h, w)
        x = 2 * math.pi * torch.arange(h, dtype=field.dtype, device=field.device) / h
        y = 2 * math.pi * torch.arange(w, dtype=field.dtype, device=field.device) / w
        xx, yy = x[:, None].expand(h, w), y[None, :].expand(h, w)
        coords = torch.stack([xx.sin(), xx.cos(), yy.sin(), yy.cos()]).expand(b, 4, h, w)
        seen = field * m
        return seen + self.net(torch.cat([seen, m, coords], dim=1))


@torch.no_grad()
def grid_rollout(model: PeriodicCNN, first: Tensor, mask: Tensor, frames: int) -> Tensor:
    """Autoregressive forecast ``[B, frames, C, H, W]`` from ``first [B, C, H, W]`` (frame 0
    is ``first`` as given; each later frame is one model step from the previous, which the
    model sees on ``mask`` only). Inference only (no gradients)."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not torch.isfinite(first).all():
        raise ValueError("first holds NaN or infinite values")
    out = [first]
    for _ in range(frames - 1):
        out.append(model(out[-1], mask))
    return torch.stack(out, dim=1)


def upsample_bilinear(fields: Tensor, size: int) -> Tensor:
    """Periodic bilinear interpolation of ``fields [..., H, H]`` onto the ``size x size`` grid
    (points ``i / size``): how a grid-bound forecast reaches a finer grid.

    >>> upsample_bilinear(torch.tensor([[0.0, 1.0], [0.0, 1.0]]), 4)[0].tolist()
    [0.0, 0.5, 1.0, 0.5]
    """
    n = fields.shape[-1]
    pos = torch.arange(size, dtype=fields.dtype, device=fields.device) * n / size
    lo = pos.floor().long()
    w = pos - lo
    lo, hi = lo % n, (lo + 1) % n
    rows = fields[..., lo, :] * (1 - w)[:, None] + fields[..., hi, :] * w[:, None]
    return rows[..., lo] * (1 - w) + rows[..., hi] * w


def train_grid_model(
    model: PeriodicCNN,
    fields: Tensor,
    mask: Tensor,
    train_frames: int,
    epochs: int = 200,
    batch_size: int = 16,
    lr: float = 1e-3,
    unroll: int = 2,
    seed: int = 0,
) -> dict:
    """Fit ``model`` to ``fields [N, T, C, H, W]`` seen on ``mask``, frames ``< train_frames``:
    from each masked frame, ``unroll`` steps of its own rollout against the next frames,
    loss on the observed points. Adam, cosine schedule. Returns ``{"seconds", "loss"}``."""
    if fields.dim() != 5 or not torch.isfinite(fields).all():
        raise ValueError(
            f"fields must be a finite [N, T, C, H, W] tensor, got {tuple(fields.shape)}"
        )
    if not unroll < train_frames <= fields.shape[1]:
        raise ValueError(f"train_frames must be in {unroll + 1}..{fields.shape[1]}, "
                         f"got {train_frames}")  # fmt: skip
    param = next(model.parameters())
    data = fields[:, :train_frames].to(param)
    m = mask.to(param.device)
    starts = [(i, s) for i in range(len(data)) for s in range(train_frames - unroll)]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    t0, loss_sum = time.perf_counter(), math.nan
    model.train()
    for epoch in range(epochs):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        order = torch.randperm(len(starts), generator=gen).split(batch_size)
        loss_sum = 0.0
        for idx in order:
            traj = torch.tensor([starts[k][0] for k in idx])
            s = torch.tensor([starts[k][1] for k in idx])
            state = data[traj, s]
            loss = torch.zeros((), dtype=param.dtype, device=param.device)
            for j in range(1, unroll + 1):
                state = model(state, m)
                loss = loss + ((state - data[traj, s + j]) ** 2)[..., m].mean()
            opt.zero_grad()
            (loss / unroll).backward()
            opt.step()
            loss_sum += float(loss.detach()) / unroll / len(order)
        if not math.isfinite(loss_sum):
            raise FloatingPointError(f"grid model training diverged at epoch {epoch + 1}")
    model.eval()
    return {"seconds": time.perf_counter() - t0, "loss": loss_sum}
