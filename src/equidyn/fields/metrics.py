r"""Forecast scores on the latitude-longitude grid, weighted by latitude as in WeatherBench.

With :math:`w_i = \cos\varphi_i / \overline{\cos\varphi}` (mean 1 over the latitudes), for a
forecast :math:`f`, the truth :math:`o` and a climatology :math:`c`:

- latitude-weighted RMSE, per sample then averaged over samples:
  :math:`\mathrm{RMSE} = \big\langle\sqrt{\overline{w\,(f - o)^2}}\big\rangle`;
- anomaly correlation coefficient with anomalies :math:`f' = f - c`, :math:`o' = o - c`:
  :math:`\mathrm{ACC} = \sum w f' o' / \sqrt{\sum w f'^2 \sum w o'^2}` per sample, averaged;
- CRPS of a Gaussian forecast :math:`\mathcal N(\mu, \sigma^2)` (closed form, :math:`z = (o -
  \mu)/\sigma`): :math:`\sigma\,[z(2\Phi(z) - 1) + 2\phi(z) - 1/\sqrt\pi]`, latitude weighted;
- the latitude-weighted Gaussian negative log-likelihood (ClimODE's training loss);
- the area-weighted total ("mass") :math:`\sum_{ij} A_i q_{ij}`.

Fields are ``(..., n_lat, n_lon)``; the scores reduce the last two dimensions (and, for RMSE
and ACC, nothing else: average the rest as you need).

>>> from equidyn.fields.sphere import LatLonGrid
>>> grid = LatLonGrid()
>>> o = torch.randn(4, 32, 64)
>>> clim = torch.ones(32, 64)
>>> float(lat_rmse(o, o, grid).max()), round(float(acc(o + 1, o + 1, clim, grid).mean()), 4)
(0.0, 1.0)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from equidyn.fields.sphere import LatLonGrid

__all__ = ["acc", "gaussian_crps", "gaussian_nll", "lat_rmse", "mass"]


def _check(name: str, a: Tensor, b: Tensor) -> None:
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"{name}: grids differ, {tuple(a.shape)} vs {tuple(b.shape)}")


def lat_rmse(forecast: Tensor, truth: Tensor, grid: LatLonGrid) -> Tensor:
    """Latitude-weighted RMSE of each field. ``[...]``"""
    _check("lat_rmse", forecast, truth)
    grid.check(truth, "truth")
    w = grid.lat_weights.to(forecast)
    return (w * (forecast - truth) ** 2).mean((-2, -1)).sqrt()


def acc(forecast: Tensor, truth: Tensor, climatology: Tensor, grid: LatLonGrid) -> Tensor:
    """Latitude-weighted anomaly correlation of each field against ``climatology``. ``[...]``"""
    _check("acc", forecast, truth)
    w = grid.lat_weights.to(forecast)
    f, o = forecast - climatology, truth - climatology
    num = (w * f * o).sum((-2, -1))
    den = ((w * f**2).sum((-2, -1)) * (w * o**2).sum((-2, -1))).sqrt()
    return num / den.clamp_min(torch.finfo(den.dtype).tiny)


def gaussian_crps(mean: Tensor, std: Tensor, truth: Tensor, grid: LatLonGrid) -> Tensor:
    """Latitude-weighted mean CRPS of the Gaussian forecasts ``N(mean, std²)``. ``[...]``

    >>> from equidyn.fields.sphere import LatLonGrid
    >>> g = LatLonGrid(4, 8)
    >>> z = torch.zeros(4, 8)
    >>> round(float(gaussian_crps(z, z + 1, z, g)), 4)  # sigma (2 phi(0) - 1/sqrt(pi))
    0.2337
    """
    _check("gaussian_crps", mean, truth)
    if bool((std <= 0).any()):
        raise ValueError("gaussian_crps: std must be > 0 everywhere")
    z = (truth - mean) / std
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    crps = std * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))
    return (grid.lat_weights.to(mean) * crps).mean((-2, -1))


def gaussian_nll(mean: Tensor, std: Tensor, truth: Tensor, grid: LatLonGrid) -> Tensor:
    """Latitude-weighted Gaussian negative log-likelihood per cell, ``[...]``:
    :math:`\\overline{w[\\log\\sigma + (o - \\mu)^2 / 2\\sigma^2]} + \\log\\sqrt{2\\pi}`."""
    _check("gaussian_nll", mean, truth)
    nll = torch.log(std) + 0.5 * ((truth - mean) / std) ** 2 + 0.5 * math.log(2 * math.pi)
    return (grid.lat_weights.to(mean) * nll).mean((-2, -1))


def mass(field: Tensor, grid: LatLonGrid) -> Tensor:
    """Area-weighted total of each field on the unit sphere. ``[...]``"""
    grid.check(field)
    return grid.total(field)
