"""The potential wrapper and the battery itself, on a tiny pairwise model."""

from __future__ import annotations

import pytest
import torch
from battery import PotentialBattery, random_cluster
from pair_model import PairModel

from equidyn.models.potential import Potential, build_model, load_model, save_model


class TestPairPotentialBattery(PotentialBattery):
    def make_potential(self) -> Potential:
        return Potential(
            PairModel(r_max=3.5),
            atomic_numbers=[29, 79],
            reference_energies=[-1.0, -2.0],
            scale=0.7,
            shift=0.1,
        )


def test_reference_energies_scale_shift():
    model = PairModel(r_max=3.0).double()
    pot = Potential(model, [29, 79], reference_energies=[-1.0, -3.0], scale=2.0, shift=0.5).double()
    out = pot.compute(torch.tensor([79]), torch.zeros(1, 3, dtype=torch.float64))
    expected = 2.0 * model.bias[1].item() + 0.5 - 3.0
    assert abs(out["energy"].item() - expected) < 1e-12


def test_save_load_roundtrip(tmp_path):
    pot = Potential(PairModel(r_max=3.0), [29, 79], [-1.0, -2.0], scale=1.5, shift=0.2).double()
    path = tmp_path / "model.pt"
    save_model(pot, path)
    loaded = load_model(path)
    assert isinstance(loaded.model, PairModel) and loaded.atomic_numbers == [29, 79]
    pos, numbers = random_cluster(4)
    a, b = pot.compute(numbers, pos), loaded.compute(numbers, pos)
    torch.testing.assert_close(a["energy"], b["energy"], atol=0, rtol=0)
    torch.testing.assert_close(a["forces"], b["forces"], atol=0, rtol=0)


def test_constructor_errors(tmp_path):
    with pytest.raises(ValueError, match="num_species=2"):
        Potential(PairModel(), [29])
    with pytest.raises(ValueError, match="distinct"):
        Potential(PairModel(), [29, 29])
    with pytest.raises(ValueError, match="reference_energies"):
        Potential(PairModel(), [29, 79], [0.0])
    with pytest.raises(ValueError, match="unknown model 'Nope'"):
        build_model("Nope", {})
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['lmax'\]"):
        build_model("PairModel", {"lmax": 2})
    bad = tmp_path / "bad.pt"
    torch.save({"a": 1}, bad)
    with pytest.raises(ValueError, match="not an equidyn potential"):
        load_model(bad)
