"""RadialField (src/equidyn/models/radial_field.py): equivariance, training, bad input."""

from __future__ import annotations

import pytest
import torch

from equidyn.models import RadialField
from equidyn.testing import assert_equivariant


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_e3_and_permutation_equivariance(dtype):
    torch.manual_seed(0)
    model = RadialField(num_features=16, num_layers=2, node_attr_dim=1, edge_attr_dim=1).to(dtype)
    with torch.no_grad():
        for mlp in model.phi:
            mlp[-1].weight.mul_(300.0)
    g = torch.Generator().manual_seed(1)
    pos = torch.randn(2, 5, 3, generator=g, dtype=dtype)
    vel = torch.randn(2, 5, 3, generator=g, dtype=dtype)
    q = (torch.randint(0, 2, (2, 5, 1), generator=g) * 2 - 1).to(dtype)
    assert_equivariant(
        lambda p, v, c: model(p, v, c, c[:, :, None] * c[:, None]),
        irreps_in=["cartesian_points", "1o", "0e"],
        irreps_out=["cartesian_points"],
        args_in=(pos, vel, q),
        translations=True,
        permutations=True,
        node_dims_in=1,
        node_dims_out=1,
    )


def test_training_and_bad_input():
    torch.manual_seed(0)
    model = RadialField(num_features=16, num_layers=2, edge_attr_dim=0)
    g = torch.Generator().manual_seed(2)
    pos, vel = torch.randn(8, 4, 3, generator=g), torch.randn(8, 4, 3, generator=g)
    target = pos + 0.7 * vel - 0.1 * (pos - pos.mean(1, keepdim=True))
    node = pos.new_zeros(8, 4, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = ((model(pos, vel, node) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ValueError, match="no edge attributes"):
        model(pos, vel, node, torch.ones(8, 4, 4, 1))
    with pytest.raises(ValueError, match="at least 2 particles"):
        model(pos[:, :1], vel[:, :1], node[:, :1])
