r"""Trajectories and windowed forecasting data: K past frames spaced Δ apart → the frame H ahead.

A :class:`Trajectory` is one simulation of ``n`` particles with fixed attributes: positions
(frames, n, 3), node attributes (n, d) and optional pair attributes (n, n, e).
:class:`TrajectoryWindows` cuts trajectories into samples

.. math::

    \big(x^{(s)},\ x^{(s+\Delta)},\ \dots,\ x^{(s+(K-1)\Delta)}\big)
    \ \longmapsto\ x^{(s+(K-1)\Delta+H)},

``K`` = ``window``, ``Δ`` = ``spacing``, ``H`` = ``horizon`` (in frames), one sample every
``stride`` start frames. :func:`time_split` cuts one long trajectory into contiguous train /
validation / test pieces, so that no window of one split overlaps another's.

Sources: arrays (:class:`Trajectory` directly), any file ASE reads (:func:`read_trajectory`:
ASE ``.traj``, extxyz, ...), the MD17 convention (:func:`md17_convention`: heavy atoms only,
bond and two-hop edges from :func:`molecular_graph`), the multi-frame charged N-body
(:func:`equidyn.dynamics.data.charged_nbody_trajectories`) and the built-in trajectories
generated here (:func:`builtin_trajectory`).

>>> import torch
>>> traj = Trajectory(torch.randn(20, 4, 3), node_attr=torch.ones(4, 1))
>>> windows = TrajectoryWindows([traj], window=5, spacing=2, horizon=3)
>>> len(windows), windows.frames[0].tolist()  # frames of the first sample (last: its target)
(9, [0, 2, 4, 6, 8, 11])
>>> batch = windows.batch(torch.arange(4))
>>> batch["pos_window"].shape, batch["target"].shape, batch["node_attr"].shape
(torch.Size([4, 5, 4, 3]), torch.Size([4, 4, 3]), torch.Size([4, 4, 1]))
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from equidyn._cache import default_cache_dir
from equidyn._io import atomic_save

if TYPE_CHECKING:
    import ase

__all__ = [
    "BUILTIN_TRAJECTORIES",
    "Trajectory",
    "TrajectoryWindows",
    "builtin_trajectory",
    "md17_convention",
    "molecular_graph",
    "read_trajectory",
    "species_one_hot",
    "time_split",
    "trajectory_from_atoms",
]


@dataclass
class Trajectory:
    """One trajectory of ``n`` particles with attributes that do not change in time.

    Attributes:
        positions: (frames, n, 3) positions.
        node_attr: (n, d) per-particle scalars (``d = 0`` allowed).
        edge_attr: (n, n, e) scalars per ordered pair (diagonal ignored), or ``None``.
        numbers: (n,) atomic numbers, if the particles are atoms.
        frame_time: time between consecutive frames (the source's unit: fs for MD).
        extras: per-frame data kept alongside (e.g. ``"total_energy"`` (frames,)).
    """

    positions: Tensor
    node_attr: Tensor
    edge_attr: Tensor | None = None
    numbers: Tensor | None = None
    frame_time: float = 1.0
    extras: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.positions
        if not isinstance(p, Tensor) or p.dim() != 3 or p.shape[-1] != 3 or p.shape[0] < 1:
            shape = tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__
            raise ValueError(f"positions must be a (frames >= 1, n, 3) tensor, got {shape}")
        if not p.is_floating_point():
            raise TypeError(f"positions must be floating point, got {p.dtype}")
        if not bool(torch.isfinite(p).all()):
            bad = int((~torch.isfinite(p)).any(-1).any(-1).nonzero()[0])
            raise ValueError(f"positions are not finite (first at frame {bad})")
        n = p.shape[1]
        if self.node_attr.dim() != 2 or self.node_attr.shape[0] != n:
            raise ValueError(f"node_attr must be (n={n}, d), got {tuple(self.node_attr.shape)}")
        if self.edge_attr is not None and (
            self.edge_attr.dim() != 3 or self.edge_attr.shape[:2] != (n, n)
        ):
            raise ValueError(
                f"edge_attr must be (n, n, e) = ({n}, {n}, e), got {tuple(self.edge_attr.shape)}"
            )
        if self.numbers is not None and tuple(self.numbers.shape) != (n,):
            raise ValueError(f"numbers must be (n={n},), got {tuple(self.numbers.shape)}")
        if not (isinstance(self.frame_time, (int, float)) and self.frame_time > 0):
            raise ValueError(f"frame_time must be a positive number, got {self.frame_time!r}")
        for key, value in self.extras.items():
            if value.shape[0] != p.shape[0]:
                raise ValueError(
                    f"extras[{key!r}] must have one entry per frame ({p.shape[0]}), "
                    f"got {tuple(value.shape)}"
                )

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def num_particles(self) -> int:
        return self.positions.shape[1]

    def frames(self, start: int, stop: int) -> Trajectory:
        """Frames ``start .. stop − 1`` (same attributes)."""
        if not 0 <= start < stop <= self.num_frames:
            raise ValueError(
                f"need 0 <= start < stop <= {self.num_frames} frames, got {start}, {stop}"
            )
        return Trajectory(
            self.positions[start:stop],
            self.node_attr,
            self.edge_attr,
            self.numbers,
            self.frame_time,
            {k: v[start:stop] for k, v in self.extras.items()},
        )

    def to(self, dtype: torch.dtype) -> Trajectory:
        """The trajectory with positions and attributes cast to ``dtype``."""
        return Trajectory(
            self.positions.to(dtype),
            self.node_attr.to(dtype),
            None if self.edge_attr is None else self.edge_attr.to(dtype),
            self.numbers,
            self.frame_time,
            dict(self.extras),
        )


def time_split(traj: Trajectory, fractions: Sequence[float] = (0.6, 0.2, 0.2)) -> list[Trajectory]:
    """Contiguous pieces of ``traj`` in time, in the given fractions of its frames.

    >>> traj = Trajectory(torch.randn(10, 2, 3), torch.zeros(2, 0))
    >>> [t.num_frames for t in time_split(traj, (0.6, 0.2, 0.2))]
    [6, 2, 2]
    """
    if not fractions or any(not f > 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise ValueError(f"fractions must be positive and sum to <= 1, got {list(fractions)}")
    bounds = [0]
    for f in fractions:
        bounds.append(bounds[-1] + int(round(f * traj.num_frames)))
    bounds[-1] = min(bounds[-1], traj.num_frames)
    if any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ValueError(
            f"{traj.num_frames} frames are too few to split into fractions {list(fractions)}"
        )
    return [traj.frames(a, b) for a, b in zip(bounds, bounds[1:])]


class TrajectoryWindows:
    """Forecasting samples cut from trajectories (see the module docstring).

    Args:
        trajectories: one or more :class:`Trajectory` with the same number of particles and
            the same attribute sizes (their values may differ, e.g. other charges).
        window: ``K``, past frames per sample (``>= 2``).
        spacing: ``Δ``, frames between consecutive window frames.
        horizon: ``H``, frames from the last window frame to the target; default ``spacing``.
        stride: frames between the starts of consecutive samples.

    Attributes:
        frames: (samples, K + 1) frame indices of each sample in its trajectory; the last
            column is the target frame.
        source: (samples,) index of each sample's trajectory.
    """

    def __init__(
        self,
        trajectories: Sequence[Trajectory],
        window: int,
        spacing: int = 1,
        horizon: int | None = None,
        stride: int = 1,
    ) -> None:
        horizon = spacing if horizon is None else horizon
        for name, value, low in (
            ("window", window, 2),
            ("spacing", spacing, 1),
            ("horizon", horizon, 1),
            ("stride", stride, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if isinstance(trajectories, Trajectory) or len(trajectories) == 0:
            raise ValueError("trajectories must be a non-empty sequence of Trajectory")
        self.window, self.spacing, self.horizon, self.stride = window, spacing, horizon, stride
        layout = {_layout(t) for t in trajectories}
        if len(layout) != 1:
            raise ValueError(
                "all trajectories need the same (particles, node_attr_dim, edge_attr_dim); "
                f"got {sorted(layout, key=str)}"
            )
        span = (window - 1) * spacing + horizon  # frames from the first window frame to target
        offsets = (torch.arange(window) * spacing).tolist() + [span]
        frames, source = [], []
        for k, t in enumerate(trajectories):
            starts = torch.arange(0, max(t.num_frames - span, 0), stride)
            frames.append(starts[:, None] + torch.tensor(offsets))
            source.append(torch.full((len(starts),), k))
        self.frames = torch.cat(frames)  # [samples, K + 1]
        self.source = torch.cat(source)  # [samples]
        if len(self.frames) == 0:
            longest = max(t.num_frames for t in trajectories)
            raise ValueError(
                f"no window fits: a sample spans {span + 1} frames (window {window}, spacing "
                f"{spacing}, horizon {horizon}); the longest trajectory has {longest}"
            )
        self._positions = torch.cat([t.positions for t in trajectories])  # [sum frames, n, 3]
        self._offsets = torch.tensor([0] + [t.num_frames for t in trajectories]).cumsum(0)[:-1]
        self._node = torch.stack([t.node_attr for t in trajectories])  # [traj, n, d]
        edges = [t.edge_attr for t in trajectories]
        self._edge = None if edges[0] is None else torch.stack(edges)  # type: ignore[arg-type]
        self.frame_time = trajectories[0].frame_time

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def num_particles(self) -> int:
        return self._positions.shape[1]

    @property
    def node_attr_dim(self) -> int:
        return self._node.shape[-1]

    @property
    def edge_attr_dim(self) -> int:
        return 0 if self._edge is None else self._edge.shape[-1]

    def batch(self, indices: Tensor) -> dict[str, Tensor]:
        """Samples ``indices``: ``pos_window`` (B, K, n, 3), ``target`` (B, n, 3),
        ``node_attr`` (B, n, d) and, where the trajectories have pair attributes,
        ``edge_attr`` (B, n, n, e)."""
        src = self.source[indices]
        rows = self.frames[indices] + self._offsets[src, None]  # [B, K + 1]
        pos = self._positions[rows]  # [B, K + 1, n, 3]
        out = {"pos_window": pos[:, :-1], "target": pos[:, -1], "node_attr": self._node[src]}
        if self._edge is not None:
            out["edge_attr"] = self._edge[src]
        return out


def _layout(t: Trajectory) -> tuple[int, int, int | None]:
    return (
        t.num_particles,
        t.node_attr.shape[-1],
        None if t.edge_attr is None else t.edge_attr.shape[-1],
    )


def species_one_hot(numbers: Tensor, species: Sequence[int] | None = None) -> Tensor:
    """(n, len(species)) one-hot of atomic ``numbers`` over ``species`` (default: sorted
    unique numbers).

    >>> species_one_hot(torch.tensor([8, 1, 1])).tolist()
    [[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]
    """
    species = sorted(set(numbers.tolist())) if species is None else list(species)
    missing = sorted(set(numbers.tolist()) - set(species))
    if missing:
        raise ValueError(f"atomic numbers {missing} are not among the species {species}")
    lookup = {z: k for k, z in enumerate(species)}
    index = torch.tensor([lookup[int(z)] for z in numbers])
    return torch.nn.functional.one_hot(index, len(species)).to(torch.get_default_dtype())


def trajectory_from_atoms(
    frames: Sequence[ase.Atoms],
    frame_time: float = 1.0,
    dtype: torch.dtype = torch.float64,
    species: Sequence[int] | None = None,
) -> Trajectory:
    """A :class:`Trajectory` from ASE frames of one system: node attributes are the one-hot
    species (over ``species``, default the frames' own), no pair attributes."""
    if len(frames) == 0:
        raise ValueError("need at least one frame")
    numbers = np.asarray(frames[0].numbers)
    for k, atoms in enumerate(frames):
        if len(atoms) != len(numbers) or not np.array_equal(atoms.numbers, numbers):
            raise ValueError(
                f"frame {k} has other atoms ({len(atoms)}: {atoms.get_chemical_formula()}) "
                f"than frame 0 ({len(numbers)}: {frames[0].get_chemical_formula()})"
            )
    pos = torch.as_tensor(np.stack([a.get_positions() for a in frames]), dtype=dtype)
    z = torch.as_tensor(numbers, dtype=torch.long)
    return Trajectory(pos, species_one_hot(z, species).to(dtype), None, z, float(frame_time))


def read_trajectory(
    path: str | os.PathLike[str],
    index: str | int | slice = ":",
    frame_time: float = 1.0,
    dtype: torch.dtype = torch.float64,
    species: Sequence[int] | None = None,
) -> Trajectory:
    """Read a trajectory from any file ASE reads (``.traj``, extxyz, ...) with
    :func:`ase.io.read`; see :func:`trajectory_from_atoms`. ``frame_time`` is the time
    between the stored frames (ASE files do not record it)."""
    import ase.io

    frames = ase.io.read(Path(path), index=index)
    frames = [frames] if not isinstance(frames, list) else frames
    return trajectory_from_atoms(frames, frame_time, dtype, species)


def molecular_graph(numbers: Tensor, positions: Tensor, bond_scale: float = 1.15) -> Tensor:
    r"""(n, n, 2) pair attributes of a molecule: ``[bond, two-hop]``.

    Atoms ``i ≠ j`` are bonded when :math:`|x_i - x_j| < s\,(r_i + r_j)` with ASE's covalent
    radii :math:`r` and ``bond_scale`` :math:`s`; a two-hop pair shares a bonded neighbour
    and is not itself bonded (the MD17 convention of ESTAG and EGNN's molecular tasks).

    >>> import ase.build
    >>> m = ase.build.molecule("H2O")
    >>> g = molecular_graph(torch.tensor(m.numbers), torch.tensor(m.positions))
    >>> g[..., 0].tolist()  # O bonded to both H
    [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    >>> g[1, 2].tolist()  # H-H: two hops
    [0.0, 1.0]
    """
    from ase.data import covalent_radii

    radii = torch.as_tensor(covalent_radii, dtype=positions.dtype)[numbers]
    dist = torch.cdist(positions, positions)
    eye = torch.eye(len(numbers), dtype=torch.bool)
    bond = (dist < bond_scale * (radii[:, None] + radii[None, :])) & ~eye
    two_hop = ((bond.double() @ bond.double()) > 0) & ~bond & ~eye
    return torch.stack([bond, two_hop], dim=-1).to(positions.dtype)


def md17_convention(traj: Trajectory, heavy_atoms_only: bool = True) -> Trajectory:
    """The MD17 convention of spatio-temporal forecasting: heavy atoms only (``Z > 1``),
    one-hot species as node attributes and ``[bond, two-hop]`` pair attributes from the
    first frame's geometry (:func:`molecular_graph`).

    >>> import ase.build
    >>> m = ase.build.molecule("CH3CH2OH")
    >>> t = md17_convention(trajectory_from_atoms([m, m]))
    >>> t.num_particles, t.node_attr.shape, t.edge_attr.shape  # C, C, O
    (3, torch.Size([3, 2]), torch.Size([3, 3, 2]))
    """
    if traj.numbers is None:
        raise ValueError("md17_convention needs the atomic numbers (Trajectory.numbers)")
    keep = traj.numbers > 1 if heavy_atoms_only else torch.ones_like(traj.numbers, dtype=torch.bool)
    if int(keep.sum()) < 2:
        raise ValueError(f"need >= 2 heavy atoms, got {int(keep.sum())}")
    numbers = traj.numbers[keep]
    pos = traj.positions[:, keep]
    dtype = pos.dtype
    return Trajectory(
        pos,
        species_one_hot(numbers).to(dtype),
        molecular_graph(numbers, pos[0]),
        numbers,
        traj.frame_time,
        dict(traj.extras),
    )


# --------------------------------------------------------------------------- built-in

#: name -> what it is (generated here on first use, cached)
BUILTIN_TRAJECTORIES = {
    "cuau-cluster": "13-atom Cu7Au6 icosahedral cluster, EMT, NVE MD (velocity Verlet, 2 fs), "
    "one frame every 20 fs",
}
_TRAJECTORY_VERSION = 1
_TIMESTEP_FS, _STEPS_BETWEEN_FRAMES = 2.0, 10  # the cluster's MD: 2 fs steps, a frame every 10


def _generate_cluster(p: dict[str, Any]) -> dict[str, np.ndarray]:
    """NVE MD of the cluster of ``BUILTIN_TRAJECTORIES['cuau-cluster']`` (numpy + ASE EMT)."""
    from ase import units
    from ase.calculators.emt import EMT
    from ase.cluster import Icosahedron

    rng = np.random.default_rng(p["seed"])
    atoms = Icosahedron("Cu", noshells=2)  # 13 sites
    numbers = np.full(len(atoms), 29)
    numbers[rng.permutation(len(atoms))[: p["n_au"]]] = 79
    atoms.numbers = numbers
    atoms.calc = EMT()
    mass = atoms.get_masses()[:, None]  # [n, 1] amu
    x = atoms.get_positions()
    # Maxwell-Boltzmann at twice the target temperature: equipartition halves it
    kt = 2 * units.kB * p["temperature_K"]
    v = rng.normal(size=x.shape) * np.sqrt(kt / mass)
    v -= (mass * v).sum(0) / mass.sum()  # no drift
    r = x - (mass * x).sum(0) / mass.sum()
    inertia = (
        mass[:, 0, None, None]
        * ((r * r).sum(1)[:, None, None] * np.eye(3) - r[:, :, None] * r[:, None, :])
    ).sum(0)
    omega = np.linalg.solve(inertia, (mass * np.cross(r, v)).sum(0))
    v -= np.cross(omega, r)  # no rotation
    dt = p["timestep_fs"] * units.fs
    forces = atoms.get_forces()
    pos, energy = [], []
    n_steps = p["equilibration_steps"] + p["frames"] * p["steps_between_frames"]
    for step in range(1, n_steps + 1):
        v += 0.5 * dt * forces / mass
        x = x + dt * v
        atoms.positions = x
        forces = atoms.get_forces()
        v += 0.5 * dt * forces / mass
        after = step - p["equilibration_steps"]
        if after > 0 and after % p["steps_between_frames"] == 0:
            pos.append(x.copy())
            energy.append(atoms.get_potential_energy() + 0.5 * float((mass * v * v).sum()))
    return {"positions": np.stack(pos), "numbers": numbers, "total_energy": np.asarray(energy)}


def builtin_trajectory(
    name: str = "cuau-cluster",
    frames: int = 5000,
    *,
    seed: int = 0,
    temperature_K: float = 500.0,
    cache_dir: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float64,
    equilibration_steps: int = 2000,
) -> Trajectory:
    """A built-in trajectory (:data:`BUILTIN_TRAJECTORIES`), simulated on first use.

    ``"cuau-cluster"``: 13 atoms (7 Cu, 6 Au on random sites of a two-shell icosahedron),
    ASE's EMT potential, velocities drawn at ``2 × temperature_K`` without net momentum or
    rotation, ``equilibration_steps`` velocity-Verlet steps of 2 fs to equilibrate, then one
    frame every 10 steps (``frame_time`` 20 fs) until ``frames`` frames; positions in Å, node
    attributes one-hot (Cu, Au), no pair attributes, ``extras["total_energy"]`` (eV)
    to check conservation.
    About 1 ms per step on one core: the default 5000 frames take about a minute once.
    The file ``<cache>/<name>-<hash>.pt`` (hash over every parameter) is written atomically.

    >>> import tempfile
    >>> t = builtin_trajectory(frames=3, cache_dir=tempfile.mkdtemp(), equilibration_steps=10)
    >>> t.positions.shape, t.frame_time, t.node_attr.sum(0).tolist()
    (torch.Size([3, 13, 3]), 20.0, [7.0, 6.0])
    """
    if name not in BUILTIN_TRAJECTORIES:
        raise ValueError(
            f"unknown trajectory {name!r}; expected one of {list(BUILTIN_TRAJECTORIES)}"
        )
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
    if (
        isinstance(equilibration_steps, bool)
        or not isinstance(equilibration_steps, int)
        or (equilibration_steps < 0)
    ):
        raise ValueError(
            f"equilibration_steps must be an integer >= 0, got {equilibration_steps!r}"
        )
    if not (
        isinstance(temperature_K, (int, float))
        and math.isfinite(temperature_K)
        and temperature_K > 0
    ):
        raise ValueError(f"temperature_K must be a positive number, got {temperature_K!r}")
    params = {
        "name": name,
        "frames": frames,
        "seed": int(seed),
        "temperature_K": float(temperature_K),
        "n_au": 6,
        "timestep_fs": _TIMESTEP_FS,
        "steps_between_frames": _STEPS_BETWEEN_FRAMES,
        "equilibration_steps": int(equilibration_steps),
        "version": _TRAJECTORY_VERSION,
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f"{name}-{key}.pt"
    if path.exists():
        data = torch.load(path, weights_only=True)
    else:
        raw = _generate_cluster(params)
        data = {k: torch.as_tensor(v) for k, v in raw.items()}
        atomic_save(data, path)
    numbers = data["numbers"].long()
    frame_time = _TIMESTEP_FS * _STEPS_BETWEEN_FRAMES
    return Trajectory(
        data["positions"].to(dtype),
        species_one_hot(numbers, (29, 79)).to(dtype),
        None,
        numbers,
        frame_time,
        {"total_energy": data["total_energy"].double()},
    )
