"""Allegro: the potential battery at l_max = 0, 1 (no parity) and 2, plus model specifics:
strict locality (against a 2-layer NequIP that is not local), per-edge invariance, model
files, the config/registry path, torch.compile and a short training run."""

from __future__ import annotations

import pytest
import torch
import yaml
from battery import AU, CU, PotentialBattery, random_cluster

from equidyn import o3
from equidyn.graph.batch import radius_graph
from equidyn.models import Allegro, build_model
from equidyn.models.allegro import (
    ChannelwiseProductLinear,
    _channel_major,
    _channelwise_product,
    weighted_harmonics,
)
from equidyn.models.nequip import NequIP
from equidyn.models.potential import Potential, load_model, save_model
from equidyn.o3 import spherical_harmonics
from equidyn.o3.rotations import rand_matrix


def small_allegro(l_max: int, **kw) -> Allegro:
    args = dict(num_species=2, r_max=3.5, l_max=l_max, num_layers=2, num_tensor_features=4,
                latent_dim=8, two_body_hidden=[8], latent_hidden=[8], edge_energy_hidden=[4],
                avg_num_neighbors=6.0)  # fmt: skip
    args.update(kw)
    return Allegro(**args)


class TestAllegroInvariant(PotentialBattery):
    def make_potential(self) -> Potential:
        return Potential(small_allegro(0), [CU, AU], [-1.0, -2.0], scale=0.8)


class TestAllegroL1NoParity(PotentialBattery):
    def make_potential(self) -> Potential:
        return Potential(small_allegro(1, parity=False, num_layers=3), [CU, AU], [-1.0, -2.0])


class TestAllegroL2(PotentialBattery):
    def make_potential(self) -> Potential:
        return Potential(small_allegro(2), [CU, AU], [-1.0, -2.0], scale=0.8)


