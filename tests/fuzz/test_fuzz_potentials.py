"""Fuzzing the potentials through ``Potential.compute`` and the ASE calculator.

Random small structures: open, periodic and partly periodic, degenerate cells, coincident
atoms, huge spreads and offsets, NaN/inf coordinates, unknown species.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from fuzz_property import LONG, error_or_finite
from hypothesis import given, settings
from hypothesis import strategies as st

from equidyn.models import MACE, NequIP, Potential

pytest.importorskip("vesin")

#: words of the errors a hostile structure may raise (each names the bad value)
NAMES = ["positions", "cell", "apart", "lattice vectors", "edges", "singular", "species", "Z="]


def _potential(kind: str) -> Potential:
    torch.manual_seed(0)
    if kind == "nequip":
        model = NequIP(num_species=2, r_max=3.0, l_max=1, num_features=4, num_layers=1)
    else:
        model = MACE(num_species=2, r_max=3.0)
    return Potential(model, [29, 79]).double()


POTENTIALS = {kind: _potential(kind) for kind in ("nequip", "mace")}

special = st.sampled_from([0.0, math.nan, math.inf, -math.inf, 1e300, -1e300, 1e15, 1e-300])


@st.composite
def structures(draw):
    n = draw(st.integers(0, 5))
    pos = np.array(draw(st.lists(st.floats(-4, 4), min_size=3 * n, max_size=3 * n))).reshape(n, 3)
    pos = pos * 10.0 ** draw(st.integers(-3, 300)) if draw(st.booleans()) else pos
    if n and draw(st.booleans()):  # coincident atoms
        pos[-1] = pos[0]
    if n and draw(st.integers(0, 4)) == 0:  # one special coordinate
        pos[draw(st.integers(0, n - 1)), draw(st.integers(0, 2))] = draw(special)
    if n and draw(st.booleans()):
        pos = pos + draw(st.sampled_from([1e6, 1e12, 1e200]))
    numbers = draw(st.lists(st.sampled_from([29, 79, 1]), min_size=n, max_size=n))
    pbc = draw(st.sampled_from([False, True, [True, True, False], [False, False, True]]))
    cell = None
    if pbc is not False or draw(st.booleans()):
        kind = draw(st.sampled_from(["cube", "random", "flat", "huge", "tiny", "long"]))
        cell = {
            "cube": np.eye(3) * draw(st.floats(2.0, 10.0)),
            "random": np.array(draw(st.lists(st.floats(-6, 6), min_size=9, max_size=9))).reshape(
                3, 3
            ),
            "flat": np.diag([5.0, 5.0, 0.0]),
            "huge": np.eye(3) * 1e250,
            "tiny": np.eye(3) * 1e-3,
            "long": np.diag([4.0, 4.0, 1e11]),
        }[kind]
    return numbers, pos, cell, pbc


def _compute(kind, numbers, pos, cell, pbc, stress):
    c = None if cell is None else torch.tensor(cell)
    return POTENTIALS[kind].compute(numbers, torch.tensor(pos), c, pbc, compute_stress=stress)


@given(st.sampled_from(["nequip", "mace"]), structures(), st.booleans())
def test_potential_compute(kind, structure, stress):
    numbers, pos, cell, pbc = structure
    error_or_finite(
        lambda: _compute(kind, numbers, pos, cell, pbc, stress and cell is not None), NAMES
    )


@pytest.mark.slow
@settings(LONG)
@given(st.sampled_from(["nequip", "mace"]), structures(), st.booleans())
def test_potential_compute_long(kind, structure, stress):
    numbers, pos, cell, pbc = structure
    error_or_finite(
        lambda: _compute(kind, numbers, pos, cell, pbc, stress and cell is not None), NAMES
    )


@given(structures())
def test_ase_calculator(structure):
    ase = pytest.importorskip("ase")
    from equidyn.calculators import EquidynCalculator

    numbers, pos, cell, pbc = structure

    def run():
        atoms = ase.Atoms(numbers=numbers, positions=pos, cell=cell, pbc=pbc)
        atoms.calc = EquidynCalculator(POTENTIALS["nequip"])
        return atoms.get_potential_energy(), atoms.get_forces()

    error_or_finite(run, NAMES)


def test_documented_verdicts():
    """The cases of docs/robustness.md, each with its verdict."""
    pos = np.array([[0.0, 0, 0], [2, 0, 0], [0, 2, 0]])
    # spread over 2000 Å (used to SIGFPE in vesin): three isolated atoms, finite
    out = _compute("nequip", [29, 79, 29], pos * 1e3, None, False, False)
    assert torch.isfinite(out["energy"]).all() and (out["forces"] == 0).all()
    with pytest.raises(ValueError, match="atoms 0 and 1 are 0 Å apart"):
        _compute("mace", [29, 79, 29], pos[[0, 0, 2]], None, False, False)
    bad = pos.copy()
    bad[2, 1] = math.nan
    with pytest.raises(ValueError, match=r"atom 2 has \[0.0, nan, 0.0\]"):
        _compute("nequip", [29, 79, 29], bad, None, False, False)
    # one atom in a cell 1e-3 Å wide along x and y: 3e7 images in range (found by the fuzz
    # test, which then used 23 GB): refused before the list is built
    with pytest.raises(ValueError, match=r"neighbours per atom .*limit 2000"):
        _compute("nequip", [29], pos[:1] * 0, np.diag([1e-3, 1e-3, 7.0]), [True, True, False],
                 False)  # fmt: skip
    # an atom 1e10 cells away: the energy of its image in the cell
    far = pos.copy()
    far[1, 0] += 5e10
    e_far = _compute("nequip", [29, 79, 29], far, np.eye(3) * 5, True, False)["energy"]
    e_near = _compute("nequip", [29, 79, 29], pos, np.eye(3) * 5, True, False)["energy"]
    torch.testing.assert_close(e_far, e_near)
