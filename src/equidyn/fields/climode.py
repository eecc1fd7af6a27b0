r"""ClimODE (Verma, Heinonen and Garg, ICLR 2024): weather as advection, solved as a neural ODE.

Each variable :math:`u_k(\mathbf x, t)` is carried by its own velocity field
:math:`\mathbf v_k`, and the velocities follow a learned second-order flow:

.. math::
    \dot u_k = -\nabla\cdot(u_k\mathbf v_k), \qquad
    \dot{\mathbf v}_k = f_\theta\big(u, \nabla u, \mathbf v, \psi(t), \psi(\mathbf x)\big)_k,

with :math:`\psi` embeddings of the time of day, the season and the position. The advection is
the conservative finite-volume divergence of :mod:`.sphere` (periodic in longitude, no flux
through the poles), so the area-weighted total of every :math:`u_k` is conserved by the ODE
to round-off. Velocities are carried as angular rates :math:`(\dot\lambda, \dot\varphi)`
(physical :math:`u = \cos\varphi\,\dot\lambda`, :math:`v = \dot\varphi`), so a fixed step has
the same Courant number at every latitude. :math:`f_\theta` (:class:`FlowNetwork`) sums a
local convolutional network (padding periodic in longitude and across the poles, see
:func:`~equidyn.fields.sphere.pad_sphere`) and a global self-attention over a pooled grid.

The initial velocity is not learned: :func:`fit_velocity` solves the advection equation for it
from the last frames of the history (:math:`\dot u` by a backward difference), minimising
:math:`\|\dot u + \nabla\cdot(u\mathbf v)\|^2 + \alpha\|\nabla\mathbf v\|^2` with L-BFGS, as
the paper does before training. The ODE is solved with torchdiffeq (``euler`` or ``rk4``,
fixed steps). An emission head turns each solved state into a Gaussian forecast,
:math:`\mathcal N(u + \mu_\theta, \sigma_\theta^2)` (bias and uncertainty from the state and
the embeddings), trained by the latitude-weighted Gaussian NLL
(:class:`~equidyn.fields.weather_task.WeatherForecastTask`).

Fields are normalised per variable by a ``scale`` (and the network sees them centred by an
``offset``); the ODE works on :math:`u / s` so the advection is that of the physical field.

>>> from equidyn.fields.sphere import LatLonGrid
>>> grid = LatLonGrid(8, 16)
>>> model = ClimODE(n_vars=2, grid=grid, width=8)
>>> u0 = torch.rand(3, 2, 8, 16) + 1
>>> mean, std = model(u0[:, None], torch.zeros(3, 4, 8, 16), torch.zeros(3), steps=2)
>>> mean.shape, bool((std > 0).all())
(torch.Size([3, 2, 2, 8, 16]), True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from equidyn.fields.sphere import LatLonGrid, flux_divergence, pad_sphere

__all__ = ["ClimODE", "FlowNetwork", "SphereConv2d", "fit_velocity", "position_time_embedding"]

STEPS_PER_DAY = 4
N_EMBED = 8


class SphereConv2d(nn.Module):
    """A ``k×k`` convolution on the sphere: :func:`~equidyn.fields.sphere.pad_sphere` padding
    (periodic longitude, over-the-pole rows), then an unpadded ``Conv2d``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.pad = kernel_size // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(pad_sphere(x, self.pad))  # [B, out, n_lat, n_lon]


def position_time_embedding(t: Tensor, grid: LatLonGrid, steps_per_year: int) -> Tensor:
    """ψ(t), ψ(x): sin/cos of the time of day, the season, the latitude and the longitude.

    Args:
        t: times in 6-hour steps. ``[B]``
    Returns:
        ``[B, 8, n_lat, n_lon]``
    """
    B = t.shape[0]
    day = 2 * math.pi * t / STEPS_PER_DAY
    year = 2 * math.pi * t / steps_per_year
    tt = torch.stack([day.sin(), day.cos(), year.sin(), year.cos()], 1)  # [B, 4]
    tt = tt[:, :, None, None].expand(B, 4, *grid.shape)
    lat, lon = grid.lat.to(t)[:, None], grid.lon.to(t)[None, :]
    pos = torch.stack([lat.sin().expand(grid.shape), lat.cos().expand(grid.shape),
                       lon.sin().expand(grid.shape), lon.cos().expand(grid.shape)])  # fmt: skip
    return torch.cat([tt, pos[None].expand(B, 4, *grid.shape)], 1)


