r"""Weather-like tracers on the sphere, generated here in place of ERA5 (cached on first use).

Three variables, named after the ERA5 fields they stand in for, each obeying

.. math:: \dot q_k = -\nabla\cdot(q_k\mathbf v) + \kappa_k\nabla^2 q_k
          + \frac{q_k^\text{eq}(\varphi, \lambda, t) - q_k}{\tau_k},

on ClimODE's 5.625° grid (:class:`~equidyn.fields.sphere.LatLonGrid`, 32×64), written every
6 hours (the time unit is one 6-hour step). The winds :math:`\mathbf v = \mathbf k\times\nabla\psi
+ \nabla\chi` are analytic, divergent and time varying:

- stream function :math:`\psi = -\omega(t)\sin\varphi + K(t)\cos^4\varphi\sin\varphi
  \cos(4\lambda - \alpha(t))`: solid-body rotation plus a Rossby–Haurwitz wave of
  wavenumber 4 whose amplitude and phase wander;
- velocity potential :math:`\chi = \cos^2\varphi\sin\varphi\,[D(t) + E(t)\cos(2\lambda -
  \beta(t))]`: a Hadley-like overturning that follows the season plus a moving divergent wave.

The slow coefficients are a seasonal cycle (period one synthetic *year*) plus a few random
sinusoids of 5–30-day periods drawn from ``seed``: deterministic, but unknown to a model, which
must read the flow from the recent frames as ClimODE does. The equilibria :math:`q^\text{eq}`
follow the season (their latitude of maximum moves with the "sun"); ``t2m`` also has a diurnal
cycle (heating under the subsolar longitude). ``z500``-like relaxes slowly (10 days), ``t2m``
in 5 days, the humidity-like ``q700`` in 3 days around a moving moist band.

Time stepping: SSP-RK3 with the van Leer finite-volume advection of :mod:`.sphere` (winds on
the faces, exactly), as many sub-steps per 6 hours as a Courant number of 0.4 needs. After
``spinup`` discarded steps, ``years`` synthetic years of ``steps_per_year`` steps are kept and
split by year like ClimODE's ERA5 (train 2006–2015, validation 2016, test 2017–2018):
the first ``years - 2`` years train, then one validates and one tests.

The set is cached as a ``.pt`` file under :func:`equidyn._cache.default_cache_dir` named by a
hash of its parameters, written atomically; a second call loads it.

>>> import tempfile
>>> data = tracer_dataset(steps_per_year=8, years=3, spinup=4, cache_dir=tempfile.mkdtemp())
>>> data.fields.shape, data.variables, data.split_slices["test"]
(torch.Size([24, 3, 32, 64]), ('z500', 't2m', 'q700'), slice(16, 24, None))
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from equidyn._cache import default_cache_dir
from equidyn._io import atomic_save, load_checkpoint
from equidyn.fields.sphere import LatLonGrid, diffusion, flux_divergence_faces

__all__ = ["TracerConfig", "TracerData", "climatology", "tracer_dataset", "tracer_winds"]

VARIABLES = ("z500", "t2m", "q700")
STEPS_PER_DAY = 4


@dataclass(frozen=True)
class TracerConfig:
    """Parameters of a generated set (its cache key).

    Attributes:
        steps_per_year: 6-hour steps in one synthetic year (the seasonal period).
        years: years kept (>= 3: the last two validate and test).
        spinup: steps run and discarded first.
        seed: seed of the random wind modulations and the initial perturbation.
        n_lat, n_lon: the grid.
    """

    steps_per_year: int = 240
    years: int = 5
    spinup: int = 80
    seed: int = 0
    n_lat: int = 32
    n_lon: int = 64

    def __post_init__(self) -> None:
        if self.steps_per_year < 4:
            raise ValueError(f"steps_per_year must be >= 4, got {self.steps_per_year}")
        if self.years < 3:
            raise ValueError(f"years must be >= 3 (train, val, test), got {self.years}")
        if self.spinup < 0:
            raise ValueError(f"spinup must be >= 0, got {self.spinup}")


@dataclass
class TracerData:
    """A generated set.

    Attributes:
        fields: the frames. ``[n_steps, n_vars, n_lat, n_lon]`` float32
        times: time of each frame in 6-hour steps since the first kept frame. ``[n_steps]``
        variables: names of the variables.
        config: how it was made.
        split_slices: ``"train"``, ``"val"``, ``"test"`` -> frames of that split (whole years).
    """

    fields: Tensor
    times: Tensor
    variables: tuple[str, ...]
    config: TracerConfig

    @property
    def grid(self) -> LatLonGrid:
        return LatLonGrid(self.config.n_lat, self.config.n_lon)

    @property
    def split_slices(self) -> dict[str, slice]:
        y, n = self.config.steps_per_year, self.config.years
        return {"train": slice(0, (n - 2) * y), "val": slice((n - 2) * y, (n - 1) * y),
                "test": slice((n - 1) * y, n * y)}  # fmt: skip


class _Modulation:
    """Seasonal cycle plus random sinusoids: ``mean + seasonal sin + sum a_k sin(w_k t + p_k)``."""

    def __init__(self, mean: float, seasonal: float, noise: float, year: int, g: torch.Generator):
        self.mean, self.seasonal, self.year = mean, seasonal, year
        days = 5 + 25 * torch.rand(3, generator=g, dtype=torch.float64)
        self.omega = 2 * math.pi / (days * STEPS_PER_DAY)
        self.phase = 2 * math.pi * torch.rand(3, generator=g, dtype=torch.float64)
        self.amp = noise * (0.5 + torch.rand(3, generator=g, dtype=torch.float64)) / 1.5
        self.season_phase = float(2 * math.pi * torch.rand((), generator=g, dtype=torch.float64))

    def __call__(self, t: float) -> float:
        s = self.seasonal * math.sin(2 * math.pi * t / self.year + self.season_phase)
        return self.mean + s + float((self.amp * torch.sin(self.omega * t + self.phase)).sum())

    def integral(self, t: float) -> float:
        """The integral from 0 to ``t`` (a phase whose rate is this modulation)."""
        w = 2 * math.pi / self.year
        s = self.seasonal / w * (math.cos(self.season_phase) - math.cos(w * t + self.season_phase))
        waves = (
            self.amp / self.omega * (torch.cos(self.phase) - torch.cos(self.omega * t + self.phase))
        )
        return self.mean * t + s + float(waves.sum())


class _Winds:
    def __init__(self, config: TracerConfig) -> None:
        g = torch.Generator().manual_seed(config.seed)
        y = config.steps_per_year
        self.omega = _Modulation(0.035, 0.01, 0.008, y, g)  # solid body, rad / step
        self.K = _Modulation(0.03, 0.005, 0.015, y, g)  # Rossby-Haurwitz amplitude
        self.alpha_rate = _Modulation(0.06, 0.0, 0.03, y, g)  # phase speed of the wave
        self.D = _Modulation(0.0, 0.012, 0.003, y, g)  # overturning
        self.E = _Modulation(0.006, 0.0, 0.004, y, g)
        self.beta_rate = _Modulation(-0.04, 0.0, 0.02, y, g)

    def coefficients(self, t: float) -> tuple[float, ...]:
        alpha, beta = self.alpha_rate.integral(t), self.beta_rate.integral(t)  # wave phases
        return self.omega(t), self.K(t), alpha, self.D(t), self.E(t), beta


def _uv(lat: Tensor, lon: Tensor, c: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    omega, K, alpha, D, E, beta = c
    cl, sl = torch.cos(lat), torch.sin(lat)
    R = 4
    u = omega * cl + K * torch.cos(R * lon - alpha) * cl ** (R - 1) * (R * sl**2 - cl**2)
    v = -K * R * cl ** (R - 1) * sl * torch.sin(R * lon - alpha)
    u = u - 2 * E * cl * sl * torch.sin(2 * lon - beta)
    v = v + cl * (cl**2 - 2 * sl**2) * (D + E * torch.cos(2 * lon - beta))
    return u, v


def tracer_winds(
    t: float, grid: LatLonGrid, config: TracerConfig | None = None
) -> tuple[Tensor, Tensor]:
    """The generator's winds at time ``t`` (6-hour steps) on the cell faces.

    Returns:
        ``u`` on the east faces ``[n_lat, n_lon]`` and ``v`` on the interior latitude faces
        ``[n_lat - 1, n_lon]``, float64 (unit sphere per 6 hours).

    >>> u, v = tracer_winds(0.0, LatLonGrid())
    >>> u.shape, v.shape
    (torch.Size([32, 64]), torch.Size([31, 64]))
    """
    c = _Winds(config or TracerConfig()).coefficients(t)
    lat_c, lon_e = grid.lat[:, None], (grid.lon + grid.dlon / 2)[None, :]
    lat_f, lon_c = grid.lat_faces[1:-1, None], grid.lon[None, :]
    return _uv(lat_c, lon_e, c)[0], _uv(lat_f, lon_c, c)[1]


def _equilibrium(t: float, grid: LatLonGrid, year: int) -> Tensor:
    lat, lon = grid.lat[:, None], grid.lon[None, :]
    sun = 0.35 * math.sin(2 * math.pi * t / year)  # latitude of the "sun", radians
    day = 2 * math.pi * t / STEPS_PER_DAY  # the subsolar longitude moves west
    z = 1.0 + 0.5 * torch.cos(lat - sun) ** 2 + 0.05 * torch.cos(lat) * torch.cos(lon) ** 2
    t2m = (1.0 + 0.45 * torch.cos(lat - sun) + 0.12 * torch.cos(lat) * torch.cos(2 * lon)
           + 0.08 * torch.cos(lat - sun) * torch.cos(lon + day))  # fmt: skip
    band = torch.exp(-((lat - sun) ** 2) / 0.08) * (1 + 0.6 * torch.cos(3 * lon))
    q = 0.15 + band
    return torch.stack([z, t2m, q.expand_as(z)])  # [3, n_lat, n_lon]


_TAU = torch.tensor([40.0, 20.0, 12.0], dtype=torch.float64)[:, None, None]  # steps
_KAPPA = (2e-4, 4e-4, 3e-4)


def _tendency(q: Tensor, t: float, grid: LatLonGrid, winds: _Winds, year: int) -> Tensor:
    c = winds.coefficients(t)
    lat_c, lon_e = grid.lat[:, None], (grid.lon + grid.dlon / 2)[None, :]
    lat_f, lon_c = grid.lat_faces[1:-1, None], grid.lon[None, :]
    u = _uv(lat_c, lon_e, c)[0]
    v = _uv(lat_f, lon_c, c)[1]
    adv = -flux_divergence_faces(q, u, v, grid, "vanleer")
    diff = torch.stack([diffusion(q[k], _KAPPA[k], grid) for k in range(q.shape[0])])
    return adv + diff + (_equilibrium(t, grid, year) - q) / _TAU


def _max_courant(t: float, grid: LatLonGrid, winds: _Winds) -> float:
    c = winds.coefficients(t)
    lat_c, lon_e = grid.lat[:, None], (grid.lon + grid.dlon / 2)[None, :]
    u = _uv(lat_c, lon_e, c)[0] / torch.cos(lat_c)
    v = _uv(grid.lat_faces[1:-1, None], grid.lon[None, :], c)[1]
    return max(float(u.abs().max()) / grid.dlon, float(v.abs().max()) / grid.dlat)


def generate(config: TracerConfig) -> TracerData:
    """Integrate the tracer equations (no cache; see :func:`tracer_dataset`)."""
    grid = LatLonGrid(config.n_lat, config.n_lon)
    winds = _Winds(config)
    g = torch.Generator().manual_seed(config.seed + 1)
    y = config.steps_per_year
    q = _equilibrium(0.0, grid, y) * (1 + 0.05 * torch.randn(3, *grid.shape, generator=g,
                                                             dtype=torch.float64))  # fmt: skip
    t0 = -float(config.spinup)
    frames = []
    for step in range(config.spinup + config.years * y):
        t = t0 + step
        if step >= config.spinup:
            frames.append(q.to(torch.float32))
        n_sub = max(1, math.ceil(max(_max_courant(t, grid, winds),
                                     _max_courant(t + 1, grid, winds)) / 0.4))  # fmt: skip
        h = 1.0 / n_sub
        for k in range(n_sub):  # SSP-RK3 (Shu-Osher)
            s = t + k * h
            q1 = q + h * _tendency(q, s, grid, winds, y)
            q2 = 0.75 * q + 0.25 * (q1 + h * _tendency(q1, s + h, grid, winds, y))
            q = q / 3 + 2 / 3 * (q2 + h * _tendency(q2, s + h / 2, grid, winds, y))
    fields = torch.stack(frames)  # [n_steps, 3, n_lat, n_lon]
    if not bool(torch.isfinite(fields).all()):
        raise RuntimeError(f"tracer integration blew up for {config}")
    times = torch.arange(len(frames), dtype=torch.float32)
    return TracerData(fields, times, VARIABLES, config)


def tracer_dataset(steps_per_year: int = 240, years: int = 5, spinup: int = 80, seed: int = 0,
                   cache_dir: str | Path | None = None) -> TracerData:  # fmt: skip
    """The generated set of :class:`TracerConfig` ``(steps_per_year, years, spinup, seed)``,
    loaded from the cache or made and cached (atomically) on first use."""
    config = TracerConfig(steps_per_year, years, spinup, seed)
    key = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir or default_cache_dir()) / "fields" / f"tracers-{key}.pt"
    if path.is_file():
        saved = load_checkpoint(path)
        if saved.get("config") == asdict(config):
            return TracerData(saved["fields"], saved["times"], tuple(saved["variables"]), config)
    data = generate(config)
    atomic_save({"config": asdict(config), "fields": data.fields, "times": data.times,
                 "variables": list(data.variables)}, path)  # fmt: skip
    return data


def climatology(data: TracerData, window: int = 4) -> Tensor:
    """Mean field of each step of the year over the training years, smoothed by a centred
    window of ``2 window + 1`` steps (periodic in the year): the reference of anomalies (ACC).

    Returns:
        ``[steps_per_year, n_vars, n_lat, n_lon]``; the climatology of frame ``n`` is row
        ``n % steps_per_year``.
    """
    y = data.config.steps_per_year
    train = data.fields[data.split_slices["train"]].to(torch.float64)
    per_step = train.reshape(-1, y, *train.shape[1:]).mean(0)  # [y, vars, lat, lon]
    smooth = torch.stack([torch.roll(per_step, k, 0) for k in range(-window, window + 1)]).sum(0)
    return (smooth / (2 * window + 1)).to(torch.float32)
