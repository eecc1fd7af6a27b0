"""Training: one task-agnostic trainer, its tasks, atomic checkpoints and CSV logs.

:class:`Trainer` runs the loop (optimiser, schedule, EMA, checkpoints, resume, Ctrl-C,
progress bar, CSV log, best-model selection) for any :class:`Task`;
:class:`~equidyn.train.potential_task.PotentialTask` trains interatomic potentials.
"""

from equidyn.train.checkpoint import atomic_save, atomic_write_text, load_checkpoint
from equidyn.train.logging import CSVLogger, read_csv_log
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
]
