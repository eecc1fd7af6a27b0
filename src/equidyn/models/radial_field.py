"""Radial field (Köhler, Klein & Noé 2020, "Equivariant flows"), velocity variant.

The update of particle ``i`` is a sum of pair vectors weighted by functions of the pair
distance, plus its own velocity weighted by a function of its speed; ``L`` such layers:

.. math::

    x_i^{l+1} = x_i^l + \\psi_l(|v_i|)\\, v_i
                + \\frac{1}{n-1} \\sum_{j \\ne i} (x_i^l - x_j^l)\\,
                  \\phi_l\\big(|x_i^l - x_j^l|, a_{ij}\\big)

Only distances and speeds enter the scalar functions, so it is E(3) and permutation
equivariant, but it has no node features: it cannot carry information beyond pairs.
Same interface as :class:`equidyn.models.EGNN`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn._deprecation import renamed_arguments
from equidyn.models.particles import (
    RENAMED_ARGUMENTS,
    ParticleInputs,
    ParticleModel,
    check_sizes,
    mlp,
    relative_positions,
)
from equidyn.models.registry import register_model

__all__ = ["RadialField"]


@register_model(kind="particle")
class RadialField(ParticleModel):
    """``RadialField(pos, vel, node_attr, edge_attr) -> positions`` (equations above).

    >>> model = RadialField(num_features=16, num_layers=2, edge_attr_dim=1)
    >>> q = torch.ones(2, 5, 1)
    >>> model(torch.randn(2, 5, 3), torch.randn(2, 5, 3), torch.zeros(2, 5, 0),
    ...       q[:, :, None] * q[:, None, :]).shape
    torch.Size([2, 5, 3])
    """

    @renamed_arguments(**RENAMED_ARGUMENTS)
    def __init__(
        self,
        num_features: int = 64,
        num_layers: int = 4,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 1,
    ) -> None:
        super().__init__(node_attr_dim, edge_attr_dim)
        check_sizes(num_features=num_features, num_layers=num_layers)
        width = num_features
        self.phi = nn.ModuleList(
            mlp([1 + edge_attr_dim, width, width, 1], False) for _ in range(num_layers)
        )
        self.psi = nn.ModuleList(
            mlp([1 + node_attr_dim, width, 1], False) for _ in range(num_layers)
        )
        with torch.no_grad():
            for net in self.phi:
                net[-1].weight.mul_(1e-3)
                net[-1].bias.zero_()

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, None]:
        pos, vel, node_attr, _ = inputs
        index, pair_attr = inputs.pairs()  # [n, n - 1], [batch, n, n - 1, edge_attr_dim] or None
        speed = torch.cat([vel.norm(dim=-1, keepdim=True), node_attr], dim=-1)  # [batch, n, 1+c]
        x = pos
        for phi, psi in zip(self.phi, self.psi):
            rel = relative_positions(x, index)  # [batch, n, n - 1, 3]
            # sqrt(r² + 1e-12): a smooth distance, also for particles on top of each other
            dist = ((rel * rel).sum(-1, keepdim=True) + 1e-12).sqrt()
            feats = dist if pair_attr is None else torch.cat([dist, pair_attr], dim=-1)
            x = x + psi(speed) * vel + (phi(feats) * rel).sum(2) / rel.shape[2]
        return x, None  # [batch, n, 3]
