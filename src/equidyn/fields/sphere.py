r"""The global latitude-longitude grid and conservative finite-volume operators on it.

The grid is ERA5's at 5.625° as ClimODE and WeatherBench use it: ``n_lat = 32`` cell centres
:math:`\varphi_i = -90° + (i + \tfrac12)\,\Delta\varphi` (the poles are cell *faces*, not
centres) and ``n_lon = 64`` centres :math:`\lambda_j = j\,\Delta\lambda`, periodic in longitude.
On the unit sphere the cell :math:`(i, j)` has area

.. math:: A_i = \Delta\lambda\,(\sin\varphi_{i+1/2} - \sin\varphi_{i-1/2}),

which sums to :math:`4\pi`. Fields are tensors ``(..., n_lat, n_lon)``; velocities are the
physical eastward and northward components ``u, v`` (unit sphere, per unit time).

**Flux divergence.** :func:`flux_divergence` is the finite-volume form of
:math:`\nabla\cdot(q\,\mathbf v)`:

.. math::
    (\nabla\cdot q\mathbf v)_{ij} = \frac{1}{A_i}\Big[\Delta\varphi\,(F_{i,j+1/2} - F_{i,j-1/2})
    + \Delta\lambda\,(\cos\varphi_{i+1/2} G_{i+1/2,j} - \cos\varphi_{i-1/2} G_{i-1/2,j})\Big],

with face fluxes :math:`F = u\,q_\text{face}` (east faces, periodic) and
:math:`G = v\,q_\text{face}` (north faces). The fluxes through the two pole faces are zero, so
:math:`\sum_{ij} A_i (\nabla\cdot q\mathbf v)_{ij} = 0` to round-off: the area-weighted total
of :math:`q` is conserved by :math:`\dot q = -\nabla\cdot(q\mathbf v)` whatever the velocity.
The face value :math:`q_\text{face}` is chosen by ``scheme``:

- ``"upwind"``: the upwind cell's value (first order, monotone, diffusive);
- ``"vanleer"``: MUSCL reconstruction with the van Leer limiter, upwinded (second order where
  the field is smooth, no new extrema; the default);
- ``"centred"``: the mean of the two neighbours (second order, linear in ``q``, not monotone;
  used to fit velocities by least squares, where linearity matters).

Face velocities are given directly (:func:`flux_divergence_faces`, as the tracer generator
does from analytic winds) or averaged from the cell centres (:func:`flux_divergence`).
:func:`diffusion` is the conservative five-point Laplacian with the zonal coefficient tapered
as :math:`\cos^2\varphi` (an explicit step stays stable next to the poles), and
:func:`gradient` the centred gradient :math:`(\partial_x q, \partial_y q)` in physical units.

>>> grid = LatLonGrid()
>>> grid.shape, round(float(grid.total(torch.ones(grid.shape, dtype=torch.float64))), 6)
((32, 64), 12.566371)
>>> q = torch.rand(2, 32, 64, dtype=torch.float64)
>>> u, v = torch.randn(2, 32, 64, dtype=torch.float64), torch.randn(2, 32, 64, dtype=torch.float64)
>>> float(grid.total(flux_divergence(q, u, v, grid)).abs().max()) < 1e-12
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "SCHEMES",
    "LatLonGrid",
    "diffusion",
    "flux_divergence",
    "flux_divergence_faces",
    "gradient",
    "pad_sphere",
]

SCHEMES = ("upwind", "vanleer", "centred")


@dataclass(frozen=True)
class LatLonGrid:
    """An equiangular latitude-longitude grid whose cell centres avoid the poles.

    Args:
        n_lat: latitudes (even, >= 4); 32 is ERA5 at 5.625°.
        n_lon: longitudes (>= 4); 64 is ERA5 at 5.625°.

    All tensors are float64 on the CPU; operators move them to their input's dtype/device.
    """

    n_lat: int = 32
    n_lon: int = 64

    def __post_init__(self) -> None:
        if not (isinstance(self.n_lat, int) and self.n_lat >= 4 and self.n_lat % 2 == 0):
            raise ValueError(f"n_lat must be an even int >= 4, got {self.n_lat!r}")
        if not (isinstance(self.n_lon, int) and self.n_lon >= 4):
            raise ValueError(f"n_lon must be an int >= 4, got {self.n_lon!r}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_lat, self.n_lon)

    @property
    def dlat(self) -> float:
        """Δφ in radians."""
        return math.pi / self.n_lat

    @property
    def dlon(self) -> float:
        """Δλ in radians."""
        return 2 * math.pi / self.n_lon

    @property
    def lat(self) -> Tensor:
        """Latitudes of the cell centres, radians, south to north. ``[n_lat]``"""
        return -math.pi / 2 + (torch.arange(self.n_lat, dtype=torch.float64) + 0.5) * self.dlat

    @property
    def lat_faces(self) -> Tensor:
        """Latitudes of the cell faces, from the south pole to the north pole. ``[n_lat + 1]``"""
        return -math.pi / 2 + torch.arange(self.n_lat + 1, dtype=torch.float64) * self.dlat

    @property
    def lon(self) -> Tensor:
        """Longitudes of the cell centres, radians, from 0. ``[n_lon]``"""
        return torch.arange(self.n_lon, dtype=torch.float64) * self.dlon

    @property
    def area(self) -> Tensor:
        """Cell areas on the unit sphere (sum 4π). ``[n_lat, 1]`` (broadcasts over longitude)"""
        s = torch.sin(self.lat_faces)
        return (self.dlon * (s[1:] - s[:-1]))[:, None]

    @property
    def lat_weights(self) -> Tensor:
        """WeatherBench's latitude weights cos φ / mean(cos φ) (mean 1). ``[n_lat, 1]``"""
        c = torch.cos(self.lat)
        return (c / c.mean())[:, None]

    def check(self, field: Tensor, name: str = "field") -> None:
        """Raise ``ValueError`` unless ``field`` is ``(..., n_lat, n_lon)`` and finite."""
        if not isinstance(field, Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(field).__name__}")
        if field.dim() < 2 or tuple(field.shape[-2:]) != self.shape:
            raise ValueError(
                f"{name} must have shape (..., {self.n_lat}, {self.n_lon}) on this grid, "
                f"got {tuple(field.shape)}"
            )
        if not bool(torch.isfinite(field).all()):
            bad = int((~torch.isfinite(field)).sum())
            raise ValueError(f"{name} has {bad} non-finite values (NaN or inf)")

    def total(self, field: Tensor) -> Tensor:
        """Area-weighted integral :math:`\\sum_{ij} A_i q_{ij}` over the sphere. ``[...]``"""
        return (field * self.area.to(field)).sum((-2, -1))


