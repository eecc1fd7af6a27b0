"""LinearDynamics (src/equidyn/models/linear_dynamics.py): x + v t with a learned t."""

from __future__ import annotations

import pytest
import torch

from equidyn.models import LinearDynamics
from equidyn.testing import assert_equivariant


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equivariance(dtype):
    model = LinearDynamics(edge_attr_dim=0, t_init=0.3).to(dtype)
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(2, 5, 3, generator=g, dtype=dtype)
    vel = torch.randn(2, 5, 3, generator=g, dtype=dtype)
    assert_equivariant(
        lambda p, v: model(p, v, p.new_zeros(*p.shape[:2], 0)),
        irreps_in=["cartesian_points", "1o"],
        irreps_out=["cartesian_points"],
        args_in=(pos, vel),
        translations=True,
        permutations=True,
        node_dims_in=1,
        node_dims_out=1,
    )


def test_learns_the_time():
    model = LinearDynamics(edge_attr_dim=0)
    g = torch.Generator().manual_seed(0)
    pos, vel = torch.randn(4, 3, 3, generator=g), torch.randn(4, 3, 3, generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        loss = ((model(pos, vel, pos.new_zeros(4, 3, 0)) - (pos + 0.4 * vel)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert abs(model.t.item() - 0.4) < 1e-2
    with pytest.raises(ValueError, match="node_attr"):
        model(pos, vel, pos.new_zeros(4, 2, 0))
