"""Trajectory data (src/equidyn/data/trajectories.py): windows, splits, ASE files, the MD17
convention, the built-in EMT cluster trajectory and its cache, N-body trajectories, bad input."""

from __future__ import annotations

import ase
import ase.build
import ase.io
import numpy as np
import pytest
import torch

from equidyn.data import (
    Trajectory,
    TrajectoryWindows,
    builtin_trajectory,
    md17_convention,
    molecular_graph,
    read_trajectory,
    time_split,
    trajectory_from_atoms,
)
from equidyn.dynamics import charged_nbody_trajectories


def ramp(frames=30, n=4, d=1, e=None, offset=0.0):
    """Positions that record their own frame index: x[f, i] = (f + offset, i, 0)."""
    f = torch.arange(frames, dtype=torch.float64)[:, None].expand(frames, n) + offset
    i = torch.arange(n, dtype=torch.float64)[None].expand(frames, n)
    pos = torch.stack([f, i, torch.zeros_like(f)], -1)
    edge = None if e is None else torch.ones(n, n, e, dtype=torch.float64) * offset
    return Trajectory(pos, torch.full((n, d), offset, dtype=torch.float64), edge)


@pytest.mark.parametrize(
    "window,spacing,horizon,stride", [(2, 1, 1, 1), (5, 3, 7, 2), (4, 2, 1, 5)]
)
def test_windows_take_the_frames_they_say(window, spacing, horizon, stride):
    trajs = [ramp(30), ramp(23, offset=100.0)]
    w = TrajectoryWindows(trajs, window, spacing, horizon, stride)
    span = (window - 1) * spacing + horizon
    expected = sum(len(range(0, t.num_frames - span, stride)) for t in trajs)
    assert len(w) == expected
    b = w.batch(torch.arange(len(w)))
    for k in range(len(w)):
        start = int(w.frames[k, 0])
        offset = 100.0 * int(w.source[k])
        frames = b["pos_window"][k, :, 0, 0] - offset
        assert frames.tolist() == [start + j * spacing for j in range(window)]
        assert float(b["target"][k, 0, 0] - offset) == start + span
        assert float(b["node_attr"][k, 0, 0]) == offset  # each sample keeps its trajectory's
        assert start + span < trajs[int(w.source[k])].num_frames


def test_windows_carry_pair_attributes_and_default_horizon():
    w = TrajectoryWindows([ramp(10, e=2), ramp(10, e=2, offset=1.0)], window=3, spacing=2)
    assert w.horizon == 2 and w.edge_attr_dim == 2 and w.node_attr_dim == 1
    b = w.batch(torch.tensor([0, len(w) - 1]))
    assert b["edge_attr"].shape == (2, 4, 4, 2)
    assert b["edge_attr"][1].unique().tolist() == [1.0]


def test_windows_refuse_bad_settings():
    with pytest.raises(ValueError, match="window must be an integer >= 2, got 1"):
        TrajectoryWindows([ramp()], window=1)
    with pytest.raises(ValueError, match="spacing must be an integer >= 1, got 0"):
        TrajectoryWindows([ramp()], window=3, spacing=0)
    with pytest.raises(ValueError, match="no window fits: a sample spans 51 frames"):
        TrajectoryWindows([ramp(30)], window=5, spacing=10)
    with pytest.raises(ValueError, match="same \\(particles, node_attr_dim, edge_attr_dim\\)"):
        TrajectoryWindows([ramp(n=4), ramp(n=5)], window=2)
    with pytest.raises(ValueError, match="non-empty sequence"):
        TrajectoryWindows(ramp(), window=2)


def test_trajectory_validates_its_arrays():
    with pytest.raises(ValueError, match="positions must be a \\(frames >= 1, n, 3\\)"):
        Trajectory(torch.zeros(5, 3), torch.zeros(3, 0))
    with pytest.raises(ValueError, match="node_attr must be \\(n=3, d\\)"):
        Trajectory(torch.zeros(5, 3, 3), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="edge_attr must be \\(n, n, e\\)"):
        Trajectory(torch.zeros(5, 3, 3), torch.zeros(3, 1), torch.zeros(3, 2, 1))
    pos = torch.zeros(5, 3, 3)
    pos[2, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="not finite \\(first at frame 2\\)"):
        Trajectory(pos, torch.zeros(3, 0))
    with pytest.raises(ValueError, match="frame_time must be a positive number"):
        Trajectory(torch.zeros(5, 3, 3), torch.zeros(3, 0), frame_time=0.0)


