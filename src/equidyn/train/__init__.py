"""Training utilities: atomic checkpoints, CSV logs, and the potential training loop."""

from equidyn.train.checkpoint import atomic_save, atomic_write_text, load_checkpoint
from equidyn.train.logging import CSVLogger, read_csv_log

__all__ = ["atomic_save", "atomic_write_text", "load_checkpoint", "CSVLogger", "read_csv_log"]
