"""A plain (non-equivariant) message-passing GNN baseline for particle dynamics.

The raw coordinates and velocities are ordinary input features, so the network has to
learn the symmetries of space from data (or from augmentation). On the fully connected
graph of ``n`` particles:

.. math::

    h_i^0 &= \\mathrm{MLP}(x_i, v_i, c_i) \\\\
    m_{ij} &= \\phi_e(h_i, h_j, a_{ij}) \\\\
    h_i^{l+1} &= h_i^l + \\phi_h\\big(h_i^l, \\textstyle\\sum_{j \\ne i} m_{ij}\\big) \\\\
    \\hat x_i &= x_i + W h_i^L

(``c_i`` node attributes, ``a_ij`` edge attributes). The sum over neighbours makes it
permutation equivariant; it is *not* equivariant to rotations, reflections or translations.
Same interface as :class:`equidyn.models.EGNN`.
"""

from __future__ import annotations

import torch
from torch import nn

from equidyn.models.egnn import _mlp, check_particle_inputs

__all__ = ["GNN"]


class GNN(nn.Module):
    """Non-equivariant message passing: ``GNN(pos, vel, node_attr, edge_attr) -> positions``.

    >>> model = GNN(hidden_dim=16, n_layers=2, node_attr_dim=1, edge_attr_dim=1)
    >>> q = torch.ones(2, 5, 1)
    >>> model(torch.randn(2, 5, 3), torch.randn(2, 5, 3), q, q[:, :, None] * q[:, None, :]).shape
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
        self.embed = _mlp([6 + node_attr_dim, hidden_dim, hidden_dim], False)
        self.phi_e = nn.ModuleList(
            _mlp([2 * hidden_dim + edge_attr_dim, hidden_dim, hidden_dim], True)
            for _ in range(n_layers)
        )
        self.phi_h = nn.ModuleList(
            _mlp([2 * hidden_dim, hidden_dim, hidden_dim], False) for _ in range(n_layers)
        )
        self.decode = _mlp([hidden_dim, hidden_dim, 3], False)

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
        h = self.embed(torch.cat([pos, vel, node_attr], dim=-1))  # [batch, n, hidden]
        for phi_e, phi_h in zip(self.phi_e, self.phi_h):
            parts = [h[:, :, None, :].expand(-1, -1, n, -1), h[:, None, :, :].expand(-1, n, -1, -1)]
            if self.edge_attr_dim > 0 and edge_attr is not None:
                parts.append(edge_attr)
            m = phi_e(torch.cat(parts, dim=-1)) * mask[..., None]  # [batch, n, n, hidden]
            h = h + phi_h(torch.cat([h, m.sum(2)], dim=-1))
        return pos + self.decode(h)  # [batch, n, 3]
