"""Atomic, resumable checkpoints (the helpers live in :mod:`equidyn._io`, below every layer).

Re-exported here, where training code and users have always found them.

>>> import tempfile, pathlib, torch
>>> path = pathlib.Path(tempfile.mkdtemp()) / "ckpt.pt"
>>> atomic_save({"epoch": 3}, path)
>>> load_checkpoint(path)["epoch"]
3
"""

from __future__ import annotations

from equidyn._io import atomic_save, atomic_write_bytes, atomic_write_text, load_checkpoint

__all__ = ["atomic_save", "atomic_write_bytes", "atomic_write_text", "load_checkpoint"]
