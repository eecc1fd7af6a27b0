"""Neighbour lists against an independent brute-force enumeration; differentiable vectors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from equidyn.graph import apply_strain, cell_volume, edge_vectors, neighbor_list
from equidyn.graph.neighbors import _vesin_available

pytest.importorskip("vesin")


def assert_close(actual, expected, atol=1e-7, rtol=1e-7):
    # torch.testing.assert_close imports torch.distributed on first use (seconds): avoided here
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = (actual - expected).abs().max().item() if actual.numel() else 0.0
    assert torch.allclose(actual, expected, atol=atol, rtol=rtol), f"max abs error {err}"


def reference_pairs(pos, r_max, cell=None, pbc=(False, False, False)):
    """Set of (i, j, S) by looping over a generous box of lattice images."""
    pos = np.asarray(pos, float)
    pbc = np.broadcast_to(np.asarray(pbc, bool), (3,))
    cell = np.zeros((3, 3)) if cell is None else np.array(cell, float)
    search = cell.copy()  # zero rows of non-periodic directions replaced, for the plane heights
    for k in range(3):
        if not pbc[k] and not search[k].any():
            search[k] = np.cross(search[(k + 1) % 3], search[(k + 2) % 3])
    reach = []
    for k in range(3):
        if not pbc[k]:
            reach.append([0])
            continue
        normal = np.cross(search[(k + 1) % 3], search[(k + 2) % 3])
        height = abs(search[k] @ normal) / np.linalg.norm(normal)
        frac = pos @ np.linalg.inv(search)
        m = math.ceil(r_max / height + np.ptp(frac[:, k])) + 2
        reach.append(range(-m, m + 1))
    shifts = np.array(list(itertools.product(*reach)))  # [n_images, 3]
    vec = pos[None, :, None] - pos[:, None, None] + (shifts @ cell)[None, None]  # [n, n, img, 3]
    i, j, s = np.nonzero(np.linalg.norm(vec, axis=-1) < r_max)
    return {
        (a, b, *shifts[c])
        for a, b, c in zip(i.tolist(), j.tolist(), s.tolist())
        if a != b or shifts[c].any()
    }


def as_set(edge_index, shift):
    return {(int(i), int(j), *map(int, s)) for (i, j), s in zip(edge_index.T, shift)}


RNG = np.random.default_rng(0)
TRICLINIC = np.array([[2.2, 0.0, 0.0], [1.1, 1.9, 0.0], [-0.6, 0.7, 2.1]])
CASES = {
    "molecule": (RNG.normal(size=(12, 3)) * 1.5, 2.5, None, False),
    "cubic": (RNG.uniform(0, 4, size=(8, 3)), 2.2, 4.0 * np.eye(3), True),
    "triclinic-small": (RNG.uniform(0, 1, size=(3, 3)) @ TRICLINIC, 4.5, TRICLINIC, True),
    "unwrapped": (RNG.uniform(-5, 9, size=(4, 3)), 3.1, TRICLINIC, True),
    "slab": (RNG.uniform(0, 3, size=(5, 3)), 3.5, np.diag([2.5, 2.8, 0.0]), [True, True, False]),
    "wire": (RNG.uniform(0, 2, size=(4, 3)), 2.9, TRICLINIC, [False, False, True]),
}


@pytest.mark.parametrize("backend", ["vesin", "brute"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_brute_force(name, backend):
    pos, r_max, cell, pbc = CASES[name]
    edge_index, shift = neighbor_list(torch.tensor(pos), r_max, cell, pbc, backend=backend)
    assert edge_index.dtype == shift.dtype == torch.int64
    expected = reference_pairs(pos, r_max, cell, pbc)
    assert len(expected) > 0
    assert as_set(edge_index, shift) == expected
    assert edge_index.shape[1] == len(expected)  # no duplicates
    # the vectors have length < r_max and the list is symmetric
    vec = edge_vectors(
        torch.tensor(pos), edge_index, shift, None if cell is None else torch.tensor(cell)
    )
    assert float(vec.norm(dim=1).max()) < r_max
    flipped = {(j, i, *(-x for x in s)) for (i, j, *s) in expected}
    assert flipped == expected


def test_self_images_counted_in_tiny_cell():
    # one atom in a unit cube: the lattice points with 0 < |n| < 1.5 are 6 at 1 and 12 at sqrt 2
    edge_index, shift = neighbor_list(torch.zeros(1, 3), 1.5, torch.eye(3), True)
    assert edge_index.shape[1] == 18
    assert (edge_index == 0).all()
    lengths = sorted(shift.double().norm(dim=1).tolist())
    assert lengths[:6] == [1.0] * 6 and all(abs(x - 2**0.5) < 1e-12 for x in lengths[6:])
    # radius 2.5 on a cube: count integer vectors with 0 < |n| < 2.5 (r^2 in 1..6)
    n = sum(
        1 for v in itertools.product(range(-3, 4), repeat=3) if 0 < sum(x * x for x in v) < 6.25
    )
    assert (
        neighbor_list(torch.zeros(1, 3), 2.5, torch.eye(3), True)[0].shape[1] == n == 80
    )  # 6 + 12 + 8 + 6 + 24 + 24


def test_sorted_and_on_input_device_dtype_independent():
    pos, r_max, cell, pbc = CASES["cubic"]
    e64, s64 = neighbor_list(torch.tensor(pos), r_max, cell, pbc)
    e32, s32 = neighbor_list(torch.tensor(pos, dtype=torch.float32), r_max, torch.tensor(cell), pbc)
    assert torch.equal(e64, e32) and torch.equal(s64, s32)
    keys = e64[0] * 10**6 + e64[1]
    assert bool((keys[1:] >= keys[:-1]).all())


def test_empty_and_isolated():
    ei, sh = neighbor_list(torch.zeros(0, 3), 2.0)
    assert ei.shape == (2, 0) and sh.shape == (0, 3)
    ei, sh = neighbor_list(torch.zeros(0, 3), 2.0, cell=torch.eye(3) * 2, pbc=True)
    assert ei.shape == (2, 0) and sh.shape == (0, 3)
    ei, sh = neighbor_list(torch.tensor([[0.0, 0, 0], [5.0, 0, 0]]), 2.0)
    assert ei.shape == (2, 0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(pos=[[0.0, 0, 0]], r_max=-1.0), "r_max"),
        (dict(pos=[[0.0, 0, 0]], r_max=float("nan")), "r_max"),
        (dict(pos=[[0.0, float("nan"), 0]], r_max=1.0), "atom 0"),
        (dict(pos=[[0.0, 0]], r_max=1.0), r"\[n_atoms, 3\]"),
        (dict(pos=[[0.0, 0, 0]], r_max=1.0, pbc=True), "needs a cell"),
        (dict(pos=[[0.0, 0, 0]], r_max=1.0, cell=np.diag([1.0, 1.0, 0.0]), pbc=True), "singular"),
        (dict(pos=[[0.0, 0, 0]], r_max=1.0, cell=np.eye(2)), "cell"),
        (dict(pos=[[0.0, 0, 0]], r_max=1.0, pbc=[True, False]), "pbc"),
        (dict(pos=[[0.0, 0, 0]], r_max=1.0, backend="cuda"), "backend"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        neighbor_list(**kwargs)


def _edges(name):
    pos, r_max, cell, pbc = CASES[name]
    ei, sh = neighbor_list(torch.tensor(pos), r_max, cell, pbc)
    return torch.tensor(pos), torch.tensor(cell), ei, sh


def _sum_sq(pos, cell, ei, sh):
    return (edge_vectors(pos, ei, sh, cell) ** 2).sum()


def test_gradient_wrt_positions_matches_finite_differences():
    pos, cell, ei, sh = _edges("triclinic-small")
    pos.requires_grad_(True)
    (grad,) = torch.autograd.grad(_sum_sq(pos, cell, ei, sh), pos)
    h = 1e-6
    fd = torch.zeros_like(pos)
    with torch.no_grad():
        for a in range(pos.shape[0]):
            for k in range(3):
                dp = torch.zeros_like(pos)
                dp[a, k] = h
                fd[a, k] = (_sum_sq(pos + dp, cell, ei, sh) - _sum_sq(pos - dp, cell, ei, sh)) / (
                    2 * h
                )
    assert_close(grad, fd, atol=1e-6, rtol=1e-7)
    # the list is symmetric, so sum |r_ij|^2 has zero net gradient only by translation symmetry
    assert_close(grad.sum(0), torch.zeros(3, dtype=grad.dtype), atol=1e-10, rtol=0)


def test_gradient_wrt_strain_matches_finite_differences():
    pos, cell, ei, sh = _edges("triclinic-small")

    def energy(strain):
        p, c = apply_strain(pos, cell, strain)
        return (edge_vectors(p, ei, sh, c) ** 2).sum()

    strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(energy(strain), strain)
    h = 1e-6
    fd = torch.zeros(3, 3, dtype=torch.float64)
    with torch.no_grad():
        for a in range(3):
            for b in range(3):
                d = torch.zeros(3, 3, dtype=torch.float64)
                d[a, b] = h
                fd[a, b] = (energy(d) - energy(-d)) / (2 * h)
    assert_close(grad, fd, atol=1e-6, rtol=1e-7)
    # the strain derivative of sum |r|^2 is 2 * sum r (x) r (symmetric)
    vec = edge_vectors(pos, ei, sh, cell)
    assert_close(grad, 2 * vec.T @ vec, atol=1e-9, rtol=1e-9)
    assert_close(grad, grad.T)


def test_gradcheck_and_double_backward():
    pos = torch.tensor([[0.1, 0.2, 0.3], [1.4, 0.9, 1.7]], dtype=torch.float64, requires_grad=True)
    cell = torch.tensor(TRICLINIC, requires_grad=True)
    ei, sh = neighbor_list(pos, 2.3, cell, True)
    assert 0 < ei.shape[1] < 40
    f = lambda p, c: edge_vectors(p, ei, sh, c)
    assert torch.autograd.gradcheck(f, (pos, cell), fast_mode=True)
    assert torch.autograd.gradgradcheck(
        lambda p, c: f(p, c).norm(dim=1), (pos, cell), fast_mode=True
    )
    strain = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)

    def g(p, e):
        p2, c2 = apply_strain(p, cell.detach(), e)
        return edge_vectors(p2, ei, sh, c2).norm(dim=1) ** 3

    assert torch.autograd.gradgradcheck(g, (pos, strain), fast_mode=True)


def test_batched_cells_and_strain():
    pos, cell, ei, sh = _edges("cubic")
    pos2, cell2, ei2, sh2 = _edges("triclinic-small")
    n = pos.shape[0]
    pos_b = torch.cat([pos, pos2])
    cell_b = torch.stack([cell, cell2])
    ei_b = torch.cat([ei, ei2 + n], 1)
    sh_b = torch.cat([sh, sh2])
    batch = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(len(pos2), dtype=torch.long)])
    vec = edge_vectors(pos_b, ei_b, sh_b, cell_b, batch)
    assert_close(
        vec, torch.cat([edge_vectors(pos, ei, sh, cell), edge_vectors(pos2, ei2, sh2, cell2)])
    )
    strain = torch.randn(2, 3, 3, dtype=torch.float64) * 0.01
    p, c = apply_strain(pos_b, cell_b, strain, batch)
    p1, c1 = apply_strain(pos2, cell2, strain[1])
    assert_close(p[n:], p1)
    assert_close(c[1], c1)
    assert_close(cell_volume(cell_b), torch.stack([cell.det().abs(), cell2.det().abs()]))
    with pytest.raises(ValueError, match="batch"):
        edge_vectors(pos_b, ei_b, sh_b, cell_b)
    with pytest.raises(ValueError, match="shape of cell"):
        apply_strain(pos_b, cell_b, strain[0], batch)


def test_matches_ase_neighborlist_on_256_atom_cell():
    ase_build = pytest.importorskip("ase.build")
    from ase.neighborlist import neighbor_list as ase_neighbor_list

    atoms = ase_build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat(4)
    atoms.rattle(0.05, seed=1)
    atoms.set_cell(
        atoms.cell[:] @ np.array([[1, 0.1, 0], [0, 1, 0.05], [0, 0, 1]]), scale_atoms=True
    )
    i, j, s = ase_neighbor_list("ijS", atoms, 5.0)
    edge_index, shift = neighbor_list(atoms.positions, 5.0, atoms.cell[:], True)
    assert edge_index.shape[1] == len(i) > 10_000
    assert as_set(edge_index, shift) == {
        (a, b, *c) for a, b, c in zip(i.tolist(), j.tolist(), s.tolist())
    }


_CRASH_CASES = """
import numpy as np, torch
from equidyn.graph.neighbors import neighbor_list
rng = np.random.default_rng(0)
cases = [(np.array([[0.0, 0, 0], [2, 0, 0], [0, 2, 0]]) * 1e3, None, False),
         (np.array([[0.0, 0, 0], [1, 0, 0], [0, 3000, 0], [3000, 3000, 0.5]]), None, False)]
