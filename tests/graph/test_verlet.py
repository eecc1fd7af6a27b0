"""Verlet (skin) neighbour lists: the same edges as a fresh search, with far fewer searches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from equidyn.graph.neighbors import neighbor_list
from equidyn.graph.verlet import VerletList, filter_edges


def _fresh(pos, r_max, cell, pbc):
    return neighbor_list(pos, r_max, cell if np.any(pbc) else None, pbc)


def _assert_same(got, want):
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def _crystal(reps=3, a=3.6, seed=0):
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    grid = np.stack(np.meshgrid(*[np.arange(reps)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = ((grid[:, None, :] + frac[None]) * a).reshape(-1, 3)
    pos += 0.05 * np.random.default_rng(seed).standard_normal(pos.shape)
    return pos, np.eye(3) * a * reps


@pytest.mark.parametrize("pbc", [True, (True, False, True), False])
def test_random_walk_gives_the_fresh_list_and_rebuilds_rarely(pbc):
    """A random walk of 0.02 Å per step and atom: every step's list equals a fresh search
    (bit for bit, same order), and the skin saves most searches."""
    pos, cell = _crystal()
    cell = cell + np.array([[0, 0, 0], [1.0, 0, 0], [0.5, -0.7, 0]])  # a skewed cell
    rng = np.random.default_rng(1)
    nl = VerletList(r_max=4.0, skin=0.3)
    for _ in range(30):
        pos = pos + 0.02 * rng.standard_normal(pos.shape)
        _assert_same(nl.update(pos, cell, pbc), _fresh(pos, 4.0, cell, pbc))
    assert nl.n_updates == 30 and 1 < nl.n_builds < 15
    assert nl.n_candidates > _fresh(pos, 4.0, cell, pbc)[0].shape[1]


def test_moves_just_under_half_the_skin_are_still_exact():
    """The worst case: two atoms approach each other by almost skin/2 each, from just inside
    the candidate cutoff; the pair must appear without a rebuild."""
    r_max, skin = 3.0, 0.4
    pos = np.array([[0.0, 0.0, 0.0], [r_max + 0.99 * skin, 0.0, 0.0]])
    nl = VerletList(r_max, skin)
    assert nl.update(pos)[0].shape[1] == 0
    pos[0, 0] += 0.499 * skin
    pos[1, 0] -= 0.499 * skin
    assert not nl.needs_rebuild(pos)
    index, _ = nl.update(pos)
    assert index.tolist() == [[0, 1], [1, 0]] and nl.n_builds == 1
    pos[1, 0] -= 0.01 * skin  # atom 1 has now moved more than skin/2
    assert nl.needs_rebuild(pos)
    nl.update(pos)
    assert nl.n_builds == 2


def test_wrapped_atoms_are_not_moves():
    """ase.Atoms.wrap moves atoms by whole lattice vectors: no rebuild, the shifts follow."""
    ase = pytest.importorskip("ase")
    pos, cell = _crystal(reps=2)
    atoms = ase.Atoms("Cu32", positions=pos, cell=cell + [[0, 0, 0], [0.8, 0, 0], [0, 0, 0]],
                      pbc=True)  # fmt: skip
    atoms.positions[:5] -= 0.1 * atoms.cell[0]  # a few atoms just outside the cell
    atoms.positions[5:9] += 0.1 * atoms.cell[2]  # and on the other side
    nl = VerletList(r_max=4.5, skin=0.5)
    before = nl.update(atoms.positions, atoms.cell, True, atoms.numbers)
    atoms.positions += 0.01
    atoms.wrap()  # atoms 0..8 jump by a lattice vector
    moved = atoms.positions.copy()
    assert np.abs(moved[:9] - pos[:9]).max() > 1.0
    after = nl.update(moved, atoms.cell, True, atoms.numbers)
    assert nl.n_builds == 1
    _assert_same(after, _fresh(moved, 4.5, np.asarray(atoms.cell), np.ones(3, bool)))
    assert before[0].shape == after[0].shape


def test_cell_pbc_and_numbers_changes_rebuild():
    pos, cell = _crystal(reps=2)
    numbers = np.full(len(pos), 29)
    nl = VerletList(r_max=3.0, skin=0.5)
    nl.update(pos, cell, True, numbers)
    nl.update(pos, cell, True, numbers)
    assert nl.n_builds == 1
    nl.update(pos, cell * 1.001, True, numbers)
    nl.update(pos, cell * 1.001, (True, True, False), numbers)
    numbers[0] = 79
    nl.update(pos, cell * 1.001, (True, True, False), numbers)
    nl.update(pos[:-1], cell * 1.001, (True, True, False), numbers[:-1])
    assert nl.n_builds == 5


def test_zero_skin_is_the_plain_list():
    pos, cell = _crystal(reps=2)
    nl = VerletList(r_max=3.0, skin=0.0)
    _assert_same(nl.update(pos, cell, True), _fresh(pos, 3.0, cell, True))
    pos = pos + 1e-9
    _assert_same(nl.update(pos, cell, True), _fresh(pos, 3.0, cell, True))
    assert nl.n_builds == 2


@pytest.mark.parametrize("chunk", [1, 7, 1000, None])
def test_chunked_filter_is_the_unchunked_filter(chunk):
    pos, cell = _crystal(reps=2)
    index, shift = _fresh(pos, 4.0, cell, True)
    pos_t, cell_t = torch.from_numpy(pos), torch.from_numpy(cell)
    keep = filter_edges(pos_t, index, shift.double() @ cell_t, 3.0, chunk_edges=chunk)
    vec = pos_t[index[1]] - pos_t[index[0]] + shift.double() @ cell_t
    assert torch.equal(keep, vec.norm(dim=1) < 3.0) and 0 < int(keep.sum()) < keep.numel()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="skin must be a finite number >= 0"):
        VerletList(3.0, skin=-0.1)
    with pytest.raises(ValueError, match="r_max must be a positive"):
        VerletList(0.0, skin=0.1)
    with pytest.raises(ValueError, match="chunk_edges must be a positive int"):
        VerletList(3.0, skin=0.1, chunk_edges=0)
    with pytest.raises(ValueError, match="3 atomic numbers for 2 atoms"):
        VerletList(3.0, 0.1).update(np.zeros((2, 3)), numbers=[1, 1, 1])