def test_time_split_is_contiguous_and_disjoint():
    parts = time_split(ramp(50), (0.6, 0.2, 0.2))
    firsts = [int(p.positions[0, 0, 0]) for p in parts]
    lasts = [int(p.positions[-1, 0, 0]) for p in parts]
    assert [p.num_frames for p in parts] == [30, 10, 10]
    assert firsts == [0, 30, 40] and lasts == [29, 39, 49]
    with pytest.raises(ValueError, match="too few"):
        time_split(ramp(3), (0.6, 0.2, 0.2))
    with pytest.raises(ValueError, match="sum to <= 1"):
        time_split(ramp(), (0.7, 0.7))


def test_read_trajectory_from_extxyz(tmp_path):
    mol = ase.build.molecule("CH3CH2OH")
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(6):
        m = mol.copy()
        m.positions += 0.02 * rng.normal(size=m.positions.shape)
        frames.append(m)
    path = tmp_path / "ethanol.extxyz"
    ase.io.write(path, frames)
    traj = read_trajectory(path, frame_time=0.5)
    assert traj.positions.shape == (6, 9, 3) and traj.frame_time == 0.5
    ase.io.write(tmp_path / "ethanol.traj", frames)  # an ASE trajectory reads the same
    from_traj = read_trajectory(tmp_path / "ethanol.traj").positions
    assert torch.allclose(from_traj, traj.positions, atol=1e-7)  # extxyz prints 8 decimals
    assert read_trajectory(path, index="2:5").num_frames == 3
    assert torch.allclose(traj.positions[3], torch.as_tensor(frames[3].positions))
    assert traj.node_attr.shape == (9, 3)  # H, C, O
    heavy = md17_convention(traj)
    assert heavy.numbers.tolist() == [6, 6, 8]
    bonds = heavy.edge_attr[..., 0]
    # C-C and C-O bonded, C ... O (the methyl C to O) two hops
    assert bonds.sum() == 4 and heavy.edge_attr[..., 1].sum() == 2
    assert torch.equal(heavy.edge_attr, heavy.edge_attr.transpose(0, 1))
    with pytest.raises(ValueError, match="frame 1 has other atoms"):
        trajectory_from_atoms([mol, ase.build.molecule("H2O")])


def test_molecular_graph_of_benzene():
    m = ase.build.molecule("C6H6")
    g = molecular_graph(torch.tensor(m.numbers), torch.tensor(m.positions))
    carbons = torch.tensor(m.numbers) == 6
    assert g[..., 0][carbons][:, carbons].sum(1).tolist() == [2.0] * 6  # a ring
    assert g[..., 0].sum() == 2 * 12  # 6 C-C and 6 C-H bonds


def test_builtin_cluster_trajectory_is_cached_and_conserves_energy(tmp_path):
    t = builtin_trajectory(frames=20, cache_dir=tmp_path, equilibration_steps=50, seed=3)
    assert t.positions.shape == (20, 13, 3) and t.frame_time == 20.0
    assert t.numbers.tolist().count(79) == 6 and t.node_attr.sum(0).tolist() == [7.0, 6.0]
    energy = t.extras["total_energy"]
    assert float(energy.max() - energy.min()) < 1e-2  # NVE: eV, of ~9 eV
    files = list(tmp_path.glob("cuau-cluster-*.pt"))
    assert len(files) == 1
    again = builtin_trajectory(frames=20, cache_dir=tmp_path, equilibration_steps=50, seed=3)
    assert torch.equal(again.positions, t.positions)
    assert len(list(tmp_path.iterdir())) == 1  # read back, nothing new or temporary left
    other = builtin_trajectory(frames=20, cache_dir=tmp_path, equilibration_steps=50, seed=4)
    assert not torch.equal(other.positions, t.positions)
    with pytest.raises(ValueError, match="unknown trajectory 'water'"):
        builtin_trajectory("water", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="frames must be an integer >= 1"):
        builtin_trajectory(frames=0, cache_dir=tmp_path)


def test_charged_nbody_trajectories(tmp_path):
    trajs = charged_nbody_trajectories("valid", 3, cache=tmp_path)
    q = trajs[1].node_attr[:, 0]
    assert torch.equal(trajs[1].edge_attr[..., 0], q[:, None] * q[None, :])
    assert set(q.tolist()) <= {-1.0, 1.0} and trajs[0].frame_time == 0.1
    with pytest.raises(ValueError, match="size must be in 1..2000"):
        charged_nbody_trajectories("valid", 0, cache=tmp_path)