for widths in ([3.0, 2000, 2000], [2000.0, 2000, 3], [3.0, 3, 1e6]):
    cell = np.diag(widths)
    cases.append((rng.uniform(size=(20, 3)) @ cell, cell, True))
for pos, cell, pbc in cases:
    c = None if cell is None else torch.tensor(cell)
    a = neighbor_list(torch.tensor(pos), 5.0, cell=c, pbc=pbc)
    b = neighbor_list(torch.tensor(pos), 5.0, cell=c, pbc=pbc, backend="brute")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), (pos, cell)
print("ok", len(cases))
"""


@pytest.mark.skipif(not _vesin_available(), reason="vesin not installed")
def test_vesin_large_flat_boxes_do_not_crash():
    """vesin 0.6 divides by zero (SIGFPE kills Python) when its capped cell grid gets an empty
    direction: open molecules spread over a large flat box, elongated periodic cells. Run in a
    subprocess so a crash fails this test instead of killing the run."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _CRASH_CASES], capture_output=True, text=True)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.strip() == "ok 5"


@pytest.mark.skipif(not _vesin_available(), reason="vesin not installed")
def test_anisotropic_cell_too_large_for_fallback_is_a_clear_error(monkeypatch):
    import equidyn.graph.neighbors as nb

    monkeypatch.setattr(nb, "_BRUTE_FORCE_FALLBACK_ATOMS", 10)
    cell = torch.diag(torch.tensor([3.0, 2000.0, 2000.0], dtype=torch.float64))
    pos = torch.rand(20, 3, dtype=torch.float64) @ cell
    with pytest.raises(ValueError, match="too anisotropic"):
        neighbor_list(pos, 5.0, cell=cell, pbc=True)