def _vanleer(a: Tensor, b: Tensor) -> Tensor:
    """The van Leer limited slope 2ab/(a+b) where a, b have the same sign, else 0."""
    ab = a * b
    pos = ab > 0
    return torch.where(
        pos, 2 * ab / torch.where(pos, a + b, torch.ones_like(a)), torch.zeros_like(a)
    )


def _face_values(q: Tensor, dim: int, periodic: bool, scheme: str) -> tuple[Tensor, Tensor]:
    """``(left, right)`` reconstructions at the faces between cells k and k+1 along ``dim``.

    Periodic: n faces (the last between cell n-1 and cell 0). Otherwise n-1 interior faces.
    """
    if periodic:
        nxt = torch.roll(q, -1, dim)
        if scheme == "vanleer":
            s = _vanleer(q - torch.roll(q, 1, dim), nxt - q)
            return q + 0.5 * s, nxt - 0.5 * torch.roll(s, -1, dim)
        return q, nxt
    n = q.shape[dim]
    lo, hi = q.narrow(dim, 0, n - 1), q.narrow(dim, 1, n - 1)
    if scheme == "vanleer":
        d = hi - lo  # differences across the interior faces
        s = _vanleer(d.narrow(dim, 0, n - 2), d.narrow(dim, 1, n - 2))  # interior cells
        zero = torch.zeros_like(q.narrow(dim, 0, 1))
        s = torch.cat([zero, s, zero], dim)  # the two end rows (next to the poles): no slope
        return lo + 0.5 * s.narrow(dim, 0, n - 1), hi - 0.5 * s.narrow(dim, 1, n - 1)
    return lo, hi


def _upwinded(left: Tensor, right: Tensor, vel: Tensor, scheme: str) -> Tensor:
    if scheme == "centred":
        return vel * 0.5 * (left + right)
    return torch.where(vel > 0, vel * left, vel * right)


