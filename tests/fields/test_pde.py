"""The field solvers: exact decaying modes, energy balance, exact waves, resampling, errors."""

from __future__ import annotations

import math

import pytest
import torch

from equidyn.fields.pde import (
    dino_forcing,
    gaussian_random_field,
    navier_stokes_dataset,
    navier_stokes_energy,
    solve_navier_stokes,
    solve_wave,
    spectral_resample,
    wave_dataset,
    wave_energy,
)

N = 32
X = torch.arange(N, dtype=torch.float64) / N
XX, YY = torch.meshgrid(X, X, indexing="ij")


def test_laplacian_eigenmodes_decay_exactly():
    # a sum of modes with the same |n|^2 = 25 has u . grad w = 0: pure exp(-nu |k|^2 t) decay
    w0 = torch.cos(2 * math.pi * (3 * XX + 4 * YY)) + 0.5 * torch.sin(2 * math.pi * 5 * YY)
    nu = 1e-3
    w = solve_navier_stokes(w0, torch.tensor([0.0, 0.5, 1.0]), viscosity=nu, dt=0.05)
    for i, t in enumerate([0.0, 0.5, 1.0]):
        expected = w0 * math.exp(-nu * 25 * 4 * math.pi**2 * t)
        assert torch.allclose(w[i], expected, atol=5e-4)  # Crank-Nicolson: O(dt^2) in time


def test_unforced_energy_decays_at_the_rate_of_the_enstrophy():
    # dE/dt = -nu * int w^2 for 2-D incompressible flow: advection must conserve energy
    w0 = gaussian_random_field(2, N, generator=torch.Generator().manual_seed(1))
    nu, dt = 1e-2, 1e-3
    w = solve_navier_stokes(w0, torch.tensor([0.0, 0.01, 0.02]), viscosity=nu, dt=dt)
    e = navier_stokes_energy(w)  # [2, 3]
    assert (e.diff(dim=1) < 0).all()
    rate = (e[:, 2] - e[:, 0]) / 0.02
    expected = -nu * (w[:, 1] ** 2).mean(dim=(-2, -1))
    assert torch.allclose(rate, expected, rtol=2e-3)


def test_nonlinear_term_moves_the_field():
    # a mixed field changes beyond pure diffusion (the advection term is live)
    w0 = gaussian_random_field(1, N, generator=torch.Generator().manual_seed(2))[0]
    with_adv = solve_navier_stokes(w0, torch.tensor([1.0]), viscosity=1e-3, dt=5e-3)[0]
    k2 = (2 * math.pi) ** 2 * (torch.fft.fftfreq(N, 1 / N)[:, None] ** 2
                               + torch.fft.fftfreq(N, 1 / N)[None, :] ** 2)  # fmt: skip
    diffused = torch.fft.ifft2(torch.fft.fft2(w0) * torch.exp(-1e-3 * k2)).real
    assert (with_adv - diffused).abs().max() > 0.05 * w0.abs().max()


def test_time_step_convergence_is_second_order():
    w0 = gaussian_random_field(1, N, generator=torch.Generator().manual_seed(3))
    t = torch.tensor([0.2])
    f = dino_forcing(N)
    ref = solve_navier_stokes(w0, t, 1e-3, f, dt=5e-3)
    e1 = (solve_navier_stokes(w0, t, 1e-3, f, dt=0.04) - ref).abs().max()
    e2 = (solve_navier_stokes(w0, t, 1e-3, f, dt=0.02) - ref).abs().max()
    assert 3.0 < float(e1 / e2) < 5.0


def test_wave_standing_mode_and_energy_conservation():
    u0 = torch.cos(2 * math.pi * XX) * torch.sin(2 * math.pi * 2 * YY)
    c, times = 0.7, torch.linspace(0, 3, 7, dtype=torch.float64)
    s = solve_wave(u0, torch.zeros_like(u0), times, speed=c)
    omega = c * 2 * math.pi * math.sqrt(5)
    for i, t in enumerate(times.tolist()):
        assert torch.allclose(s[i, 0], u0 * math.cos(omega * t), atol=1e-10)
        assert torch.allclose(s[i, 1], -omega * u0 * math.sin(omega * t), atol=1e-9)
    rand = gaussian_random_field(2, N, generator=torch.Generator().manual_seed(4))
    e = wave_energy(solve_wave(rand[0], rand[1], times, speed=c), speed=c)
    assert torch.allclose(e, e[0].expand_as(e), rtol=1e-10)


def test_resampling_is_exact_for_band_limited_fields():
    f = torch.sin(2 * math.pi * (2 * XX + YY)) + torch.cos(2 * math.pi * 5 * YY)
    fine = spectral_resample(f, 2 * N)
    xf = torch.arange(2 * N, dtype=torch.float64) / (2 * N)
    XF, YF = torch.meshgrid(xf, xf, indexing="ij")
    exact = torch.sin(2 * math.pi * (2 * XF + YF)) + torch.cos(2 * math.pi * 5 * YF)
    assert torch.allclose(fine, exact, atol=1e-10)
    assert torch.allclose(spectral_resample(fine, N), f, atol=1e-10)


def test_datasets_are_cached_and_shaped(tmp_path):
    a = navier_stokes_dataset(2, size=16, frames=3, dt=0.05, cache_dir=tmp_path)
    assert a.fields.shape == (2, 3, 1, 16, 16) and a.fields.dtype == torch.float32
    assert len(list((tmp_path / "fields").iterdir())) == 1
    b = navier_stokes_dataset(2, size=16, frames=3, dt=0.05, cache_dir=tmp_path)
    assert torch.equal(a.fields, b.fields)
    assert a.at_resolution(32).shape == (2, 3, 1, 32, 32)
    w = wave_dataset(3, size=16, frames=4, cache=False)
    assert w.fields.shape == (3, 4, 2, 16, 16) and torch.isfinite(w.fields).all()


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="square grid"):
        solve_navier_stokes(torch.zeros(8, 6), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="NaN"):
        solve_navier_stokes(torch.full((8, 8), math.nan), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="increasing"):
        solve_navier_stokes(torch.zeros(8, 8), torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="forcing"):
        solve_navier_stokes(torch.zeros(8, 8), torch.tensor([1.0]), forcing=torch.zeros(4, 4))
    with pytest.raises(ValueError, match="even"):
        spectral_resample(torch.zeros(8, 8), 9)
    with pytest.raises(ValueError, match="v0"):
        solve_wave(torch.zeros(8, 8), torch.zeros(4, 4), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="state"):
        wave_energy(torch.zeros(3, 8, 8))
