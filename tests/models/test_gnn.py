"""GNN baseline (src/equidyn/models/gnn.py): permutation equivariant, NOT E(3) equivariant."""

from __future__ import annotations

import pytest
import torch

from equidyn.models import GNN
from equidyn.testing import assert_equivariant, equivariance_error


def make_inputs(batch=2, n=5, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    vel = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    q = (torch.randint(0, 2, (batch, n, 1), generator=g) * 2 - 1).to(dtype)
    return pos, vel, q


def fn_of(model):
    return lambda pos, vel, q: model(pos, vel, q, q[:, :, None, :] * q[:, None, :, :])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_permutation_equivariant(dtype):
    torch.manual_seed(0)
    model = GNN(num_features=16, num_layers=2, node_attr_dim=1, edge_attr_dim=1).to(dtype)
    pos, vel, q = make_inputs(dtype=dtype)
    out = fn_of(model)(pos, vel, q)
    perm = torch.tensor([3, 0, 4, 1, 2])
    out_p = fn_of(model)(pos[:, perm], vel[:, perm], q[:, perm])
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    assert (out_p - out[:, perm]).abs().max() < tol


def test_not_e3_equivariant():
    torch.manual_seed(0)
    model = GNN(num_features=16, num_layers=2, node_attr_dim=1, edge_attr_dim=1).double()
    args = make_inputs()
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(
            fn_of(model),
            irreps_in=["cartesian_points", "1o", "0e"],
            irreps_out=["cartesian_points"],
            args_in=args,
            translations=True,
            node_dims_in=1,
            node_dims_out=1,
        )
    err = equivariance_error(
        fn_of(model), ["cartesian_points", "1o", "0e"], ["cartesian_points"], args_in=args
    )
    assert min(err.values()) > 1e-3


def test_short_training_lowers_the_loss_and_bad_input():
    torch.manual_seed(0)
    model = GNN(num_features=16, num_layers=1, node_attr_dim=1, edge_attr_dim=1)
    pos, vel, q = make_inputs(batch=8, dtype=torch.float32)
    target = pos + 0.5 * vel
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        loss = ((fn_of(model)(pos, vel, q) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.7 * first
    with pytest.raises(ValueError, match="edge_attr"):
        model(pos, vel, q, None)
    with pytest.raises(ValueError, match="vel contains NaN"):
        model(pos, vel * float("nan"), q, q[:, :, None] * q[:, None])