def flux_divergence_faces(q: Tensor, u_east: Tensor, v_north: Tensor, grid: LatLonGrid,
                          scheme: str = "vanleer") -> Tensor:  # fmt: skip
    """:math:`\\nabla\\cdot(q\\mathbf v)` from face velocities (see the module docstring).

    Args:
        q: the field. ``[..., n_lat, n_lon]``
        u_east: eastward velocity on the east face of each cell (between j and j+1,
            periodic). ``[..., n_lat, n_lon]``
        v_north: northward velocity on the n_lat - 1 interior latitude faces (between rows i
            and i+1; the pole faces carry no flux). ``[..., n_lat - 1, n_lon]``
        grid: the grid.
        scheme: ``"upwind"``, ``"vanleer"`` or ``"centred"``.

    Returns:
        The divergence, area-weighted sum zero to round-off. ``[..., n_lat, n_lon]``
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    F = _upwinded(*_face_values(q, -1, True, scheme), u_east, scheme)  # [..., n_lat, n_lon]
    G = _upwinded(*_face_values(q, -2, False, scheme), v_north, scheme)  # [..., n_lat-1, n_lon]
    cos_f = torch.cos(grid.lat_faces[1:-1]).to(q)[:, None]
    G = G * cos_f * grid.dlon
    zero = torch.zeros_like(G[..., :1, :])
    G = torch.cat([zero, G, zero], -2)  # pole faces: zero flux
    div = grid.dlat * (F - torch.roll(F, 1, -1)) + (G[..., 1:, :] - G[..., :-1, :])
    return div / grid.area.to(q)


def flux_divergence(q: Tensor, u: Tensor, v: Tensor, grid: LatLonGrid,
                    scheme: str = "vanleer") -> Tensor:  # fmt: skip
    """:math:`\\nabla\\cdot(q\\mathbf v)` with cell-centre velocities averaged onto the faces.

    Args:
        q, u, v: field, eastward and northward velocity at the cell centres.
            ``[..., n_lat, n_lon]`` each (broadcastable)
        grid, scheme: as :func:`flux_divergence_faces`.

    Returns:
        ``[..., n_lat, n_lon]``
    """
    u_east = 0.5 * (u + torch.roll(u, -1, -1))
    v_north = 0.5 * (v[..., 1:, :] + v[..., :-1, :])
    return flux_divergence_faces(q, u_east, v_north, grid, scheme)


def diffusion(q: Tensor, kappa: float, grid: LatLonGrid) -> Tensor:
    """Conservative diffusion :math:`\\kappa\\nabla^2 q` with the zonal part tapered by cos²φ.

    Zonal face flux :math:`\\kappa\\cos\\varphi_i (q_{j+1} - q_j)/\\Delta\\lambda`, meridional
    :math:`\\kappa (q_{i+1} - q_i)/\\Delta\\varphi`, none through the poles; so the zonal
    term is :math:`\\kappa\\,\\partial^2_\\lambda q` (stable for explicit steps at every
    latitude) and the area-weighted total is unchanged. ``[..., n_lat, n_lon]``
    """
    cos_c = torch.cos(grid.lat).to(q)[:, None]
    F = kappa * cos_c * (torch.roll(q, -1, -1) - q) / grid.dlon * grid.dlat
    cos_f = torch.cos(grid.lat_faces[1:-1]).to(q)[:, None]
    G = kappa * cos_f * (q[..., 1:, :] - q[..., :-1, :]) / grid.dlat * grid.dlon
    zero = torch.zeros_like(G[..., :1, :])
    G = torch.cat([zero, G, zero], -2)
    return ((F - torch.roll(F, 1, -1)) + (G[..., 1:, :] - G[..., :-1, :])) / grid.area.to(q)


def pad_sphere(x: Tensor, width: int = 1) -> Tensor:
    """Pad ``[..., n_lat, n_lon]`` by ``width`` cells: periodic in longitude; across a pole the
    row beyond it is the same latitude half a turn away (what lies over the pole).
    ``[..., n_lat + 2 width, n_lon + 2 width]``"""
    if width < 1:
        return x
    n_lon = x.shape[-1]
    if n_lon % 2:
        raise ValueError(f"pad_sphere needs an even number of longitudes, got {n_lon}")
    over = torch.roll(x, n_lon // 2, -1)
    south = over[..., :width, :].flip(-2)
    north = over[..., -width:, :].flip(-2)
    x = torch.cat([south, x, north], -2)
    return torch.cat([x[..., -width:], x, x[..., :width]], -1)


def gradient(q: Tensor, grid: LatLonGrid) -> tuple[Tensor, Tensor]:
    """Centred physical gradient ``(∂q/∂x, ∂q/∂y)`` = ``(∂_λ q / cos φ, ∂_φ q)``, with
    :func:`pad_sphere` across the poles. ``[..., n_lat, n_lon]`` each"""
    p = pad_sphere(q, 1)
    cos_c = torch.cos(grid.lat).to(q)[:, None]
    dx = (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]) / (2 * grid.dlon) / cos_c
    dy = (p[..., 2:, 1:-1] - p[..., :-2, 1:-1]) / (2 * grid.dlat)
    return dx, dy
