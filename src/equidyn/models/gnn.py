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
Same interface as :class:`equidyn.models.EGNN`
(:class:`~equidyn.models.particles.ParticleModel`); its raw inputs (:meth:`GNN.inputs`) are
the charges per particle (``node_attr_dim=1``) and ``q_i q_j`` per pair.
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
    pair_features,
)
from equidyn.models.registry import register_model

__all__ = ["GNN"]


@register_model(kind="particle")
class GNN(ParticleModel):
    """Non-equivariant message passing: ``GNN(pos, vel, node_attr, edge_attr) -> positions``.

    >>> model = GNN(num_features=16, num_layers=2, node_attr_dim=1, edge_attr_dim=1)
    >>> q = torch.ones(2, 5, 1)
    >>> model(torch.randn(2, 5, 3), torch.randn(2, 5, 3), q, q[:, :, None] * q[:, None, :]).shape
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
        self.embed = mlp([6 + node_attr_dim, width, width], False)
        self.phi_e = nn.ModuleList(
            mlp([2 * width + edge_attr_dim, width, width], True) for _ in range(num_layers)
        )
        self.phi_h = nn.ModuleList(mlp([2 * width, width, width], False) for _ in range(num_layers))
        self.decode = mlp([width, width, 3], False)

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, None]:
        pos, vel, node_attr, _ = inputs
        index, pair_attr = inputs.pairs()  # [n, n - 1], [batch, n, n - 1, edge_attr_dim] or None
        h = self.embed(torch.cat([pos, vel, node_attr], dim=-1))  # [batch, n, hidden]
        for phi_e, phi_h in zip(self.phi_e, self.phi_h):
            m = phi_e(pair_features(h, index, pair_attr))  # [batch, n, n - 1, hidden]
            h = h + phi_h(torch.cat([h, m.sum(2)], dim=-1))
        return pos + self.decode(h), None  # [batch, n, 3]
