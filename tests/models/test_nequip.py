"""NequIP: the potential battery at l_max = 0 (invariant) and l_max = 2, plus model specifics."""

from __future__ import annotations

import pytest
import torch
from battery import PotentialBattery, random_cluster

from equidyn.models.nequip import NequIP, hidden_irreps
from equidyn.models.potential import Potential, load_model, save_model


def small_nequip(l_max: int, **kw) -> NequIP:
    args = dict(num_species=2, r_max=3.5, l_max=l_max, num_features=4, num_layers=2,
                radial_hidden=8, avg_num_neighbors=6.0)  # fmt: skip
    args.update(kw)
    return NequIP(**args)


class TestNequIPInvariant(PotentialBattery):
    def make_potential(self) -> Potential:
        return Potential(small_nequip(0), [29, 79], [-1.0, -2.0], scale=0.8)


class TestNequIPL2(PotentialBattery):
    def make_potential(self) -> Potential:
        return Potential(small_nequip(2), [29, 79], [-1.0, -2.0], scale=0.8)


class TestNequIPEmbeddingSelfConnection(PotentialBattery):
    def make_potential(self) -> Potential:
        model = small_nequip(1, num_features=3, self_connection="embedding")
        return Potential(model, [29, 79], [-1.0, -2.0], scale=0.8)


def test_embedding_self_connection_is_the_nequip_package_architecture():
    """At the throughput benchmark's settings the nequip package's NequIPGNNModel has
    848 960 parameters: the self-connections take the 32-scalar species embedding (32 times
    the one-hot's weights) and the first layer has none."""
    kw = dict(num_species=1, r_max=5.0, l_max=2, num_features=32, num_layers=4, num_basis=8,
              trainable_basis=False, radial_hidden=128, radial_layers=1)  # fmt: skip
    lean = NequIP(**kw)
    package = NequIP(**kw, self_connection="embedding")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert (count(lean), count(package)) == (312384, 848960)
    assert package.blocks[0].self_connection is None
    assert [b.self_connection.irreps_in2.dim for b in package.blocks[1:]] == [32] * 3
    assert package.config()["self_connection"] == "embedding"
    with pytest.raises(ValueError, match="self_connection must be 'species' or 'embedding'"):
        NequIP(self_connection="one_hot")


def test_published_default_features():
    model = NequIP(num_species=1)
    assert str(model.irreps_hidden) == "16x0e+16x0o+16x1o+16x1e+16x2e+16x2o"
    assert (model.r_max, len(model.blocks), model.edges.basis.num_basis) == (4.0, 4, 8)
    assert model.edges.cutoff.p == 6
    assert str(hidden_irreps(8, 1, parity=False)) == "8x0e+8x1o"


def test_invariant_model_has_only_scalars():
    model = small_nequip(0, num_layers=3)
    for block in model.blocks:
        assert all(ir.l == 0 for _, ir in block.irreps_out)


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(1)
    pot = Potential(small_nequip(1), [29, 79], [-1.0, -2.0], scale=0.5).double()
    save_model(pot, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.model.config() == pot.model.config()
    pos, numbers = random_cluster(5)
    torch.testing.assert_close(
        loaded.compute(numbers, pos)["forces"], pot.compute(numbers, pos)["forces"]
    )


def test_float32_and_float64_agree():
    torch.manual_seed(2)
    pot = Potential(small_nequip(1), [29, 79])
    pos, numbers = random_cluster(5)
    e32 = pot.float().compute(numbers, pos.float())["energy"]
    e64 = pot.double().compute(numbers, pos)["energy"]
    assert abs(e32.item() - e64.item()) < 1e-4 * max(1.0, abs(e64.item()))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"l_max": -1}, "l_max"), ({"r_max": 0.0}, "r_max"), ({"num_layers": 0}, "num_layers"),
     ({"num_features": 2.5}, "num_features")],
)  # fmt: skip
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NequIP(**kwargs)


def _energy_and_edge_grad(model, species, edge_index, edge_vec):
    edge_vec = edge_vec.clone().requires_grad_(True)
    energy = model(species, edge_index, edge_vec).sum()
    (grad,) = torch.autograd.grad(energy, edge_vec)  # forces are sums of these
    return energy.detach(), grad


def _compile_case(backend: str) -> None:
    torch.manual_seed(5)
    model = small_nequip(2).double()
    pos, numbers = random_cluster(4)
    species = (numbers == 79).long()
    i, j = torch.triu_indices(4, 4, 1)
    edge_index = torch.cat([torch.stack([i, j]), torch.stack([j, i])], dim=1)
    edge_vec = pos[edge_index[1]] - pos[edge_index[0]]
    eager = _energy_and_edge_grad(model, species, edge_index, edge_vec)
    compiled_model = torch.compile(model, fullgraph=True, backend=backend)
    compiled = _energy_and_edge_grad(compiled_model, species, edge_index, edge_vec)
    torch.testing.assert_close(compiled, eager)


def test_compiled_matches_eager_aot():
    """torch.compile(fullgraph=True) traces NequIP (energy and its gradient)."""
    _compile_case("aot_eager")


@pytest.mark.slow  # inductor code generation takes minutes; the trace is covered above
def test_compiled_matches_eager_inductor():
    _compile_case("inductor")


def test_deprecated_argument_names_warn_and_build_the_same_model():
    torch.manual_seed(0)
    new = small_nequip(1, num_basis=6, trainable_basis=False)
    with pytest.warns(FutureWarning, match="is deprecated, use") as caught:
        torch.manual_seed(0)
        old = small_nequip(1, num_bessel=6, trainable_bessel=False)
    assert sorted(str(w.message) for w in caught) == [
        "NequIP: argument 'num_bessel' is deprecated, use 'num_basis'",
        "NequIP: argument 'trainable_bessel' is deprecated, use 'trainable_basis'",
    ]
    assert old.config() == new.config()
    for (k, a), (_, b) in zip(old.state_dict().items(), new.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(TypeError, match="both 'num_bessel'"):
        small_nequip(1, num_bessel=6, num_basis=6)


def test_state_dict_keys_are_those_of_model_files():
    keys = list(small_nequip(1).state_dict())
    assert keys[0] == "bessel.freqs" and "blocks.0.radial.weights.0" in keys
    assert not any(k.startswith(("edges.", "blocks.0.conv.")) for k in keys)