def _atomic_energies(pot: Potential, pos: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
    return pot(radius_graph(pos, numbers, pot.r_max), compute_forces=False)["atomic_energies"]


def _chain(r_max: float, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Atom 0 at the origin, atom 1 at 0.8 r_max (neighbour of 0), atom 2 at about
    1.65 r_max (beyond r_max of 0, within r_max of 1), moved sideways by ``shift``; atom 3
    near 0 so that atom 0 has a 3-body environment."""
    pos = torch.tensor(
        [[0.0, 0.0, 0.0], [0.8 * r_max, 0.0, 0.0], [1.65 * r_max, shift, 0.3 * shift],
         [0.2, 0.6 * r_max, 0.1]], dtype=torch.float64,
    )  # fmt: skip
    assert pos[2].norm() > r_max and (pos[2] - pos[1]).norm() < r_max
    return pos, torch.tensor([CU, AU, CU, AU])


def test_strict_locality_against_message_passing():
    """Moving an atom that is beyond r_max of atom 0 (but a neighbour of its neighbour) leaves
    E_0 exactly unchanged for Allegro (any number of layers); for a 2-layer NequIP it changes
    E_0, so the check can fail."""
    torch.manual_seed(0)
    allegro = Potential(small_allegro(2, num_layers=3), [CU, AU]).double().eval()
    torch.manual_seed(0)
    nequip = NequIP(num_species=2, r_max=3.5, l_max=2, num_features=4, num_layers=2,
                    radial_hidden=8, avg_num_neighbors=6.0)  # fmt: skip
    nequip = Potential(nequip, [CU, AU]).double().eval()
    r_max = allegro.r_max
    (p_a, z), (p_b, _) = _chain(r_max, 0.0), _chain(r_max, 0.9)
    e_a, e_b = _atomic_energies(allegro, p_a, z), _atomic_energies(allegro, p_b, z)
    assert torch.equal(e_a[0], e_b[0]), (e_a[0] - e_b[0]).item()
    assert (e_a[1] - e_b[1]).abs() > 1e-6  # atom 1 sees atom 2 move: the test is not vacuous
    n_a, n_b = _atomic_energies(nequip, p_a, z), _atomic_energies(nequip, p_b, z)
    assert (n_a[0] - n_b[0]).abs() > 1e-6


def test_atomic_energy_gradient_vanishes_outside_the_cutoff():
    """dE_i / dr_k = 0 exactly for every atom k farther than r_max from i (a random cluster)."""
    torch.manual_seed(1)
    pot = Potential(small_allegro(2), [CU, AU]).double().eval()
    pos, numbers = random_cluster(12, seed=3, spread=4.0)
    pos = pos.clone().requires_grad_(True)
    energies = pot(radius_graph(pos, numbers, pot.r_max), compute_forces=False)["atomic_energies"]
    dist = torch.cdist(pos.detach(), pos.detach())
    checked = 0
    for i in range(pos.shape[0]):
        (g,) = torch.autograd.grad(energies[i], pos, retain_graph=True)
        far = dist[i] >= pot.r_max
        near = (dist[i] < pot.r_max) & (dist[i] > 0)
        assert g[far].abs().max() == 0 if far.any() else True
        checked += int(far.sum())
        if near.any():
            assert g[near].abs().max() > 1e-8
    assert checked > 10  # the cluster has atoms beyond each other's cutoff


def test_edge_energies_invariant_under_rotations_and_reflections():
    torch.manual_seed(2)
    model = small_allegro(2).double()
    pos, numbers = random_cluster(7, seed=4)
    g = radius_graph(pos, numbers, model.r_max)
    species = (numbers == AU).long()
    e0 = model.edge_energies(species, g.edge_index, g.edge_vectors())
    R = rand_matrix(dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    for Q in (R, -R, torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))):
        e1 = model.edge_energies(species, g.edge_index, g.edge_vectors() @ Q.T)
        torch.testing.assert_close(e1, e0, atol=1e-12, rtol=0)
    model32 = model.float()
    e32 = model32.edge_energies(species, g.edge_index, (g.edge_vectors() @ R.T).float())
    torch.testing.assert_close(e32.double(), e0, atol=1e-4, rtol=1e-4)


def test_weighted_harmonics_layout():
    sh = spherical_harmonics([0, 1, 2], torch.randn(5, 3), normalize=True)  # [5, 9]
    w = torch.randn(5, 3 * 3)  # 3 channels, l = 0, 1, 2
    v = weighted_harmonics(w, sh, 3, 2)  # [5, 3, 9]
    torch.testing.assert_close(v[:, :, 4:], w.reshape(5, 3, 3)[:, :, 2, None] * sh[:, None, 4:])
    torch.testing.assert_close(v[:, 1, 1:4], w[:, 4, None] * sh[:, 1:4])


@pytest.mark.parametrize("keep", ["4x0e + 4x0o + 4x1o + 4x1e + 4x2e + 4x2o", "4x0e"])
def test_fused_product_is_the_uuu_tensor_product(keep):
    """ChannelwiseProductLinear.paths equals o3.TensorProduct with unweighted "uuu" paths."""
    irreps1, irreps2 = o3.Irreps("4x0e + 4x1o + 4x1e + 4x2e"), o3.Irreps("4x0e + 4x1o + 4x2e")
    op = ChannelwiseProductLinear(irreps1, irreps2, keep).double()
    ref = _channelwise_product(irreps1, irreps2, {(ir.l, ir.p) for _, ir in o3.Irreps(keep)})
    ref = ref.double()
    x1 = torch.randn(6, irreps1.dim, dtype=torch.float64)
    x2 = torch.randn(6, irreps2.dim, dtype=torch.float64)
    mid = op.paths(_channel_major(x1, irreps1), _channel_major(x2, irreps2))
    expected = ref(x1, x2)  # one block [6, 4 * (2l + 1)] per path
    blocks = dict(zip(op.irreps_mid, torch.split(mid, [m.dim for m in op.irreps_mid], -1)))
    seen = 0
    for (mul, ir), block in blocks.items():
        per_path = block.reshape(6, 4, mul // 4, ir.dim)
        ref_blocks = [expected[:, s] for (_, ir3), s in zip(ref.irreps_out, ref.irreps_out.slices())
                      if ir3 == ir]  # fmt: skip
        for p, b in enumerate(ref_blocks):
            torch.testing.assert_close(per_path[:, :, p].flatten(1), b, atol=1e-12, rtol=0)
            seen += 1
    assert seen == len(ref.paths) > 0
    assert op.forward(_channel_major(x1, irreps1), _channel_major(x2, irreps2)).shape == (
        6, o3.Irreps(keep).dim)  # fmt: skip


def test_pair_scale_is_per_ordered_species_pair():
    """sigma[z_i, z_j] multiplies the energies of the edges from species z_i to z_j only."""
    torch.manual_seed(3)
    model = small_allegro(1).double()
    pos, numbers = random_cluster(6, seed=6)
    g = radius_graph(pos, numbers, model.r_max)
    species = (numbers == AU).long()
    before = model.edge_energies(species, g.edge_index, g.edge_vectors()).detach()
    with torch.no_grad():
        model.pair_scale[0, 1] = 3.0
    after = model.edge_energies(species, g.edge_index, g.edge_vectors()).detach()
    hit = (species[g.edge_index[0]] == 0) & (species[g.edge_index[1]] == 1)
    assert hit.any() and (~hit).any()
    torch.testing.assert_close(after[hit], 3.0 * before[hit])
    torch.testing.assert_close(after[~hit], before[~hit])


def test_published_shape_of_the_features():
    model = Allegro(num_species=1)
    assert str(model.irreps_hidden) == "16x0e+16x0o+16x1o+16x1e+16x2e+16x2o"
    assert (model.r_max, len(model.layers), model.edges.basis.num_basis) == (4.0, 2, 8)
    assert model.edges.cutoff.p == 6
    assert str(model.layers[-1].irreps_out) == "16x0e"  # the last layer: scalars only
    # the first product cannot reach 0o yet (Y x Y has no pseudoscalar), the second can
    assert "0o" not in str(model.layers[0].irreps_out)
    assert model.pair_scale.shape == (1, 1) and bool((model.pair_scale == 1).all())


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(1)
    pot = Potential(small_allegro(1), [CU, AU], [-1.0, -2.0], scale=0.5).double()
    with torch.no_grad():
        pot.model.pair_scale.uniform_(0.5, 1.5)
    save_model(pot, tmp_path / "m.pt")
    loaded = load_model(tmp_path / "m.pt")
    assert type(loaded.model) is Allegro and loaded.model.config() == pot.model.config()
    pos, numbers = random_cluster(5)
    torch.testing.assert_close(
        loaded.compute(numbers, pos)["forces"], pot.compute(numbers, pos)["forces"]
    )


def test_registry_builds_from_a_yaml_model_section():
    text = """
model_class: Allegro
model:
  num_species: 2
  r_max: 3.5
  l_max: 1
  num_tensor_features: 4
  latent_dim: 8
  two_body_hidden: [8, 8]
  latent_hidden: [8]
  edge_energy_hidden: [4]
"""
    d = yaml.safe_load(text)
    model = build_model(d["model_class"], d["model"], kind="potential")
    assert isinstance(model, Allegro)
    assert model.config()["two_body_hidden"] == [8, 8]
    assert build_model("Allegro", model.config()).config() == model.config()
    with pytest.raises(ValueError, match="unknown argument"):
        build_model("Allegro", {"num_features": 4})


def test_float32_and_float64_agree():
    torch.manual_seed(2)
    pot = Potential(small_allegro(1), [CU, AU])
    pos, numbers = random_cluster(5)
    e32 = pot.float().compute(numbers, pos.float())["energy"]
    e64 = pot.double().compute(numbers, pos)["energy"]
    assert abs(e32.item() - e64.item()) < 1e-4 * max(1.0, abs(e64.item()))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"l_max": -1}, "l_max"), ({"r_max": 0.0}, "r_max"), ({"num_layers": 0}, "num_layers"),
     ({"num_tensor_features": 2.5}, "num_tensor_features"), ({"latent_dim": 0}, "latent_dim"),
     ({"polynomial_p": 1}, "polynomial_p"), ({"avg_num_neighbors": -1.0}, "avg_num_neighbors"),
     ({"parity": "yes"}, "parity"), ({"two_body_hidden": [8, 0]}, "two_body_hidden"),
     ({"latent_hidden": 8}, "latent_hidden"), ({"edge_energy_hidden": [2.0]}, "edge_energy")],
)  # fmt: skip
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Allegro(**kwargs)


def _compile_case(backend: str) -> None:
    torch.manual_seed(5)
    model = small_allegro(2).double()
    pos, numbers = random_cluster(4)
    species = (numbers == AU).long()
    i, j = torch.triu_indices(4, 4, 1)
    edge_index = torch.cat([torch.stack([i, j]), torch.stack([j, i])], dim=1)

    def energy_and_grad(m):
        edge_vec = (pos[edge_index[1]] - pos[edge_index[0]]).requires_grad_(True)
        energy = m(species, edge_index, edge_vec).sum()
        return energy.detach(), torch.autograd.grad(energy, edge_vec)[0]

    eager = energy_and_grad(model)
    compiled = energy_and_grad(torch.compile(model, fullgraph=True, backend=backend))
    torch.testing.assert_close(compiled, eager)


def test_compiled_matches_eager_aot():
    """torch.compile(fullgraph=True) traces Allegro (energy and its gradient)."""
    _compile_case("aot_eager")


@pytest.mark.slow  # inductor code generation takes minutes; the trace is covered above
def test_compiled_matches_eager_inductor():
    _compile_case("inductor")


def test_edges_beyond_the_cutoff_contribute_nothing():
    """A graph built with a larger cutoff (e.g. a neighbour list with a skin) gives the same
    energies and forces: pairs at r >= r_max carry u(r) = 0 in every latent."""
    torch.manual_seed(4)
    pot = Potential(small_allegro(2), [CU, AU]).double().eval()
    pos, numbers = random_cluster(8, seed=5, spread=3.0)
    exact = pot(radius_graph(pos, numbers, pot.r_max))
    wide_graph = radius_graph(pos, numbers, 1.5 * pot.r_max)
    wide = pot(wide_graph)
    assert wide_graph.num_edges > radius_graph(pos, numbers, pot.r_max).num_edges
    for key in ("atomic_energies", "forces"):
        torch.testing.assert_close(wide[key].detach(), exact[key].detach(), atol=1e-12, rtol=0)


def test_training_through_the_config_path_lowers_the_loss(tmp_path):
    """A YAML config with ``model_class: Allegro`` trains on built-in Cu-Au structures
    (``equidyn train``'s path) and lowers the training loss."""
    from equidyn.data.builtin import builtin_dataset
    from equidyn.train.config import Config, TrainingConfig
    from equidyn.train.potential_task import evaluate_potential, potential_trainer
    from equidyn.train.trainer import build_potential

    cfg = Config.from_dict(yaml.safe_load("""
model_class: Allegro
model: {r_max: 3.5, l_max: 1, num_tensor_features: 4, latent_dim: 16, two_body_hidden: [16],
        latent_hidden: [16], edge_energy_hidden: [8]}
"""))  # fmt: skip
    graphs = builtin_dataset(n_structures=20, seed=0, r_max=3.5, cache_dir=tmp_path / "cache")
    torch.manual_seed(0)
    pot = build_potential(cfg.model_class, cfg.model, graphs[:12])
    assert isinstance(pot.model, Allegro) and pot.model.num_species == 2
    assert pot.model.config()["avg_num_neighbors"] > 1  # filled in from the data
    tcfg = TrainingConfig(epochs=5, batch_size=4, lr=0.02, output_dir=str(tmp_path / "run"),
                          progress=False, plots=False, log_epochs=False)  # fmt: skip
    trainer = potential_trainer(pot, graphs[:12], graphs[12:16], tcfg, test_graphs=graphs[16:])
    task = trainer.task
    before = evaluate_potential(trainer.model, task.train_graphs, weights=task.weights)["loss"]
    trainer.fit()
    after = evaluate_potential(task.best_potential(), task.train_graphs, weights=task.weights)
    assert after["loss"] < 0.8 * before
    assert type(load_model(tmp_path / "run" / "model.pt").model) is Allegro
