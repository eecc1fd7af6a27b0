"""The charged N-body data set: generated on first use, cached on disk, served as a Dataset.

Generation follows :func:`equidyn.dynamics.systems.simulate_charged_nbody` (the EGNN
protocol). Each split is one seeded simulation of its full protocol size (train 3000,
valid 2000, test 2000; plus a ``rollout`` split of 200 long trajectories for multi-step
tests); a smaller ``size`` takes the first ``size`` trajectories, so training sets of
different sizes are nested. Files are cached in ``cache_dir`` (argument), else
``$EQUIDYN_CACHE``, else ``~/.cache/equidyn``, under a name that encodes every generation
parameter, and are written atomically (temporary file, then ``os.replace``), so an
interrupted run never leaves a half-written cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from equidyn._cache import default_cache_dir
from equidyn._io import atomic_save
from equidyn.data.trajectories import Trajectory
from equidyn.dynamics.systems import egnn_reference_initial_states, simulate_charged_nbody

__all__ = [
    "DRAWS",
    "SPLITS",
    "ChargedNBodyDataset",
    "cache_dir",
    "charged_nbody_trajectories",
    "load_charged_nbody",
]

#: split name -> (number of trajectories, seed offset, number of simulation steps)
SPLITS: dict[str, tuple[int, int, int]] = {
    "train": (3000, 0, 5000),
    "valid": (2000, 1, 5000),
    "test": (2000, 2, 5000),
    # long trajectories for chained predictions: frames 0 .. 100 (step 10100)
    "rollout": (200, 3, 10200),
}


def cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: ``path`` if given, else ``$EQUIDYN_CACHE``, else ``~/.cache/equidyn``.

    >>> str(cache_dir("/tmp/x"))
    '/tmp/x'
    """
    if path is not None:
        return Path(path)
    return default_cache_dir()


#: where the initial states come from: ``"equidyn"`` (seeded torch draws, ``seed`` picks the
#: draw) or ``"egnn"`` (the EGNN repository's own ``nbody_small`` draw, NumPy seed 43; see
#: :func:`~equidyn.dynamics.systems.egnn_reference_initial_states`)
DRAWS = ("equidyn", "egnn")


