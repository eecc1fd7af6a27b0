"""Reference energies, force scale, neighbour count, reproducible disjoint splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("vesin")

from equidyn.data import (  # noqa: E402
    average_num_neighbors,
    collate,
    fit_reference_energies,
    force_rms,
    reference_energy,
    split_indices,
)
from equidyn.graph import radius_graph  # noqa: E402

TRUE = {1: -13.6, 6: -1030.1, 8: -2040.7}


def make_set(n, noise, seed=0):
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(n):
        z = rng.choice(list(TRUE), size=rng.integers(1, 8))
        e = sum(TRUE[int(x)] for x in z) + noise * rng.normal()
        graphs.append(
            radius_graph(
                rng.normal(size=(len(z), 3)) * 3,
                z,
                None,
                energy=e,
                forces=rng.normal(size=(len(z), 3)),
            )
        )
    return graphs


def test_reference_energies_recover_known_values():
    graphs = make_set(40, noise=0.0)
    fitted = fit_reference_energies(graphs)
    assert sorted(fitted) == [1, 6, 8]
    assert all(abs(fitted[z] - TRUE[z]) < 1e-9 for z in TRUE)
    noisy = fit_reference_energies(make_set(400, noise=0.05, seed=1))
    assert all(abs(noisy[z] - TRUE[z]) < 0.02 for z in TRUE)
    # batched graphs give the same fit, and reference_energy reproduces the noiseless energies
    batched = fit_reference_energies([collate(graphs[:15]), collate(graphs[15:])])
    assert all(abs(batched[z] - fitted[z]) < 1e-9 for z in TRUE)
    b = collate(graphs)
    assert torch.allclose(reference_energy(b, fitted), b.energy, atol=1e-8)
    # a type map that fixes the order and includes an absent species (min-norm: 0)
    with_absent = fit_reference_energies(graphs, type_map=[8, 6, 1, 29])
    assert list(with_absent) == [8, 6, 1, 29] and abs(with_absent[29]) < 1e-9


def test_reference_energy_errors():
    graphs = make_set(5, 0.0)
    with pytest.raises(ValueError, match="not in the type map"):
        fit_reference_energies(graphs, type_map=[1, 6])
    with pytest.raises(ValueError, match="no energy"):
        fit_reference_energies([radius_graph(torch.zeros(1, 3), [1], None)])
    with pytest.raises(ValueError, match="at least one"):
        fit_reference_energies([])
    with pytest.raises(ValueError, match=r"Z=\[6, 8\]|Z=\[6\]|Z=\[8\]"):
        reference_energy(collate(graphs), {1: 0.0})


def test_force_rms_and_neighbours():
    graphs = make_set(30, 0.0, seed=2)
    allf = torch.cat([g.forces for g in graphs])
    assert abs(force_rms(graphs) - allf.pow(2).mean().sqrt().item()) < 1e-12
    with pytest.raises(ValueError, match="without edges"):
        average_num_neighbors(graphs)
    cube = radius_graph(torch.zeros(1, 3, dtype=torch.float64), [29], 1.2, torch.eye(3), True)
    mol = radius_graph(torch.tensor([[0.0, 0, 0], [0, 0, 1.0]]), [1, 1], 1.2)
    assert average_num_neighbors([cube, mol.to(dtype=torch.float64)]) == (6 + 2) / 3
    with pytest.raises(ValueError, match="no forces"):
        force_rms([radius_graph(torch.zeros(1, 3), [1], None)])


def test_splits_reproducible_disjoint_nested():
    a = split_indices(100, 60, 20, seed=7)
    assert a == split_indices(100, 60, 20, seed=7)
    assert a != split_indices(100, 60, 20, seed=8)
    train, val, test = a
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    assert sorted(train + val + test) == list(range(100))
    small = split_indices(100, 10, 20, 20, seed=7)
    assert small[0] == train[:10] and small[1] == val and small[2] == test
    frac = split_indices(10, 0.5, 0.2, 0.1, seed=0)
    assert [len(x) for x in frac] == [5, 2, 1]
    assert not set(frac[0]) & set(frac[1]) and not set(frac[1]) & set(frac[2])


@pytest.mark.parametrize(
    "args, err",
    [
        ((10, 8, 3), ValueError),
        ((10, -1, 3), ValueError),
        ((10, 1.5, 0), ValueError),
        ((10, "5", 1), TypeError),
        ((-3, 1, 1), ValueError),
        ((10, 5, 3, 3), ValueError),
    ],
)
def test_split_errors(args, err):
    with pytest.raises(err):
        split_indices(*args)
