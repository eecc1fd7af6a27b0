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

from equidyn.fields.climode import ClimODE, FlowNetwork, SphereConv2d, fit_velocity
from equidyn.fields.dino import (
    DINo,
    LatentDynamics,
    ModulatedMFN,
    evaluate_dino,
    fit_codes,
    forecast_dino,
    grid_coords,
    split_mse,
    subsampling_mask,
    train_dino,
)
from equidyn.fields.grid_models import PeriodicCNN, grid_rollout, train_grid_model
from equidyn.fields.metrics import acc, gaussian_crps, gaussian_nll, lat_rmse, mass
from equidyn.fields.pde import (
    FieldTrajectories,
    navier_stokes_dataset,
    solve_navier_stokes,
    solve_wave,
    spectral_resample,
    wave_dataset,
)
from equidyn.fields.sphere import LatLonGrid, diffusion, flux_divergence, flux_divergence_faces
from equidyn.fields.tracers import TracerConfig, TracerData, climatology, tracer_dataset
from equidyn.fields.weather_baselines import ARResNet, Climatology, Persistence
from equidyn.fields.weather_task import WeatherForecastTask

__all__: list[str] = [
    # ClimODE and its tracers on the sphere
    "ARResNet",
    "ClimODE",
    "Climatology",
    "FlowNetwork",
    "LatLonGrid",
    "Persistence",
    "SphereConv2d",
    "TracerConfig",
    "TracerData",
    "WeatherForecastTask",
    "acc",
    "climatology",
    "diffusion",
    "fit_velocity",
    "flux_divergence",
    "flux_divergence_faces",
    "gaussian_crps",
    "gaussian_nll",
    "lat_rmse",
    "mass",
    "tracer_dataset",
    # DINo and its PDE data on periodic grids
    "DINo",
    "FieldTrajectories",
    "LatentDynamics",
    "ModulatedMFN",
    "PeriodicCNN",
    "evaluate_dino",
    "fit_codes",
    "forecast_dino",
    "grid_coords",
    "grid_rollout",
    "navier_stokes_dataset",
    "solve_navier_stokes",
    "solve_wave",
    "spectral_resample",
    "split_mse",
    "subsampling_mask",
    "train_dino",
    "train_grid_model",
    "wave_dataset",
]
