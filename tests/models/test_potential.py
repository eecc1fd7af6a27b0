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


def _old_style_file(tmp_path, cls, new_kwargs, renames):
    """A model file as the previous release wrote it: the config under the old names."""
    torch.manual_seed(3)
    pot = Potential(cls(**new_kwargs), [29, 79], [-1.0, -2.0], scale=0.5).double()
    d = pot.to_dict()
    d["model_config"] = {renames.get(k, k): v for k, v in d["model_config"].items()}
    assert set(renames.values()) <= set(d["model_config"])  # the old names are in the file
    path = tmp_path / f"{cls.__name__}-old.pt"
    torch.save(d, path)
    return pot, path


@pytest.mark.parametrize(
    "name, kwargs, renames",
    [
        ("NequIP", dict(num_species=2, r_max=3.0, l_max=1, num_features=2, num_layers=1),
         {"num_basis": "num_bessel", "trainable_basis": "trainable_bessel"}),
        ("MACE", dict(num_species=2, r_max=3.0, l_max=1, hidden_irreps="2x0e+2x1o",
                      radial_mlp=[4], correlation=2, num_layers=1, readout_hidden=2),
         {"num_basis": "num_bessel", "l_max": "max_ell", "num_layers": "num_interactions"}),
    ],
)  # fmt: skip
def test_file_with_old_argument_names_loads_with_a_warning(tmp_path, name, kwargs, renames):
    from equidyn.models import resolve_model

    pot, path = _old_style_file(tmp_path, resolve_model(name), kwargs, renames)
    with pytest.warns(FutureWarning, match="is deprecated, use") as caught:
        loaded = load_model(path)
    assert {str(w.message).split("'")[1] for w in caught} == set(renames.values())
    assert loaded.to_dict()["model_config"] == pot.to_dict()["model_config"]  # saved anew
    pos, numbers = random_cluster(4)
    torch.testing.assert_close(
        loaded.compute(numbers, pos)["forces"], pot.compute(numbers, pos)["forces"],
        atol=0, rtol=0,
    )  # fmt: skip


def test_saved_config_is_the_bound_call():
    from equidyn.models import NequIP, model_config

    model = NequIP(num_species=2, num_features=4, num_layers=1)
    config = model_config(model)
    assert config == model.config() and config["num_features"] == 4
    assert config["r_max"] == 4.0 and config["num_basis"] == 8  # defaults recorded
    assert NequIP(**config).state_dict().keys() == model.state_dict().keys()


def test_unregistered_model_cannot_be_saved():
    class Bare(torch.nn.Module):
        r_max, num_species = 2.0, 1

        def forward(self, species, edge_index, edge_vec):
            return torch.zeros(species.shape[0])

    with pytest.raises(TypeError, match="register_model"):
        Potential(Bare(), [1]).to_dict()


def test_potential_module_keeps_its_names():
    import equidyn.models.chemistry as chemistry
    import equidyn.models.potential as potential
    import equidyn.models.serialization as serialization

    assert potential.load_model is serialization.load_model
    assert potential.formula is chemistry.formula and potential.symbol(29) == "Cu"
    assert potential.describe_unknown_species is chemistry.describe_unknown_species


def _labelled_graphs(n: int):
    from equidyn.graph import radius_graph

    graphs = []
    for k in range(n):
        pos, numbers = random_cluster(4, seed=k)
        graphs.append(radius_graph(pos, numbers, 3.0, energy=-float(k), forces=torch.ones(4, 3)))
    return graphs


def test_trainer_resolves_potentials_through_the_registry():
    from equidyn.train.trainer import build_potential, model_r_max

    assert model_r_max("MACE", {}) == 5.0 and model_r_max("NequIP", {"r_max": 3}) == 3.0
    with pytest.raises(ValueError, match="unknown model 'Nequip'"):
        model_r_max("Nequip", {})
    with pytest.raises(ValueError, match="unknown argument"):
        build_potential("NequIP", {"lmax": 1}, _labelled_graphs(2))
    with pytest.warns(FutureWarning, match="'num_bessel' is deprecated"):
        pot = build_potential("NequIP", {"num_bessel": 4, "num_layers": 1}, _labelled_graphs(3))
    config = pot.model.config()
    assert config["num_basis"] == 4 and "num_bessel" not in config
    assert config["num_species"] == len(pot.atomic_numbers)  # filled in from the data
    assert config["avg_num_neighbors"] > 0


def test_positions_of_another_dtype_name_the_fix():
    """Issue 12: float64 positions into a float32 potential gave torch's "expected m1 and m2
    to have the same dtype"."""
    from equidyn.models import NequIP, Potential

    pot = Potential(NequIP(num_species=1, r_max=3.0, num_features=4, num_layers=1), [29])
    pos = torch.tensor([[0.0, 0, 0], [2, 0, 0], [0, 2, 0]], dtype=torch.float64)
    with pytest.raises(TypeError, match=r"potential is torch\.float32 but the positions are"):
        pot.compute(torch.tensor([29, 29, 29]), pos)
    assert pot.double().compute(torch.tensor([29, 29, 29]), pos)["energy"].dtype == torch.float64


@pytest.mark.parametrize("model_name", ["NequIP", "MACE"])
def test_coincident_atoms_are_an_error_not_garbage(model_name):
    """Issue 12: two atoms at the same position gave MACE E = 6.4e7 eV (NequIP 7.3)."""
    from equidyn.models import Potential, build_model

    model = build_model(model_name, {"num_species": 1, "r_max": 3.0})
    pot = Potential(model, [29])
    pos = torch.tensor([[0.0, 0, 0], [0, 0, 0], [2, 0, 0]])
    with pytest.raises(ValueError, match=r"atoms 0 and 1 are 0 Å apart"):
        pot.compute(torch.tensor([29, 29, 29]), pos)


def test_graphs_with_absurdly_many_edges_per_atom_are_refused():
    """Potential.max_neighbors guards compute (before the list is built) and forward."""
    from equidyn.graph import radius_graph
    from equidyn.models import NequIP, Potential

    pot = Potential(NequIP(num_species=1, r_max=3.0, num_features=4, num_layers=1), [29]).double()
    tiny = torch.diag(torch.tensor([1e-3, 1e-3, 7.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"neighbours per atom .*limit 2000"):
        pot.compute([29], torch.zeros(1, 3, dtype=torch.float64), tiny, [True, True, False])
    graph = radius_graph(torch.zeros(1, 3, dtype=torch.float64), [29], 3.0,
                         torch.eye(3, dtype=torch.float64) * 2.5, True)  # fmt: skip
    pot.max_neighbors = 4.0  # the 6 self-images are too many now
    with pytest.raises(ValueError, match=r"6 edges for 1 atoms, 6 per atom \(limit 4"):
        pot(graph)
