r"""Field data generated here: 2-D Navier–Stokes vorticity and the 2-D wave equation on the
periodic unit square, solved pseudo-spectrally in torch and cached atomically.

**Navier–Stokes** (vorticity form, DINo's and FNO's ν = 1e-3 setting) on :math:`[0, 1)^2`:

.. math::

    \partial_t w + u \cdot \nabla w = \nu \Delta w + f, \qquad
    u = (\partial_y \psi, -\partial_x \psi), \quad -\Delta \psi = w, \qquad
    f(x, y) = 0.1\,(\sin 2\pi(x + y) + \cos 2\pi(x + y)).

In Fourier space (wavevector :math:`k = 2\pi n`, :math:`n \in \mathbb{Z}^2`) viscosity is
treated by Crank–Nicolson and advection explicitly by Heun's method (a predictor then the
trapezoidal corrector), both stages with the 2/3 dealiasing rule on the product
:math:`u \cdot \nabla w`: a second-order IMEX scheme. The initial vorticity is a Gaussian
random field with spectrum :math:`\propto (4\pi^2 |n|^2 + \tau^2)^{-\alpha/2}`, α = 2.5, τ = 7
(the FNO/DINo sampler), zero mean.

**Wave equation** :math:`u_{tt} = c^2 \Delta u` on the same square, solved exactly in time
mode by mode, :math:`\hat u_k(t) = \hat u_k(0) \cos \omega t + \hat v_k(0) \sin(\omega t) / \omega`
with :math:`\omega = c|k|`; the state is :math:`(u, \partial_t u)` and the energy
:math:`E = \tfrac12 \int u_t^2 + c^2 |\nabla u|^2` is conserved to round-off.

Both solutions are trigonometric polynomials of the solver's grid, so :func:`spectral_resample`
evaluates them exactly on any finer square grid (the new-grid evaluation of DINo).

Fields are laid out ``(trajectories, frames, channels, H, W)``; grid point ``(i, j)`` sits at
``(x, y) = (i / H, j / W)``.

>>> data = navier_stokes_dataset(2, size=32, frames=3, dt=5e-3, seed=0, cache=False)
>>> tuple(data.fields.shape), data.times.tolist()
((2, 3, 1, 32, 32), [0.0, 1.0, 2.0])
>>> tuple(spectral_resample(data.fields, 64).shape)
(2, 3, 1, 64, 64)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from equidyn._cache import default_cache_dir
from equidyn._io import atomic_save, load_checkpoint

__all__ = [
    "FieldTrajectories",
    "dino_forcing",
    "gaussian_random_field",
    "navier_stokes_dataset",
    "navier_stokes_energy",
    "solve_navier_stokes",
    "solve_wave",
    "spectral_resample",
    "wave_dataset",
    "wave_energy",
]


def _check_grid(field: Tensor, name: str) -> tuple[int, int]:
    if field.dim() < 2:
        raise ValueError(
            f"{name} must end in (H, W) grid dimensions, got shape {tuple(field.shape)}"
        )
    h, w = field.shape[-2:]
    if h != w or h < 4 or h % 2:
        raise ValueError(f"{name} must be on a square grid of even size >= 4, got {h}x{w}")
    if not torch.isfinite(field).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return h, w


def _wavenumbers(n: int, like: Tensor) -> tuple[Tensor, Tensor]:
    """Angular wavenumbers ``(kx, ky)`` of an ``n x n`` rfft2 grid, each ``[n, n // 2 + 1]``."""
    real = like.real.dtype if like.is_complex() else like.dtype
    kx = 2 * math.pi * torch.fft.fftfreq(n, 1.0 / n, dtype=real, device=like.device)
    ky = 2 * math.pi * torch.fft.rfftfreq(n, 1.0 / n, dtype=real, device=like.device)
    return kx[:, None].expand(n, n // 2 + 1), ky[None, :].expand(n, n // 2 + 1)


def dino_forcing(size: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """DINo's forcing ``0.1 (sin 2π(x + y) + cos 2π(x + y))`` on a ``size x size`` grid.

    Returns ``[size, size]``.

    >>> float(dino_forcing(8)[0, 0])
    0.1
    """
    t = torch.arange(size, dtype=dtype) / size
    s = 2 * math.pi * (t[:, None] + t[None, :])
    return 0.1 * (torch.sin(s) + torch.cos(s))


def gaussian_random_field(
    n: int,
    size: int,
    alpha: float = 2.5,
    tau: float = 7.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    r"""``n`` zero-mean periodic Gaussian random fields on a ``size x size`` grid.

    Returns ``[n, size, size]``.

    Fourier coefficient :math:`n` has standard deviation
    :math:`\propto \tau^{\alpha - 1} (4\pi^2 |n|^2 + \tau^2)^{-\alpha/2}` (the covariance
    :math:`\tau^{2\alpha-2}(-\Delta + \tau^2)^{-\alpha}` of FNO's and DINo's initial vorticity).

    >>> w = gaussian_random_field(3, 16, generator=torch.Generator().manual_seed(0))
    >>> tuple(w.shape), abs(float(w.mean())) < 1e-12
    ((3, 16, 16), True)
    """
    if n < 1 or size < 4 or size % 2:
        raise ValueError(f"need n >= 1 and an even size >= 4, got n={n}, size={size}")
    freq = torch.fft.fftfreq(size, 1.0 / size, dtype=dtype)
    k2 = freq[:, None] ** 2 + freq[None, :] ** 2
    sigma = tau ** (alpha - 1.0)
    amp = size**2 * math.sqrt(2.0) * sigma * (4 * math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    amp[0, 0] = 0.0
    re = torch.randn(n, size, size, generator=generator, dtype=dtype)
    im = torch.randn(n, size, size, generator=generator, dtype=dtype)
    return torch.fft.ifft2(amp * torch.complex(re, im)).real  # [n, size, size]


def spectral_resample(field: Tensor, size: int) -> Tensor:
    """The band-limited interpolant of ``field (..., H, H)`` evaluated on a ``size x size`` grid.

    Zero-pads (``size > H``) or truncates (``size < H``) the Fourier coefficients, so a
    trigonometric polynomial of the ``H`` grid is evaluated exactly at the new points (the
    Nyquist mode is dropped, as the 2/3 rule leaves it empty). Returns ``(..., size, size)``.

    >>> x = torch.arange(8) / 8
    >>> f = torch.sin(2 * torch.pi * x)[:, None].expand(8, 8)
    >>> fine = spectral_resample(f, 16)
    >>> bool(torch.allclose(fine[::2, ::2], f, atol=1e-6))
    True
    """
    n, _ = _check_grid(field, "field")
    if size < 4 or size % 2:
        raise ValueError(f"size must be an even integer >= 4, got {size}")
    if size == n:
        return field
    spec = torch.fft.rfft2(field)  # [..., n, n // 2 + 1]
    m = min(n, size) // 2  # modes kept per axis: |index| < m
    out = spec.new_zeros(*spec.shape[:-2], size, size // 2 + 1)
    out[..., :m, :m] = spec[..., :m, :m]
    out[..., size - m + 1 :, :m] = spec[..., n - m + 1 :, :m]
    return torch.fft.irfft2(out * (size / n) ** 2, s=(size, size))


def _dealias_mask(n: int, like: Tensor) -> Tensor:
    kx, ky = _wavenumbers(n, like)
    cut = 2 * math.pi * (n / 3)
    return (kx.abs() < cut) & (ky.abs() < cut)  # [n, n // 2 + 1]


def solve_navier_stokes(
    w0: Tensor,
    times: Tensor,
    viscosity: float = 1e-3,
    forcing: Tensor | None = None,
    dt: float = 1e-3,
) -> Tensor:
    """Vorticity at ``times`` from ``w0 [..., n, n]`` (see the module docstring for the scheme).

    ``times`` (increasing, from 0) need not be multiples of ``dt``: each interval is cut into
    equal steps no longer than ``dt``. ``forcing [n, n]`` defaults to none.
    Returns ``[..., len(times), n, n]``.

    >>> x = torch.arange(16, dtype=torch.float64) / 16
    >>> w0 = torch.cos(2 * torch.pi * x)[:, None].expand(16, 16)   # an exact decaying mode
    >>> w = solve_navier_stokes(w0, torch.tensor([0.0, 1.0]), viscosity=0.01, dt=0.05)
    >>> round(float(w[1].max() / w0.max()), 4), round(math.exp(-0.01 * 4 * math.pi**2), 4)
    (0.6738, 0.6738)
    """
    n, _ = _check_grid(w0, "w0")
    times = torch.as_tensor(times, dtype=w0.dtype)
    if times.dim() != 1 or len(times) < 1 or times[0] < 0 or (times.diff() < 0).any():
        raise ValueError(f"times must be a non-empty increasing 1-D tensor >= 0, got {times}")
    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    if viscosity < 0:
        raise ValueError(f"viscosity must be >= 0, got {viscosity}")
    kx, ky = _wavenumbers(n, w0)
    k2 = kx**2 + ky**2
    inv_k2 = torch.where(k2 > 0, 1.0 / k2.clamp_min(1e-30), torch.zeros_like(k2))
    keep = _dealias_mask(n, w0)
    f_hat = 0.0
    if forcing is not None:
        if forcing.shape != (n, n):
            raise ValueError(f"forcing must be [{n}, {n}] like w0, got {tuple(forcing.shape)}")
        f_hat = torch.fft.rfft2(forcing.to(w0.dtype))

    def advection(w_hat: Tensor) -> Tensor:  # dealiased FFT of u . grad w
        psi = w_hat * inv_k2
        u = torch.fft.irfft2(1j * ky * psi, s=(n, n))
        v = torch.fft.irfft2(-1j * kx * psi, s=(n, n))
        wx = torch.fft.irfft2(1j * kx * w_hat, s=(n, n))
        wy = torch.fft.irfft2(1j * ky * w_hat, s=(n, n))
        return torch.fft.rfft2(u * wx + v * wy) * keep

    w_hat = torch.fft.rfft2(w0) * keep
    out, t = [], 0.0
    for t_next in times.tolist():
        steps = math.ceil((t_next - t) / dt - 1e-9) if t_next > t else 0
        if steps:
            h = (t_next - t) / steps
            lhs = 1 + 0.5 * h * viscosity * k2
            rhs = 1 - 0.5 * h * viscosity * k2
            for _ in range(steps):
                n0 = advection(w_hat)
                pred = (rhs * w_hat + h * (f_hat - n0)) / lhs
                w_hat = (rhs * w_hat + h * (f_hat - 0.5 * (n0 + advection(pred)))) / lhs
        t = t_next
        out.append(torch.fft.irfft2(w_hat, s=(n, n)))
    return torch.stack(out, dim=-3)  # [..., len(times), n, n]


def navier_stokes_energy(w: Tensor) -> Tensor:
    r"""Kinetic energy :math:`\tfrac12 \int_{[0,1]^2} |u|^2` of vorticity ``w [..., n, n]``.

    Returns ``[...]``.

    >>> x = torch.arange(16, dtype=torch.float64) / 16
    >>> w = torch.sin(2 * torch.pi * x)[:, None].expand(16, 16)   # u = (0, -cos 2πx / 2π)
    >>> round(float(navier_stokes_energy(w) * 16 * math.pi**2), 6)
    1.0
    """
    n, _ = _check_grid(w, "w")
    kx, ky = _wavenumbers(n, w)
    k2 = kx**2 + ky**2
    power = torch.fft.rfft2(w).abs() ** 2 / n**4  # |coefficient|^2 of the unit-square series
    weight = torch.ones_like(k2)
    weight[:, 1:] = 2.0  # the rfft half spectrum: count the conjugate columns
    if n % 2 == 0:
        weight[:, -1] = 1.0
    inv_k2 = torch.where(k2 > 0, 1.0 / k2.clamp_min(1e-30), torch.zeros_like(k2))
    return 0.5 * (power * weight * inv_k2).sum(dim=(-2, -1))


def solve_wave(u0: Tensor, v0: Tensor, times: Tensor, speed: float = 1.0) -> Tensor:
    """The state ``(u, ∂u/∂t)`` of ``u_tt = c² Δu`` at ``times``, exact mode by mode.

    ``u0, v0 [..., n, n]``; returns ``[..., len(times), 2, n, n]``. The Nyquist modes (index
    ``n / 2`` on either axis), whose derivative a real grid cannot hold, are removed.

    >>> x = torch.arange(8, dtype=torch.float64) / 8
    >>> u0 = torch.cos(2 * torch.pi * x)[:, None].expand(8, 8)          # standing wave
    >>> s = solve_wave(u0, torch.zeros_like(u0), torch.tensor([0.25]), speed=2.0)
    >>> round(float(s[0, 0, 0, 0]), 6), round(math.cos(math.pi), 6)
    (-1.0, -1.0)
    """
    n, _ = _check_grid(u0, "u0")
    if v0.shape != u0.shape:
        raise ValueError(f"v0 must have u0's shape {tuple(u0.shape)}, got {tuple(v0.shape)}")
    _check_grid(v0, "v0")
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    times = torch.as_tensor(times, dtype=u0.dtype)
    kx, ky = _wavenumbers(n, u0)
    omega = speed * torch.sqrt(kx**2 + ky**2)  # [n, n // 2 + 1]
    safe = torch.where(omega > 0, omega, torch.ones_like(omega))
    nyquist = (kx.abs() >= math.pi * n) | (ky.abs() >= math.pi * n)  # no defined derivative
    u_hat = torch.fft.rfft2(u0).masked_fill(nyquist, 0)
    v_hat = torch.fft.rfft2(v0).masked_fill(nyquist, 0)
    out = []
    for t in times.tolist():
        c, s = torch.cos(omega * t), torch.sin(omega * t)
        sinc = torch.where(omega > 0, s / safe, torch.full_like(s, t))  # sin(ωt)/ω -> t at ω = 0
        u = torch.fft.irfft2(u_hat * c + v_hat * sinc, s=(n, n))
        v = torch.fft.irfft2(-u_hat * omega * s + v_hat * c, s=(n, n))
        out.append(torch.stack([u, v], dim=-3))
    return torch.stack(out, dim=-4)  # [..., len(times), 2, n, n]


def wave_energy(state: Tensor, speed: float = 1.0) -> Tensor:
    r"""Energy :math:`\tfrac12 \int u_t^2 + c^2 |\nabla u|^2` of ``state [..., 2, n, n]``.

    Spectral derivatives; returns ``[...]``.

    >>> x = torch.arange(8, dtype=torch.float64) / 8
    >>> u = torch.cos(2 * torch.pi * x)[:, None].expand(8, 8)
    >>> round(float(wave_energy(torch.stack([u, 0 * u]))) / math.pi**2, 6)   # c²(2π)²/4
    1.0
    """
    if state.dim() < 3 or state.shape[-3] != 2:
        raise ValueError(f"state must be [..., 2, n, n] (u, du/dt), got {tuple(state.shape)}")
    n, _ = _check_grid(state, "state")
    u, v = state[..., 0, :, :], state[..., 1, :, :]
    kx, ky = _wavenumbers(n, u)
    grad2 = torch.fft.irfft2(1j * kx * torch.fft.rfft2(u), s=(n, n)) ** 2
    grad2 = grad2 + torch.fft.irfft2(1j * ky * torch.fft.rfft2(u), s=(n, n)) ** 2
    return 0.5 * (v**2 + speed**2 * grad2).mean(dim=(-2, -1))


@dataclass
class FieldTrajectories:
    """Trajectories of a field sampled on a square grid at common times.

    Attributes:
        fields: ``[trajectories, frames, channels, size, size]``.
        times: ``[frames]``, starting at 0.
        name: what the field is (``"navier_stokes"`` or ``"wave"``).
        params: the settings that made it (also the cache key).
    """

    fields: Tensor
    times: Tensor
    name: str
    params: dict

    @property
    def size(self) -> int:
        return int(self.fields.shape[-1])

    def at_resolution(self, size: int) -> Tensor:
        """The fields on a ``size x size`` grid (spectral interpolation, exact for these
        band-limited solutions): ``[trajectories, frames, channels, size, size]``."""
        return spectral_resample(self.fields, size)


def _cached(
    name: str,
    params: dict,
    make: Callable[[], tuple[Tensor, Tensor]],
    cache: bool,
    cache_dir: str | Path | None,
) -> tuple[Tensor, Tensor]:
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir or default_cache_dir()) / "fields" / f"{name}-{key}.pt"
    if cache and path.is_file():
        saved = load_checkpoint(path)
        if saved.get("params") == params:
            return saved["fields"], saved["times"]
    fields, times = make()
    if cache:
        atomic_save({"params": params, "fields": fields, "times": times}, path)
    return fields, times


def navier_stokes_dataset(
    n: int,
    size: int = 64,
    frames: int = 20,
    dt_out: float = 1.0,
    viscosity: float = 1e-3,
    dt: float = 1e-3,
    burn_in: float = 0.0,
    seed: int = 0,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> FieldTrajectories:
    """``n`` Navier–Stokes vorticity trajectories (DINo's ν = 1e-3 forcing) on ``size x size``.

    Frames are ``dt_out`` apart, the first at time ``burn_in`` after the random initial field
    (the times returned start at 0). Float32 fields ``[n, frames, 1, size, size]``, solved in
    float64; cached under ``<cache>/fields`` keyed by every argument.
    """
    if n < 1 or frames < 1:
        raise ValueError(f"need n >= 1 trajectories and frames >= 1, got n={n}, frames={frames}")
    if not dt_out > 0 or burn_in < 0:
        raise ValueError(f"need dt_out > 0 and burn_in >= 0, got {dt_out}, {burn_in}")
    params = {"n": n, "size": size, "frames": frames, "dt_out": dt_out, "viscosity": viscosity,
              "dt": dt, "burn_in": burn_in, "seed": seed, "alpha": 2.5, "tau": 7.0}  # fmt: skip

    def make() -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(seed)
        w0 = gaussian_random_field(n, size, generator=g)
        times = burn_in + dt_out * torch.arange(frames, dtype=torch.float64)
        w = solve_navier_stokes(w0, times, viscosity, dino_forcing(size), dt)
        return w.unsqueeze(2).float(), (times - burn_in).float()

    fields, times = _cached("navier_stokes", params, make, cache, cache_dir)
    return FieldTrajectories(fields, times, "navier_stokes", params)


def wave_dataset(
    n: int,
    size: int = 64,
    frames: int = 20,
    dt_out: float = 0.05,
    speed: float = 1.0,
    bumps: int = 3,
    seed: int = 0,
    cache: bool = True,
    cache_dir: str | Path | None = None,
) -> FieldTrajectories:
    """``n`` wave trajectories ``(u, u_t)`` from ``bumps`` random periodic Gaussian bumps at rest.

    Each bump has centre uniform in the square, amplitude uniform in [0.5, 1] with a random
    sign and width uniform in [0.08, 0.15]. Fields ``[n, frames, 2, size, size]`` (float32).
    """
    if n < 1 or frames < 1 or bumps < 1:
        raise ValueError(f"need n, frames, bumps >= 1, got {n}, {frames}, {bumps}")
    params = {"n": n, "size": size, "frames": frames, "dt_out": dt_out, "speed": speed,
              "bumps": bumps, "seed": seed}  # fmt: skip

    def make() -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(size, dtype=torch.float64) / size
        centre = torch.rand(n, bumps, 2, generator=g, dtype=torch.float64)
        amp = 0.5 + 0.5 * torch.rand(n, bumps, generator=g, dtype=torch.float64)
        amp = amp * torch.where(torch.rand(n, bumps, generator=g) < 0.5, -1.0, 1.0)
        width = 0.08 + 0.07 * torch.rand(n, bumps, generator=g, dtype=torch.float64)
        dx = (t - centre[..., 0, None] + 0.5) % 1.0 - 0.5  # periodic distance [n, b, s]
        dy = (t - centre[..., 1, None] + 0.5) % 1.0 - 0.5
        r2 = dx[..., :, None] ** 2 + dy[..., None, :] ** 2  # [n, b, s, s]
        u0 = (amp[..., None, None] * torch.exp(-r2 / (2 * width[..., None, None] ** 2))).sum(1)
        times = dt_out * torch.arange(frames, dtype=torch.float64)
        return solve_wave(u0, torch.zeros_like(u0), times, speed).float(), times.float()

    fields, times = _cached("wave", params, make, cache, cache_dir)
    return FieldTrajectories(fields, times, "wave", params)