def _grid_gradient(u: Tensor) -> Tensor:
    """Centred differences per cell along longitude and latitude. ``[B, 2C, n_lat, n_lon]``"""
    p = pad_sphere(u, 1)
    dx = 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2])
    dy = 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    return torch.cat([dx, dy], 1)


class FlowNetwork(nn.Module):
    r""":math:`f_\theta(u, \nabla u, \mathbf v, \psi)`: local convolutions plus global attention.

    Args:
        n_vars: variables K (the output has 2K channels: :math:`\dot{\mathbf v}`).
        width: channels of the hidden layers (and of the attention tokens).
        pool: the attention runs on the grid average-pooled by this factor.
        heads: attention heads.
    """

    def __init__(self, n_vars: int, width: int = 24, pool: int = 4, heads: int = 2) -> None:
        super().__init__()
        c_in = 5 * n_vars + N_EMBED
        self.pool = pool
        self.local = nn.ModuleList([SphereConv2d(c_in, width), SphereConv2d(width, width),
                                    SphereConv2d(width, width)])  # fmt: skip
        self.local_out = SphereConv2d(width, 2 * n_vars)
        self.tokens = nn.Linear(c_in, width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.global_out = nn.Linear(width, 2 * n_vars)
        self.gamma = nn.Parameter(torch.tensor(0.1))
        for out in (self.local_out.conv, self.global_out):  # start near a constant flow
            nn.init.normal_(out.weight, std=1e-3)
            nn.init.zeros_(out.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        """``x`` = [u, ∇u, v, ψ] ``[B, 5K + 8, n_lat, n_lon]`` -> v̇ ``[B, 2K, n_lat, n_lon]``"""
        h = F.silu(self.local[0](x))
        for layer in self.local[1:]:
            h = h + F.silu(layer(h))
        local = self.local_out(h)
        B, _, H, W = x.shape
        p = F.avg_pool2d(x, self.pool)  # [B, C, H/pool, W/pool]
        tok = self.tokens(p.flatten(2).transpose(1, 2))  # [B, tokens, width]
        att, _ = self.attention(tok, tok, tok, need_weights=False)
        g = self.global_out(att).transpose(1, 2).reshape(B, -1, H // self.pool, W // self.pool)
        g = F.interpolate(g, scale_factor=self.pool, mode="nearest")
        return local + self.gamma * g


class _Emission(nn.Module):
    def __init__(self, n_vars: int, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(SphereConv2d(n_vars + N_EMBED, width), nn.SiLU(),
                                 SphereConv2d(width, width), nn.SiLU(),
                                 SphereConv2d(width, 2 * n_vars))  # fmt: skip

    def forward(self, u: Tensor, emb: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(torch.cat([u, emb], 1))
        bias, raw = out.chunk(2, 1)
        return bias, F.softplus(raw - 2.0) + 1e-3  # [B, K, H, W] each


class ClimODE(nn.Module):
    """The ClimODE forecaster (see the module docstring).

    Args:
        n_vars: variables K.
        grid: the latitude-longitude grid.
        steps_per_year: 6-hour steps in a year (the season embedding's period).
        width: hidden channels of the flow network and the emission head.
        method: ``"euler"`` or ``"rk4"`` (torchdiffeq, fixed steps).
        step_size: ODE step in 6-hour units (``1 / step_size`` steps per output frame).
        scheme: face reconstruction of the advection (:data:`~equidyn.fields.sphere.SCHEMES`).
        offset, scale: per-variable normalisation ``[K]`` (default 0 and 1); set them from
            the training data with :meth:`set_normalisation`.
    """

    offset: Tensor
    scale: Tensor

    def __init__(self, n_vars: int, grid: LatLonGrid, steps_per_year: int = 240, width: int = 24,
                 method: str = "euler", step_size: float = 0.5,
                 scheme: str = "vanleer") -> None:  # fmt: skip
        super().__init__()
        if method not in ("euler", "rk4"):
            raise ValueError(f"method must be 'euler' or 'rk4', got {method!r}")
        if not 0 < step_size <= 1 or abs(1 / step_size - round(1 / step_size)) > 1e-9:
            raise ValueError(f"step_size must be 1/n for an int n >= 1, got {step_size}")
        if grid.n_lat % 4 or grid.n_lon % 4:
            raise ValueError(f"the attention pools by 4: grid {grid.shape} must divide by 4")
        self.n_vars, self.grid, self.steps_per_year = n_vars, grid, steps_per_year
        self.method, self.step_size, self.scheme = method, step_size, scheme
        self.flow = FlowNetwork(n_vars, width)
        self.emission = _Emission(n_vars, width)
        self.register_buffer("offset", torch.zeros(n_vars))
        self.register_buffer("scale", torch.ones(n_vars))
        self._t0: Tensor | None = None

    def set_normalisation(self, fields: Tensor) -> None:
        """Offset and scale from training frames ``[N, K, n_lat, n_lon]`` (mean and std)."""
        self.offset.copy_(fields.mean((0, 2, 3)))
        self.scale.copy_(fields.std((0, 2, 3)))

    # ------------------------------------------------------------------ the ODE
    def advection(self, u: Tensor, rates: Tensor) -> Tensor:
        """:math:`-\\nabla\\cdot(u_k\\mathbf v_k)` of every variable.

        ``u [B, K, H, W]``, ``rates [B, 2K, H, W]`` (dλ/dt then dφ/dt) -> ``[B, K, H, W]``"""
        cos = torch.cos(self.grid.lat).to(u)[:, None]
        lam, phi = rates.chunk(2, 1)
        return -flux_divergence(u, cos * lam, phi, self.grid, self.scheme)

    def flow_inputs(self, u: Tensor, rates: Tensor, t: Tensor) -> Tensor:
        s, o = self.scale[None, :, None, None], self.offset[None, :, None, None]
        emb = position_time_embedding(t, self.grid, self.steps_per_year).to(u)
        return torch.cat([u - o / s, _grid_gradient(u), rates * 10.0, emb], 1)

    def ode_func(self, t: Tensor, state: Tensor) -> Tensor:
        """d/dt of the state ``[B, 3K, H, W]`` = (u / scale, dλ/dt, dφ/dt) at time ``t0 + t``."""
        assert self._t0 is not None  # set by forward
        K = self.n_vars
        u, rates = state[:, :K], state[:, K:]
        du = self.advection(u, rates)
        dv = self.flow(self.flow_inputs(u, rates, self._t0 + t)) * 0.1
        return torch.cat([du, dv], 1)

    def solve(self, u0: Tensor, rates0: Tensor, t0: Tensor, steps: int) -> Tensor:
        """The ODE's states at ``t0 + 1 .. t0 + steps`` (normalised u, then rates).
        ``[B, steps, 3K, H, W]``"""
        try:
            from torchdiffeq import odeint
        except ImportError as e:  # pragma: no cover - the dynamics extra
            raise ImportError("ClimODE needs torchdiffeq: pip install 'equidyn[dynamics]'") from e
        s = self.scale[None, :, None, None]
        state0 = torch.cat([u0 / s, rates0], 1)
        times = torch.arange(steps + 1, dtype=u0.dtype, device=u0.device)
        self._t0 = t0.to(u0)
        try:
            states = odeint(self.ode_func, state0, times, method=self.method,
                            options={"step_size": self.step_size})  # fmt: skip
        finally:
            self._t0 = None
        return states[1:].transpose(0, 1)

    def check_inputs(self, u0: Tensor, rates0: Tensor, t0: Tensor, steps: int) -> None:
        K, (H, W) = self.n_vars, self.grid.shape
        if u0.dim() != 4 or tuple(u0.shape[1:]) != (K, H, W):
            raise ValueError(f"u0 must be [B, {K}, {H}, {W}], got {tuple(u0.shape)}")
        if tuple(rates0.shape) != (u0.shape[0], 2 * K, H, W):
            raise ValueError(f"v0 must be [{u0.shape[0]}, {2 * K}, {H}, {W}], got "
                             f"{tuple(rates0.shape)}")  # fmt: skip
        if tuple(t0.shape) != (u0.shape[0],):
            raise ValueError(f"t0 must be [{u0.shape[0]}], got {tuple(t0.shape)}")
        for name, x in (("u0", u0), ("v0", rates0), ("t0", t0)):
            if not bool(torch.isfinite(x).all()):
                raise ValueError(f"{name} has non-finite values (NaN or inf)")
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")

    def forward(self, history: Tensor, v0: Tensor, t0: Tensor, steps: int) -> tuple[Tensor, Tensor]:
        """Gaussian forecasts of the next ``steps`` frames.

        Args:
            history: observed frames (physical units), the last one the start; only it is
                used (the others went into ``v0``). ``[B, T, K, H, W]``
            v0: its velocity as angular rates, from :func:`fit_velocity`. ``[B, 2K, H, W]``
            t0: its time in 6-hour steps. ``[B]``
            steps: frames to forecast.
        Returns:
            ``(mean, std)`` in physical units. ``[B, steps, K, H, W]`` each
        """
        if history.dim() != 5:
            raise ValueError(f"history must be [B, T, K, H, W], got {tuple(history.shape)}")
        mean, std, _ = self.forecast(history[:, -1], v0, t0, steps)
        return mean, std

    def forecast(
        self, u0: Tensor, v0: Tensor, t0: Tensor, steps: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(mean, std, u)``: :meth:`forward` and the ODE's own (conserving) states ``u``
        in physical units. ``[B, steps, K, H, W]`` each"""
        self.check_inputs(u0, v0, t0, steps)
        K = self.n_vars
        states = self.solve(u0, v0, t0, steps)  # [B, steps, 3K, H, W]
        B = states.shape[0]
        u = states[:, :, :K].flatten(0, 1)  # [B * steps, K, H, W]
        t = (t0.to(u0)[:, None] + torch.arange(1, steps + 1).to(u0)).flatten()
        emb = position_time_embedding(t, self.grid, self.steps_per_year).to(u0)
        s, o = self.scale[None, :, None, None], self.offset[None, :, None, None]
        bias, std = self.emission(u - o / s, emb)
        shape = (B, steps, K, *self.grid.shape)
        return ((u + bias) * s).reshape(shape), (std * s).reshape(shape), (u * s).reshape(shape)


def fit_velocity(history: Tensor, grid: LatLonGrid, smoothness: float = 1.0,
                 iterations: int = 50) -> Tensor:  # fmt: skip
    r"""Velocities (angular rates) that explain the last frames of ``history`` by advection.

    :math:`\dot u` at the last frame is the backward difference of order 2 (of order 1 with
    two frames); the rates :math:`(\dot\lambda, \dot\varphi)` minimise, per sample and variable,

    .. math:: \overline{(\dot u + \nabla\cdot(u\mathbf v))^2} + \alpha\,\overline{|\Delta
              \dot\lambda|^2 + |\Delta\dot\varphi|^2}

    (the centred, linear flux divergence; :math:`\Delta` neighbour differences on the grid)
    by L-BFGS from rest. Frames are normalised by their own standard deviation first. The
    problem is badly conditioned (the smooth, large-scale part of the flow converges slowly):
    the default 50 iterations give a rough first guess, which the learned flow then corrects.

    Args:
        history: frames 6 hours apart, the last one the start. ``[B, T >= 2, K, H, W]``
        grid: the grid.
        smoothness: α.
        iterations: L-BFGS iterations.
    Returns:
        ``[B, 2K, H, W]`` (all dλ/dt, then all dφ/dt)

    >>> grid = LatLonGrid(8, 16)
    >>> lon = grid.lon.float()[None, :].expand(8, 16)
    >>> frames = torch.stack([torch.cos(lon - 0.1 * k) + 2 for k in range(3)])[None, :, None]
    >>> rates = fit_velocity(frames, grid, iterations=200)
    >>> round(float(rates[0, 0, 3:5].mean()), 2)  # a zonal drift of 0.1 rad per step
    0.10
    """
    if history.dim() != 5 or tuple(history.shape[-2:]) != grid.shape or history.shape[1] < 2:
        raise ValueError(f"history must be [B, T >= 2, K, {grid.n_lat}, {grid.n_lon}], got "
                         f"{tuple(history.shape)}")  # fmt: skip
    if not bool(torch.isfinite(history).all()):
        raise ValueError("history has non-finite values (NaN or inf)")
    h = history.detach()
    h = h / h.flatten(1).std(1).clamp_min(1e-12)[:, None, None, None, None]
    u = h[:, -1]  # [B, K, H, W]
    if h.shape[1] >= 3:
        du = 1.5 * h[:, -1] - 2.0 * h[:, -2] + 0.5 * h[:, -3]
    else:
        du = h[:, -1] - h[:, -2]
    cos = torch.cos(grid.lat).to(u)[:, None]
    rates = torch.zeros(u.shape[0], 2 * u.shape[1], *grid.shape, dtype=u.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([rates], lr=1, max_iter=iterations, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)  # fmt: skip

    def closure() -> Tensor:
        opt.zero_grad()
        lam, phi = rates.chunk(2, 1)
        r = du + flux_divergence(u, cos * lam, phi, grid, "centred")
        dx = torch.roll(rates, -1, -1) - rates
        dy = rates[..., 1:, :] - rates[..., :-1, :]
        loss = (r**2).mean() + smoothness * ((dx**2).mean() + (dy**2).mean())
        loss = loss * u.shape[0]  # samples are independent: scale like a sum over them
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return rates.detach().to(history.device)
