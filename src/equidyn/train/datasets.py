"""Loading the structures a training run or an evaluation needs.

A data source is a file ASE can read (``.extxyz``, ``.xyz``, ``.traj``, ...) or a built-in set
written ``"builtin:NAME"`` (optionally ``"builtin:NAME:N"`` for its first ``N`` structures of a
set of size ``N``), see :mod:`equidyn.data.builtin`.

>>> import tempfile
>>> graphs = load_structures("builtin:cuau-emt:2", r_max=3.0, cache_dir=tempfile.mkdtemp())
>>> len(graphs), graphs[0].energy is not None
(2, True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from equidyn.graph import AtomicGraph

__all__ = ["load_structures", "batches"]


def load_structures(
    source: str | os.PathLike[str],
    r_max: float,
    n_structures: int = 3000,
    seed: int = 0,
    energy_key: str | None = "energy",
    forces_key: str | None = "forces",
    stress_key: str | None = "stress",
    type_map: Sequence[str | int] | None = None,
    cache_dir: str | None = None,
    dtype: torch.dtype = torch.float64,
) -> list[AtomicGraph]:
    """Labelled single-structure graphs with edges of cutoff ``r_max`` (Å).

    Errors (missing file, empty file, missing label) are ``ValueError`` / ``FileNotFoundError``
    naming the file and, where it applies, the structure.
    """
    text = str(source)
    if text.startswith("builtin:"):
        from equidyn.data.builtin import builtin_dataset

        parts = text.split(":")
        name = parts[1]
        n = int(parts[2]) if len(parts) > 2 and parts[2] else n_structures
        return builtin_dataset(
            name, n_structures=n, seed=seed, r_max=r_max, cache_dir=cache_dir, dtype=dtype
        )
    from equidyn.data.io import read_structures

    if not os.path.isfile(text):
        raise FileNotFoundError(f"no data file at {text!r}")
    return read_structures(  # raises ValueError naming the file if it holds no structures
        text,
        r_max,
        energy_key=energy_key,
        forces_key=forces_key,
        stress_key=stress_key,
        type_map=type_map,
        dtype=dtype,
    )


def batches(
    graphs: Sequence[AtomicGraph], batch_size: int, order: Sequence[int] | None = None
) -> list[list[AtomicGraph]]:
    """Split ``graphs`` (in ``order``) into consecutive groups of ``batch_size``.

    >>> [len(b) for b in batches(list(range(7)), 3)]
    [3, 3, 1]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    idx = list(range(len(graphs))) if order is None else list(order)
    return [[graphs[i] for i in idx[k : k + batch_size]] for k in range(0, len(idx), batch_size)]
