"""The linear-motion baseline ``x̂ = x + v t`` with one learned time ``t``.

This is the baseline called ``Linear`` in the charged N-body tables of EGNN and in the
equidyn issue tracker; it is named ``LinearDynamics`` here because ``equidyn.o3.Linear`` is
the equivariant linear layer. It is exactly E(3) and permutation equivariant and ignores the
node and edge attributes (they are still checked, so that it is a drop-in for the other models).
"""

from __future__ import annotations

import torch
from torch import nn

from equidyn.models.egnn import check_particle_inputs

__all__ = ["LinearDynamics"]


class LinearDynamics(nn.Module):
    """``LinearDynamics(pos, vel, node_attr, edge_attr) = pos + t · vel`` with learned ``t``.

    ``t`` starts at ``t_init`` (1.0: the 1000 steps of 0.001 between frames 30 and 40).

    >>> model = LinearDynamics(node_attr_dim=0, edge_attr_dim=0)
    >>> model(torch.zeros(1, 2, 3), torch.ones(1, 2, 3), torch.zeros(1, 2, 0))
    tensor([[[1., 1., 1.],
             [1., 1., 1.]]], grad_fn=<AddBackward0>)
    """

    def __init__(self, node_attr_dim: int = 0, edge_attr_dim: int = 1, t_init: float = 1.0) -> None:
        super().__init__()
        self.node_attr_dim, self.edge_attr_dim = node_attr_dim, edge_attr_dim
        self.t = nn.Parameter(torch.tensor(float(t_init)))

    def forward(
        self,
        pos: torch.Tensor,
        vel: torch.Tensor,
        node_attr: torch.Tensor,
        edge_attr: torch.Tensor | None = None,
    ) -> torch.Tensor:
        check_particle_inputs(
            pos, vel, node_attr, edge_attr, self.node_attr_dim, self.edge_attr_dim
        )
        return pos + self.t.to(pos.dtype) * vel  # [batch, n, 3]
