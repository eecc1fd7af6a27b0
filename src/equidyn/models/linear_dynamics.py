"""The linear-motion baseline ``x̂ = x + v t`` with one learned time ``t``.

This is the baseline called ``Linear`` in the charged N-body tables of EGNN and in the
equidyn issue tracker; it is named ``LinearDynamics`` here because ``equidyn.o3.Linear`` is
the equivariant linear layer. It is exactly E(3) and permutation equivariant and ignores the
node and edge attributes (they are still checked, so that it is a drop-in for the other models).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn.models.particles import ParticleInputs, ParticleModel
from equidyn.models.registry import register_model

__all__ = ["LinearDynamics"]


@register_model(kind="particle")
class LinearDynamics(ParticleModel):
    """``LinearDynamics(pos, vel, node_attr, edge_attr) = pos + t · vel`` with learned ``t``.

    ``t`` starts at ``t_init`` (1.0: the 1000 steps of 0.001 between frames 30 and 40).

    >>> model = LinearDynamics(node_attr_dim=0, edge_attr_dim=0)
    >>> model(torch.zeros(1, 2, 3), torch.ones(1, 2, 3), torch.zeros(1, 2, 0))
    tensor([[[1., 1., 1.],
             [1., 1., 1.]]], grad_fn=<AddBackward0>)
    """

    def __init__(self, node_attr_dim: int = 0, edge_attr_dim: int = 1, t_init: float = 1.0) -> None:
        super().__init__(node_attr_dim, edge_attr_dim)
        self.t = nn.Parameter(torch.tensor(float(t_init)))

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, None]:
        return inputs.pos + self.t.to(inputs.pos.dtype) * inputs.vel, None  # [batch, n, 3]
