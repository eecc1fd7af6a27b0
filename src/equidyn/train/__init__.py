"""Training: one task-agnostic trainer, its tasks, atomic checkpoints and CSV logs.

:class:`Trainer` runs the loop (optimiser, schedule, EMA, checkpoints, resume, Ctrl-C,
progress bar, CSV log, best-model selection) for any :class:`Task`;
:class:`PotentialTask` trains interatomic potentials, :class:`ForecastTask` forecasting models
on windows of trajectories (:func:`train_forecaster`). Under ``torchrun`` the same trainer
runs data parallel (:func:`init_distributed`, :class:`ShardedTask`). :func:`load_config`
reads a YAML config and :func:`run_training` runs all of ``equidyn train`` from Python;
:func:`evaluate_potential` gives the error metrics of a potential on labelled structures.
"""

from equidyn.train.checkpoint import atomic_save, atomic_write_text, load_checkpoint
from equidyn.train.cli import run_training
from equidyn.train.config import Config, load_config
from equidyn.train.distributed import (
    DistributedContext,
    ShardedTask,
    balanced_partition,
    init_distributed,
)
from equidyn.train.forecast_task import ForecastTask, forecast_mse, train_forecaster
from equidyn.train.logging import CSVLogger, read_csv_log
from equidyn.train.potential_task import PotentialTask, evaluate_potential, potential_trainer
from equidyn.train.task import EpochStats, RegressionTask, Task
from equidyn.train.trainer import Trainer

__all__ = [
    "atomic_save",
    "atomic_write_text",
    "load_checkpoint",
    "CSVLogger",
    "read_csv_log",
    "EpochStats",
    "RegressionTask",
    "Task",
    "Trainer",
    "DistributedContext",
    "ShardedTask",
    "balanced_partition",
    "init_distributed",
    "Config",
    "load_config",
    "run_training",
    "ForecastTask",
    "forecast_mse",
    "train_forecaster",
    "PotentialTask",
    "evaluate_potential",
    "potential_trainer",
]
