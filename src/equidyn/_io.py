"""Atomic file writes and checkpoint loading: the lowest layer, importable from anywhere.

Saved state (checkpoints, model files, data caches, results, plots) goes through these helpers.
A file is written to a temporary file in the same directory, flushed and fsynced, then moved
over the target with :func:`os.replace`, which is atomic on POSIX and Windows: a crash or a
Ctrl-C while saving leaves either the old file or the new one, never a truncated file.

>>> import tempfile, pathlib, torch
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ckpt.pt"
>>> atomic_save({"epoch": 3, "w": torch.ones(2)}, path)
>>> load_checkpoint(path)["epoch"]
3
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_save", "atomic_write_bytes", "atomic_write_text", "load_checkpoint"]


def _atomic_write(path: str | os.PathLike[str], write: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: never leave the temporary file behind
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save(obj, path)``, atomically (see the module docstring)."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_bytes(data: bytes, path: str | os.PathLike[str]) -> None:
    """Write ``data`` to ``path`` atomically."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(text.encode("utf-8"), path)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint written by :func:`atomic_save`.

    Raises ``FileNotFoundError`` naming the path if it does not exist, and ``ValueError`` if
    the file is not a readable checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # corrupted or foreign file
        raise ValueError(f"{str(path)!r} is not a readable equidyn checkpoint: {e}") from e