_HOSTILE_CASES = r"""
import numpy as np, torch
from equidyn.graph.neighbors import neighbor_list
P = np.array([[0.0, 0, 0], [2, 0, 0], [0, 2, 0], [1, 1, 1]])
far_x = P.copy(); far_x[1, 0] += 5e10   # 1e10 cells away: vesin's int32 shifts overflow
far_z = P.copy(); far_z[1, 2] += 1e6    # far along the open direction of a slab
cases = [
    (P * np.array([1.0, 1.0, 1e299]), None, False),          # spread over 1e299 Å: SIGFPE
    (np.concatenate([P, P + 1e10, P * 1e200]), None, False),
    (P, np.eye(3) * 1e300, True),                             # cell volume overflows: SIGFPE
    (P, np.diag([5.0, 5.0, 1e200]), True),                    # was called singular
    (far_z, np.diag([5.0, 5.0, 10.0]), [True, True, False]),  # SIGFPE
    (far_x, np.eye(3) * 5.0, True),                           # wrong list
]
for pos, cell, pbc in cases:
    c = None if cell is None else torch.tensor(cell)
    a = neighbor_list(torch.tensor(pos), 4.0, cell=c, pbc=pbc)
    b = neighbor_list(torch.tensor(pos), 4.0, cell=c, pbc=pbc, backend="brute")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), (pos, cell)
    assert a[0].shape[1] > 0
print("ok", len(cases))
"""


