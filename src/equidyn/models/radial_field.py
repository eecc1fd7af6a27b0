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
from torch import nn

from equidyn.models.egnn import _mlp, check_particle_inputs

__all__ = ["RadialField"]


class RadialField(nn.Module):
    """``RadialField(pos, vel, node_attr, edge_attr) -> positions`` (equations above).

    >>> model = RadialField(hidden_dim=16, n_layers=2, edge_attr_dim=1)
    >>> q = torch.ones(2, 5, 1)
    >>> model(torch.randn(2, 5, 3), torch.randn(2, 5, 3), torch.zeros(2, 5, 0),
    ...       q[:, :, None] * q[:, None, :]).shape
    torch.Size([2, 5, 3])
    """

    def __init__(
        self,
        hidden_dim: int = 64,
        n_layers: int = 4,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 1,
    ) -> None:
        super().__init__()
        if hidden_dim < 1 or n_layers < 1:
            raise ValueError(f"need hidden_dim, n_layers >= 1, got {hidden_dim}, {n_layers}")
        self.node_attr_dim, self.edge_attr_dim = node_attr_dim, edge_attr_dim
        self.phi = nn.ModuleList(
            _mlp([1 + edge_attr_dim, hidden_dim, hidden_dim, 1], False) for _ in range(n_layers)
        )
        self.psi = nn.ModuleList(
            _mlp([1 + node_attr_dim, hidden_dim, 1], False) for _ in range(n_layers)
        )
        with torch.no_grad():
            for mlp in self.phi:
                mlp[-1].weight.mul_(1e-3)
                mlp[-1].bias.zero_()

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
        n = pos.shape[1]
        mask = 1.0 - torch.eye(n, dtype=pos.dtype, device=pos.device)  # [n, n]
        speed = torch.cat([vel.norm(dim=-1, keepdim=True), node_attr], dim=-1)  # [batch, n, 1+c]
        x = pos
        for phi, psi in zip(self.phi, self.psi):
            diff = x[:, :, None, :] - x[:, None, :, :]  # [batch, n, n, 3]
            # sqrt(r² + 1e-12): a smooth distance, also on the (masked) diagonal
            dist = ((diff * diff).sum(-1, keepdim=True) + 1e-12).sqrt()
            feats = (
                dist
                if self.edge_attr_dim == 0 or edge_attr is None
                else torch.cat([dist, edge_attr], dim=-1)
            )
            w = phi(feats)[..., 0] * mask  # [batch, n, n]
            x = x + psi(speed) * vel + (w[..., None] * diff).sum(2) / (n - 1)
        return x  # [batch, n, 3]