def load_charged_nbody(
    split: str,
    *,
    seed: int = 0,
    cache: str | os.PathLike[str] | None = None,
    draw: str = "equidyn",
) -> dict[str, torch.Tensor]:
    """All trajectories of one split (float64), generated and cached on first use.

    Returns the dict of :func:`~equidyn.dynamics.systems.simulate_charged_nbody`
    (``pos``/``vel`` of shape (trajectories, frames, 5, 3), ``charges`` (trajectories, 5)).
    ``draw="egnn"`` replays the initial states of the EGNN repository's data set (train,
    valid and test only; ``seed`` must be 0), so that results compare with the published
    ones on the very same trajectories.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(SPLITS)}")
    if draw not in DRAWS:
        raise ValueError(f"unknown draw {draw!r}; expected one of {DRAWS}")
    if draw == "egnn" and (split == "rollout" or seed != 0):
        raise ValueError(
            "the 'egnn' draw has only the train, valid and test splits of one fixed data set "
            f"(seed 0); got split {split!r}, seed {seed}"
        )
    n_traj, offset, n_steps = SPLITS[split]
    params = {
        "system": "charged_nbody",
        "n_trajectories": n_traj,
        "n_particles": 5,
        "n_steps": n_steps,
        "save_every": 100,
        "dt": 0.001,
        "clamp": 100.0,
        "loc_std": 1.0,
        "speed": 0.5,
        "strength": 1.0,
        "seed": 10 * int(seed) + offset,
        "version": 1,
    }
    if draw == "egnn":
        params.update(draw="egnn", seed=43)
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    tag = "egnn" if draw == "egnn" else f"s{seed}"
    path = cache_dir(cache) / f"charged_nbody_{split}_{tag}_{key}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    gen: dict[str, Any] = {
        k: v for k, v in params.items() if k not in ("system", "version", "draw")
    }
    if draw == "egnn":
        q, x0, v0 = egnn_reference_initial_states(seed=43)[split]
        gen["initial"] = (q[:n_traj], x0[:n_traj], v0[:n_traj])
    data = simulate_charged_nbody(gen.pop("n_trajectories"), **gen)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(data, path)
    return data


class ChargedNBodyDataset(Dataset):
    """Frame ``frame_in`` → frame ``frame_out`` pairs of the charged N-body protocol.

    Item ``i`` is a dict of ``pos``, ``vel`` (5, 3) at ``frame_in``, ``charges`` (5, 1),
    ``target_pos``, ``target_vel`` (5, 3) at ``frame_out``. The protocol is
    ``frame_in=30, frame_out=40``. With ``all_starts=True`` every start frame
    ``0 .. frames − 1 − (frame_out − frame_in)`` of every trajectory is an item (for
    training models that are chained in rollouts). With ``unroll=K`` every item also holds
    the states ``K`` gaps ahead, ``future_pos`` / ``future_vel`` (K, 5, 3) at frames
    ``frame_out, frame_out + gap, ..., frame_in + K gap`` (for training on K chained
    predictions); ``target_*`` is always the first of them. The whole split is also available
    as batched tensors: ``ds.pos`` (N, 5, 3), ``ds.future_pos`` (N, K, 5, 3) etc.

    Generating the protocol splits takes a few seconds once; afterwards they load from the cache.

    >>> SPLITS["train"]  # (trajectories, seed offset, simulation steps)
    (3000, 0, 5000)
    """

    def __init__(
        self,
        split: str,
        size: int | None = None,
        *,
        frame_in: int = 30,
        frame_out: int = 40,
        all_starts: bool = False,
        unroll: int = 1,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        cache: str | os.PathLike[str] | None = None,
        draw: str = "equidyn",
    ) -> None:
        data = load_charged_nbody(split, seed=seed, cache=cache, draw=draw)
        n_total, n_frames = data["pos"].shape[:2]
        if size is not None and not 1 <= size <= n_total:
            raise ValueError(f"size must be in 1..{n_total} for split {split!r}, got {size}")
        if not 0 <= frame_in < frame_out < n_frames:
            raise ValueError(
                f"need 0 <= frame_in < frame_out < {n_frames}, got {frame_in} and {frame_out}"
            )
        n = n_total if size is None else size
        gap = frame_out - frame_in
        first = 0 if all_starts else frame_in
        if unroll < 1 or first + unroll * gap >= n_frames:
            raise ValueError(
                f"unroll must be >= 1 with {first} + unroll * gap < {n_frames} frames, got "
                f"unroll {unroll} (gap {gap})"
            )
        pos, vel = data["pos"][:n].to(dtype), data["vel"][:n].to(dtype)
        charges = data["charges"][:n].to(dtype)[..., None]  # [n, 5, 1]
        starts = range(0, n_frames - unroll * gap) if all_starts else [frame_in]
        self.pos = torch.cat([pos[:, s] for s in starts])  # [N, 5, 3]
        self.vel = torch.cat([vel[:, s] for s in starts])
        self.future_pos = torch.cat(
            [pos[:, [s + k * gap for k in range(1, unroll + 1)]] for s in starts]
        )
        self.future_vel = torch.cat(
            [vel[:, [s + k * gap for k in range(1, unroll + 1)]] for s in starts]
        )
        self.target_pos = self.future_pos[:, 0]  # [N, 5, 3]
        self.target_vel = self.future_vel[:, 0]
        self.charges = charges.repeat(len(starts), 1, 1)  # [N, 5, 1]
        self.split, self.n_trajectories = split, n

    def __len__(self) -> int:
        return self.pos.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "pos": self.pos[i],
            "vel": self.vel[i],
            "charges": self.charges[i],
            "target_pos": self.target_pos[i],
            "target_vel": self.target_vel[i],
        }


def charged_nbody_trajectories(
    split: str,
    size: int | None = None,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    cache: str | os.PathLike[str] | None = None,
) -> list[Trajectory]:
    """The charged N-body split as whole trajectories, for windowed forecasting.

    Every trajectory of :func:`load_charged_nbody` (the first ``size`` of them) becomes a
    :class:`~equidyn.data.trajectories.Trajectory` of its frames (one per 100 steps of
    ``dt = 0.001``: ``frame_time`` 0.1), node attributes the charges (5, 1), pair attributes
    the charge products ``q_i q_j`` (5, 5, 1).

    >>> from equidyn.data.trajectories import TrajectoryWindows
    >>> import tempfile
    >>> trajs = charged_nbody_trajectories("valid", 2, cache=tempfile.mkdtemp())
    >>> len(trajs), trajs[0].positions.shape, trajs[0].edge_attr.shape
    (2, torch.Size([49, 5, 3]), torch.Size([5, 5, 1]))
    >>> len(TrajectoryWindows(trajs, window=8, spacing=2, horizon=10))  # 2 x (49 - 24)
    50
    """
    data = load_charged_nbody(split, seed=seed, cache=cache)
    n_total = data["pos"].shape[0]
    if size is not None and (isinstance(size, bool) or not 1 <= size <= n_total):
        raise ValueError(f"size must be in 1..{n_total} for split {split!r}, got {size!r}")
    n = n_total if size is None else size
    pos = data["pos"][:n].to(dtype)  # [n, frames, 5, 3]
    q = data["charges"][:n].to(dtype)  # [n, 5]
    return [
        Trajectory(pos[k], q[k, :, None], (q[k, :, None] * q[k, None, :])[..., None], None, 0.1)
        for k in range(n)
    ]
