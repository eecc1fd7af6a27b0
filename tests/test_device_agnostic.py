"""Device and dtype agnosticism of every registered model, testable without a GPU.

A model that builds a tensor in ``forward`` without the input's device (``torch.zeros(n)``)
works on CPU and breaks on CUDA. Running each model on PyTorch's data-less ``meta`` device
turns such a tensor into an error on CPU: any non-scalar CPU tensor meeting a meta tensor
raises. The same runs check that no CPU-only kernel (the native C tensor product) is chosen
off the CPU, i.e. that CUDA goes through the torch-op / compiled backends. The dtype tests
run each potential in float32 and float64.
"""

from __future__ import annotations

import pytest
import torch

import equidyn.dynamics  # noqa: F401  (registers NeuralODE, whatever else was imported first)
from equidyn.graph.batch import AtomicGraph, radius_graph
from equidyn.models import registry
from equidyn.models.particles import finite_inputs_checked
from equidyn.models.potential import Potential
from equidyn.o3 import tensor_product

SMALL = {  # constructor arguments that keep each potential tiny
    "NequIP": {"l_max": 2, "num_features": 4, "num_layers": 2},
    "MACE": {"hidden_irreps": "4x0e+4x1o", "l_max": 2, "correlation": 2, "radial_mlp": [8]},
    "Allegro": {
        "l_max": 1,
        "num_tensor_features": 4,
        "latent_dim": 8,
        "two_body_hidden": [8],
        "latent_hidden": [8],
        "edge_energy_hidden": [8],
    },
    "ESCN": {},
}


def _library_models(kind: str) -> list[str]:
    """The registered models of ``kind`` that equidyn ships (tests register their own too)."""
    names = registry.registered_models(kind)
    return [n for n in names if registry.MODEL_REGISTRY[n].__module__.startswith("equidyn.")]


def _potential_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return registry.MODEL_REGISTRY[name](num_species=2, r_max=3.0, **SMALL[name])


@pytest.fixture
def backends(monkeypatch) -> list[str]:
    """The names of the tensor-product backends chosen during the test."""
    chosen: list[str] = []
    select = tensor_product.select

    def spy(*args):
        backend = select(*args)
        chosen.append(backend.name)
        return backend

    monkeypatch.setattr(tensor_product, "select", spy)
    return chosen


def test_every_potential_model_is_covered() -> None:
    assert set(_library_models("potential")) == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_potential_models_follow_the_device_of_their_inputs(name: str, backends) -> None:
    model = _potential_model(name).to("meta")
    g = torch.Generator().manual_seed(1)
    species = torch.randint(0, 2, (6,), generator=g).to("meta")
    edge_index = torch.randint(0, 6, (2, 14), generator=g).to("meta")
    edge_vec = torch.randn(14, 3, generator=g).to("meta")
    out = model(species, edge_index, edge_vec)
    assert out.device.type == "meta" and out.shape == (6,)
    assert "native" not in backends  # the C kernel is CPU-only


@pytest.mark.parametrize("name", ["NequIP", "MACE"])
def test_potential_energy_and_forces_on_another_device(name: str, backends) -> None:
    pot = Potential(_potential_model(name), [29, 79])
    pos = torch.randn(6, 3, generator=torch.Generator().manual_seed(2)) * 1.5
    graph = radius_graph(pos, [29, 79, 29, 29, 79, 29], 3.0)
    assert graph.num_edges > 0
    meta = AtomicGraph(**{k: v.to("meta") if isinstance(v, torch.Tensor) else v
                          for k, v in vars(graph).items()})  # fmt: skip
    out = pot.to("meta")(meta, compute_forces=True, compute_stress=True)
    assert {k: v.device.type for k, v in out.items()} == dict.fromkeys(out, "meta")
    assert out["forces"].shape == (6, 3) and out["stress"].shape == (1, 3, 3)
    assert backends and set(backends) <= {"torch-op", "functional"}


@pytest.mark.parametrize("name", _library_models("particle"))
def test_particle_models_follow_the_device_of_their_inputs(name: str) -> None:
    torch.manual_seed(0)
    if name == "NeuralODE":  # its step sizes come from its time grid, a buffer read as numbers
        pytest.skip("NeuralODE reads its t_span buffer's values: not possible on 'meta'")
    model = registry.MODEL_REGISTRY[name]()
    g = torch.Generator().manual_seed(3)
    pos, vel = torch.randn(2, 4, 3, generator=g), torch.randn(2, 4, 3, generator=g)
    node = torch.randn(2, 4, model.node_attr_dim, generator=g)
    edge = torch.randn(2, 4, 4, model.edge_attr_dim, generator=g)
    with finite_inputs_checked():
        out = model.to("meta")(*(t.to("meta") for t in (pos, vel, node, edge)))
    assert out.device.type == "meta" and out.shape == (2, 4, 3)


@pytest.mark.parametrize("name", _library_models("forecast"))
def test_forecast_models_follow_the_device_of_their_inputs(name: str) -> None:
    torch.manual_seed(0)
    model = registry.MODEL_REGISTRY[name]()
    g = torch.Generator().manual_seed(4)
    window = torch.randn(2, model.window, 4, 3, generator=g)
    node = torch.randn(2, 4, model.node_attr_dim, generator=g)
    edge = torch.randn(2, 4, 4, model.edge_attr_dim, generator=g)
    with finite_inputs_checked():
        out = model.to("meta")(*(t.to("meta") for t in (window, node, edge)))
    assert out.device.type == "meta" and out.shape == (2, 4, 3)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_potentials_run_in_float32_and_float64(name: str) -> None:
    pot = Potential(_potential_model(name), [29, 79])
    pos = torch.randn(6, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 1.5
    numbers = [29, 79, 29, 29, 79, 29]
    outs = {}
    for dtype in (torch.float32, torch.float64):
        p = pot.to(dtype)
        out = p(radius_graph(pos.to(dtype), numbers, 3.0), compute_forces=True)
        assert {v.dtype for v in out.values()} == {dtype}
        outs[dtype] = out
    for key in ("energy", "forces"):
        torch.testing.assert_close(outs[torch.float32][key].double(), outs[torch.float64][key],
                                   rtol=1e-3, atol=1e-4)  # fmt: skip