@pytest.mark.skipif(not _vesin_available(), reason="vesin not installed")
def test_hostile_geometries_do_not_crash_and_match_brute_force():
    """Issue 12: atoms 1e299 Å apart, cells of 1e300 Å and atoms far outside a slab killed
    Python (SIGFPE in vesin); atoms 1e10 cells away got a wrong list. Run in a subprocess."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _HOSTILE_CASES], capture_output=True, text=True)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])
    assert out.stdout.strip() == "ok 6"


def test_far_atom_is_the_shifted_copy_of_a_near_one():
    """An atom 1e10 cells away sees the same neighbours, at the same distances, as its image
    in the cell (the shifts absorb the 1e10 lattice vectors)."""
    pos = torch.tensor([[0.0, 0, 0], [2, 0, 0], [0, 2, 0]], dtype=torch.float64)
    cell = torch.eye(3, dtype=torch.float64) * 5.0
    far = pos.clone()
    far[1, 0] += 5e10
    for backend in ("brute", "auto"):
        a, sa = neighbor_list(pos, 4.0, cell, True, backend=backend)
        b, sb = neighbor_list(far, 4.0, cell, True, backend=backend)
        assert torch.equal(a, b)
        da = edge_vectors(pos, a, sa, cell).norm(dim=1)
        db = edge_vectors(far, b, sb, cell).norm(dim=1)
        torch.testing.assert_close(da, db, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "pos, cell, pbc, match",
    [
        ([[0.0, 0, 0], [5e15, 0, 0]], np.eye(3) * 5.0, True, "1e\\+15 lattice vectors away"),
        ([[0.0, 0, 0], [0.5, 0, 0]], np.eye(3) * 1e-3, True, "so small against r_max"),
        ([[0.0, 0, 0]], np.diag([1e-3, 1e-3, 10.0]), [True, True, False], "about .* edges"),
    ],
)
def test_hopeless_geometries_are_clear_errors(pos, cell, pbc, match):
    with pytest.raises(ValueError, match=match):
        neighbor_list(torch.tensor(pos), 4.0, cell=torch.tensor(cell), pbc=pbc)


def test_long_thin_cell_is_not_singular():
    """Issue 12: a 5 x 5 x 1e11 Å cell was refused as singular (the test was not scale-free)."""
    cell = torch.diag(torch.tensor([5.0, 5.0, 1e11], dtype=torch.float64))
    edge_index, _ = neighbor_list(torch.zeros(1, 3, dtype=torch.float64), 5.5, cell, True)
    assert edge_index.shape[1] == 4  # the images at +-5 Å along x and y
    with pytest.raises(ValueError, match="singular"):
        neighbor_list(
            torch.zeros(1, 3), 5.0, torch.tensor([[5.0, 0, 0], [5, 0, 0], [0, 0, 5]]), True
        )


def test_max_neighbors_refuses_a_dense_list_before_building_it():
    """One atom in a cell 1e-3 Å wide: 3e7 images within 3 Å, under the 5e7-edge limit of
    the list, but far above any per-atom limit a potential sets (the fuzz test's case)."""
    pos, cell = torch.zeros(1, 3), torch.tensor(np.diag([1e-3, 1e-3, 7.0]))
    with pytest.raises(ValueError, match=r"3\.6e\+07 neighbours per atom .*limit 2000"):
        neighbor_list(pos, 3.0, cell=cell, pbc=[True, True, False], max_neighbors=2000)
    ok, _ = neighbor_list(pos, 3.0, cell=torch.eye(3) * 2.5, pbc=True, max_neighbors=2000)
    assert ok.shape[1] == 6
