"""The plain Transformer baseline (src/equidyn/models/transformer.py): permutation
equivariant and nothing more, trains, clear errors on bad input, buildable by name."""

from __future__ import annotations

import pytest
import torch

from equidyn.models import Transformer, build_model
from equidyn.testing import equivariance_error


def make_inputs(dtype: torch.dtype, batch: int = 3, n: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(batch, n, 3, generator=g, dtype=torch.float64)
    vel = torch.randn(batch, n, 3, generator=g, dtype=torch.float64)
    mass = torch.rand(batch, n, 1, generator=g, dtype=torch.float64)
    return [pos.to(dtype), vel.to(dtype), mass.to(dtype)]


def small(dtype: torch.dtype = torch.float64, **kw) -> Transformer:
    torch.manual_seed(0)
    return Transformer(node_attr_dim=1, num_features=16, num_layers=2, num_heads=4, **kw).to(dtype)


SPECS = dict(irreps_in=["cartesian_points", "1o", "1x0e"], node_dims_in=1, node_dims_out=1)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_permutation_equivariant(dtype, tol):
    model = small(dtype, predict_velocity=True)
    pos, vel, mass = make_inputs(dtype)
    with torch.no_grad():
        x, v = model.forward_state(pos, vel, mass)
    for seed in range(3):
        perm = torch.randperm(5, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            xp, vp = model.forward_state(pos[:, perm], vel[:, perm], mass[:, perm])
        scale = max(1.0, float(x.abs().max()))
        assert (xp - x[:, perm]).abs().max() / scale < tol
        assert (vp - v[:, perm]).abs().max() / scale < tol


def test_not_rotation_reflection_or_translation_equivariant():
    """What the GATr experiments test: a baseline with no E(3) symmetry built in."""
    model, args = small(), make_inputs(torch.float64)
    err = equivariance_error(model, irreps_out=["cartesian_points"], args_in=args, **SPECS)
    assert err["proper rotation"] > 1e-4 and err["improper rotation"] > 1e-4
    pos, vel, mass = args
    t = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    assert (model(pos + t, vel, mass) - (model(pos, vel, mass) + t)).abs().max() > 1e-4


def test_training_lowers_the_loss():
    from equidyn.dynamics import PlanetaryNBodyDataset

    ds = PlanetaryNBodyDataset(32, planets=3, seed=0)
    model = small(torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = ((model(ds.pos, ds.vel, ds.charges) - ds.target_pos) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_input_and_settings():
    with pytest.raises(ValueError, match="no edge attributes"):
        Transformer(edge_attr_dim=1)
    with pytest.raises(ValueError, match="num_heads dividing num_features"):
        Transformer(num_features=10, num_heads=4)
    pos, vel, mass = make_inputs(torch.float64)
    with pytest.raises(ValueError, match="node_attr"):
        small()(pos, vel, mass[..., :0])
    with pytest.raises(TypeError, match="float64 parameters"):
        small()(pos.float(), vel.float(), mass.float())
    with pytest.raises(ValueError, match="forward_state needs"):
        small().forward_state(pos, vel, mass)


def test_built_by_name_with_its_arguments():
    kw = {"node_attr_dim": 1, "num_features": 8, "num_layers": 1, "num_heads": 2}
    model = build_model("Transformer", kw, kind="particle")
    assert isinstance(model, Transformer) and model(*make_inputs(torch.float32)).shape == (3, 5, 3)
