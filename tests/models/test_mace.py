"""MACE: the potential battery (equivariant and invariant-feature variants) plus model specifics."""

from __future__ import annotations

import pytest
import torch
from battery import PotentialBattery, random_cluster

from equidyn.models.mace import MACE, MACE_DEFAULTS
from equidyn.models.potential import Potential, build_model, load_model, save_model
from equidyn.o3 import Irreps


def small_mace(**kw) -> MACE:
    args = dict(num_species=2, r_max=3.5, l_max=2, correlation=3, num_layers=2,
                hidden_irreps="4x0e + 4x1o", radial_mlp=[8, 8], readout_hidden=4,
                avg_num_neighbors=6.0)  # fmt: skip
    args.update(kw)
    return MACE(**args)


class TestMACE(PotentialBattery):
    def make_potential(self) -> Potential:
        return Potential(small_mace(), [29, 79], [-1.0, -2.0], scale=0.8)


class TestMACEInvariantFeatures(PotentialBattery):
    def make_potential(self) -> Potential:
        return Potential(small_mace(hidden_irreps="4x0e", correlation=2), [29, 79], scale=0.8)


def test_published_defaults():
    model = MACE(num_species=1)
    for key, value in MACE_DEFAULTS.items():
        got = model.config()[key]
        assert (got == value) if key != "hidden_irreps" else (str(Irreps(got)) == "128x0e+128x1o")
    assert str(model.irreps_sh) == "1x0e+1x1o+1x2e+1x3o"
    assert model.edges.cutoff.p == 5 and model.edges.basis.num_basis == 8
    assert len(model.interactions) == 2
    # the product basis of the first layer: A = 128 x (0e+1o+2e+3o) -> 128x0e+128x1o
    contraction = model.products[0].contraction
    assert str(contraction.irreps_in) == "128x0e+128x1o+128x2e+128x3o"
    assert contraction.path_counts == {(1, 0): 1, (1, 1): 1, (2, 0): 4, (2, 1): 3, (3, 0): 8,
                                       (3, 1): 12}  # fmt: skip
    # the last layer keeps only the scalars that the MLP readout uses
    assert str(model.products[1].irreps_out) == "128x0e"


def test_correlation_raises_body_order():
    """The first layer's features of atom 0 with correlation 1 are a sum over neighbours of
    two-body terms: h(0 with 1 and 2) = h(0 with 1) + h(0 with 2) - h(0 alone). Correlation 2
    adds three-body terms, so the identity breaks."""
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.9, 0.0, 0.0], [0.3, 2.1, 0.0]], dtype=torch.float64)

    def three_body_part(correlation: int) -> float:
        torch.manual_seed(4)
        model = small_mace(correlation=correlation, num_species=1).double()

        def h0(idx: list[int]) -> torch.Tensor:  # first-layer features of atom 0
            n = len(idx)
            i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
            mask = i != j
            edge_index = torch.stack([i[mask], j[mask]])
            edge_vec = pos[idx][edge_index[1]] - pos[idx][edge_index[0]]
            species = torch.zeros(n, dtype=torch.long)
            one_hot = torch.ones(n, 1, dtype=torch.float64)
            sh, radial = model.edges(edge_vec)
            a, sc = model.interactions[0](model.embedding(one_hot), one_hot, edge_index, sh, radial)
            return model.products[0](a, species, sc)[0]

        return (h0([0, 1, 2]) - h0([0, 1]) - h0([0, 2]) + h0([0])).abs().max().item()

    assert three_body_part(1) < 1e-12
    assert three_body_part(2) > 1e-6


def test_registered_and_saved(tmp_path):
    model = build_model("MACE", small_mace().config())
    assert isinstance(model, MACE)
    torch.manual_seed(1)
    pot = Potential(small_mace(), [29, 79], [-1.0, -2.0], scale=0.5).double()
    save_model(pot, tmp_path / "mace.pt")
    loaded = load_model(tmp_path / "mace.pt")
    assert loaded.model.config() == pot.model.config()
    pos, numbers = random_cluster(5)
    torch.testing.assert_close(
        loaded.compute(numbers, pos)["forces"], pot.compute(numbers, pos)["forces"]
    )


def test_float32_and_float64_agree():
    torch.manual_seed(2)
    pot = Potential(small_mace(), [29, 79])
    pos, numbers = random_cluster(5)
    e32 = pot.float().compute(numbers, pos.float())["energy"]
    e64 = pot.double().compute(numbers, pos)["energy"]
    assert abs(e32.item() - e64.item()) < 1e-4 * max(1.0, abs(e64.item()))


@pytest.mark.slow  # ~1-3 min of compilation; the eager path is covered by the battery
def test_compiled_matches_eager():
    torch.manual_seed(5)
    model = small_mace(num_layers=1).double()
    pos, numbers = random_cluster(4)
    species = (numbers == 79).long()
    i, j = torch.triu_indices(4, 4, 1)
    edge_index = torch.cat([torch.stack([i, j]), torch.stack([j, i])], dim=1)
    edge_vec = pos[edge_index[1]] - pos[edge_index[0]]
    eager = model(species, edge_index, edge_vec)
    compiled = torch.compile(model, fullgraph=True)(species, edge_index, edge_vec)
    torch.testing.assert_close(compiled, eager)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"l_max": -1}, "l_max"), ({"r_max": 0.0}, "r_max"), ({"correlation": 0}, "correlation"),
     ({"hidden_irreps": "4x0e + 2x1o"}, "hidden_irreps"), ({"hidden_irreps": "4x1o"}, "0e"),
     ({"radial_mlp": [8, 0]}, "radial_mlp"), ({"num_layers": 1.5}, "num_layers"),
     ({"hidden_irreps": "4x3q"}, "hidden_irreps")],
)  # fmt: skip
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_mace(**kwargs)


def test_deprecated_argument_names_warn_and_build_the_same_model():
    torch.manual_seed(0)
    new = small_mace(num_basis=6, l_max=1, num_layers=1)
    with pytest.warns(FutureWarning) as caught:
        torch.manual_seed(0)
        args = dict(num_species=2, r_max=3.5, max_ell=1, correlation=3, num_interactions=1,
                    hidden_irreps="4x0e + 4x1o", radial_mlp=[8, 8], readout_hidden=4,
                    avg_num_neighbors=6.0, num_bessel=6)  # fmt: skip
        old = MACE(**args)
    assert sorted(str(w.message).split("'")[1] for w in caught) == [
        "max_ell", "num_bessel", "num_interactions"
    ]  # fmt: skip
    assert old.config() == new.config()
    for (k, a), (_, b) in zip(old.state_dict().items(), new.state_dict().items()):
        assert torch.equal(a, b), k
    assert "interactions.0.radial.weights.0" in old.state_dict()  # the keys of model files
