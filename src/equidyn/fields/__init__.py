"""Fields rather than particles: data on grids and the models that forecast them.

- Data generated here (cached atomically, no download): tracers advected on a global
  latitude-longitude grid (ClimODE's 5.625° ERA5 layout, 32×64), 2-D Navier–Stokes vorticity
  and the 2-D wave equation on 64×64 periodic grids.
- Models: ClimODE (advection neural ODE on the sphere with an emission head) and DINo (an
  amplitude-modulated implicit neural representation whose codes follow a latent ODE), with the
  grid-bound baselines they are compared to.

The package sits above :mod:`equidyn.train` (its tasks run on the one trainer).
"""

from __future__ import annotations

__all__: list[str] = []
