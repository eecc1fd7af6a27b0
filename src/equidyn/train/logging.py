"""A CSV metrics log that survives interruptions and resumes cleanly.

Each :meth:`CSVLogger.log` call appends one row and flushes it, so a crash loses at most the
row being written. Reopening an existing log with ``resume=True`` keeps its rows and its
columns; new keys that appear later are a ``ValueError`` (a CSV has one header).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
>>> with CSVLogger(path) as log:
...     log.log({"epoch": 1, "loss": 0.5})
...     log.log({"epoch": 2, "loss": 0.25})
>>> print(path.read_text().strip())
epoch,loss
1,0.5
2,0.25
>>> [row["loss"] for row in read_csv_log(path)]
[0.5, 0.25]
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["CSVLogger", "read_csv_log"]


class CSVLogger:
    """Append-only CSV log of metric dictionaries (see the module docstring).

    Args:
        path: the CSV file.
        resume: keep an existing file's rows (``True``) or start it anew (``False``).
    """

    def __init__(self, path: str | os.PathLike[str], resume: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fieldnames: list[str] | None = None
        if resume and self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), None)
            self.fieldnames = header
            self._file = open(self.path, "a", newline="")
        else:
            self._file = open(self.path, "w", newline="")
        self._writer: csv.DictWriter[str] | None = None

    def log(self, row: dict[str, Any]) -> None:
        """Append one row; the first row fixes the columns."""
        if self.fieldnames is None:
            self.fieldnames = list(row)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=self.fieldnames)
            if self._file.tell() == 0:
                self._writer.writeheader()
        extra = set(row) - set(self.fieldnames)
        if extra:
            raise ValueError(
                f"log row has new columns {sorted(extra)}; the log {str(self.path)!r} has "
                f"columns {self.fieldnames}"
            )
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CSVLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_csv_log(path: str | os.PathLike[str]) -> list[dict[str, float | str]]:
    """Read a log written by :class:`CSVLogger`; numbers come back as floats (ints stay ints)."""

    def parse(v: str) -> float | str:
        for cast in (int, float):
            try:
                return cast(v)
            except ValueError:
                pass
        return v

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]
