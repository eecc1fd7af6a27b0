r"""The baselines ClimODE is compared to: persistence, climatology and an autoregressive ResNet.

All take the same inputs as :class:`~equidyn.fields.climode.ClimODE` through
:class:`~equidyn.fields.weather_task.WeatherForecastTask` (a batch of histories, their fitted
velocities and start times) and return ``(mean, None)`` forecasts ``[B, steps, K, H, W]``:

- :class:`Persistence`: :math:`\hat u_{t+n} = u_t`;
- :class:`Climatology`: :math:`\hat u_{t+n} = c(t + n)` (the training years' mean of that step
  of the year);
- :class:`ARResNet`: :math:`\hat u_{t+1} = u_t + s\,g_\theta(u_t, u_{t-1}, \psi(t), \psi(\mathbf
  x))` with :math:`g_\theta` a residual network of sphere convolutions (periodic longitude,
  over-the-pole padding), rolled out on its own outputs.

>>> from equidyn.fields.sphere import LatLonGrid
>>> grid = LatLonGrid(8, 16)
>>> hist = torch.rand(2, 3, 2, 8, 16)
>>> mean, _ = ARResNet(2, grid, width=8)(hist, torch.zeros(2, 4, 8, 16), torch.zeros(2), 3)
>>> mean.shape
torch.Size([2, 3, 2, 8, 16])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from equidyn.fields.climode import N_EMBED, SphereConv2d, position_time_embedding
from equidyn.fields.sphere import LatLonGrid

__all__ = ["ARResNet", "Climatology", "Persistence"]


def _check_history(history: Tensor, n_vars: int, grid: LatLonGrid, steps: int) -> None:
    if history.dim() != 5 or tuple(history.shape[2:]) != (n_vars, *grid.shape):
        raise ValueError(f"history must be [B, T, {n_vars}, {grid.n_lat}, {grid.n_lon}], got "
                         f"{tuple(history.shape)}")  # fmt: skip
    if not bool(torch.isfinite(history).all()):
        raise ValueError("history has non-finite values (NaN or inf)")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")


class Persistence(nn.Module):
    """Tomorrow is today: the last frame, repeated."""

    def __init__(self, n_vars: int, grid: LatLonGrid) -> None:
        super().__init__()
        self.n_vars, self.grid = n_vars, grid

    def forward(self, history: Tensor, v0: Tensor, t0: Tensor, steps: int) -> tuple[Tensor, None]:
        _check_history(history, self.n_vars, self.grid, steps)
        last = history[:, -1:]  # [B, 1, K, H, W]
        return last.expand(-1, steps, -1, -1, -1).clone(), None


class Climatology(nn.Module):
    clim: Tensor

    """The climatology of each lead's step of the year.

    Args:
        climatology: ``[steps_per_year, K, H, W]`` (:func:`~equidyn.fields.tracers.climatology`).
    """

    def __init__(self, climatology: Tensor) -> None:
        super().__init__()
        self.register_buffer("clim", climatology)

    def forward(self, history: Tensor, v0: Tensor, t0: Tensor, steps: int) -> tuple[Tensor, None]:
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        year = self.clim.shape[0]
        idx = (t0.long()[:, None] + torch.arange(1, steps + 1, device=t0.device)) % year
        return self.clim[idx].to(history), None  # [B, steps, K, H, W]


class ARResNet(nn.Module):
    """An autoregressive residual network (see the module docstring).

    Args:
        n_vars: variables K.
        grid: the grid.
        steps_per_year: period of the season embedding.
        width: hidden channels.
        blocks: residual blocks (two 3×3 sphere convolutions each).
    """

    offset: Tensor
    scale: Tensor

    def __init__(self, n_vars: int, grid: LatLonGrid, steps_per_year: int = 240, width: int = 32,
                 blocks: int = 3) -> None:  # fmt: skip
        super().__init__()
        self.n_vars, self.grid, self.steps_per_year = n_vars, grid, steps_per_year
        self.inp = SphereConv2d(2 * n_vars + N_EMBED, width)
        self.blocks = nn.ModuleList(
            nn.ModuleList([SphereConv2d(width, width), SphereConv2d(width, width)])
            for _ in range(blocks)
        )
        self.out = SphereConv2d(width, n_vars)
        nn.init.zeros_(self.out.conv.weight)
        nn.init.zeros_(self.out.conv.bias)  # type: ignore[arg-type]
        self.register_buffer("offset", torch.zeros(n_vars))
        self.register_buffer("scale", torch.ones(n_vars))

    def set_normalisation(self, fields: Tensor) -> None:
        """Offset and scale from training frames ``[N, K, n_lat, n_lon]`` (mean and std)."""
        self.offset.copy_(fields.mean((0, 2, 3)))
        self.scale.copy_(fields.std((0, 2, 3)))

    def step(self, u: Tensor, u_prev: Tensor, t: Tensor) -> Tensor:
        """One 6-hour step from normalised ``u``, ``u_prev`` ``[B, K, H, W]`` at time ``t [B]``."""
        emb = position_time_embedding(t, self.grid, self.steps_per_year).to(u)
        h = F.silu(self.inp(torch.cat([u, u - u_prev, emb], 1)))
        for block in self.blocks:
            a, b = block[0], block[1]  # type: ignore[index]
            h = h + b(F.silu(a(h)))
        return u + self.out(h)

    def forward(self, history: Tensor, v0: Tensor, t0: Tensor, steps: int) -> tuple[Tensor, None]:
        """``history [B, T >= 2, K, H, W]`` -> ``(mean [B, steps, K, H, W], None)``"""
        _check_history(history, self.n_vars, self.grid, steps)
        s, o = self.scale[None, :, None, None], self.offset[None, :, None, None]
        prev, u = (history[:, -2] - o) / s, (history[:, -1] - o) / s
        out = []
        for n in range(steps):
            prev, u = u, self.step(u, prev, t0.to(u) + n)
            out.append(u * s + o)
        return torch.stack(out, 1), None
