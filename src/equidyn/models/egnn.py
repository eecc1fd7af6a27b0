"""E(n)-equivariant graph neural network (EGNN, Satorras, Hoogeboom & Welling 2021).

On a fully connected graph of ``n`` particles with scalar node features ``h_i``, positions
``x_i`` and (velocity variant) velocities ``v_i``, layer ``l`` computes

.. math::

    m_{ij} &= \\phi_e(h_i, h_j, \\|x_i - x_j\\|^2, a_{ij})
        \\quad \\text{(edge_model, eq. 3)} \\\\
    v_i' &= \\phi_v(h_i)\\, v_i + C \\sum_{j \\ne i} (x_i - x_j)\\, \\phi_x(m_{ij})
        \\quad \\text{(velocity_model, eq. 7)} \\\\
    x_i' &= x_i + v_i'
        \\quad \\text{(coord_model, eq. 7)} \\\\
    h_i' &= h_i + \\phi_h\\big(h_i, \\textstyle\\sum_{j \\ne i} m_{ij}\\big)
        \\quad \\text{(node_model, eqs. 5-6)}

with ``C = 1/(n − 1)`` and ``v_i`` the input velocity in every layer. Without velocities
(``velocity=False``) the coordinate update is ``x_i' = x_i + C Σ_j (x_i − x_j) φ_x(m_ij)``
(eq. 4). Only invariants (``h``, ``|x_i − x_j|²``, ``a_ij``) enter the MLPs, so the predicted
positions transform exactly like the input positions under rotations, reflections and
translations, and permuting the particles permutes the output.

The particle-model interface (:class:`~equidyn.models.particles.ParticleModel`)::

    model(pos, vel, node_attr, edge_attr=None) -> predicted positions   # [batch, n, 3]

For the charged N-body protocol ``node_attr`` is empty, ``edge_attr = [q_i q_j, |x_i − x_j|²]``
(:meth:`EGNN.inputs` with ``edge_attr_dim=2``) and the node input is ``|v_i|``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn._deprecation import renamed_arguments
from equidyn.models.particles import (
    RENAMED_ARGUMENTS,
    ParticleInputs,
    ParticleModel,
    ParticleSystem,
    check_particle_inputs,
    check_sizes,
    finite_inputs_checked,
    mlp,
    neighbour_index,
    pair_features,
    relative_positions,
)
from equidyn.models.registry import register_model

__all__ = ["EGNN", "EGNNLayer", "check_particle_inputs", "finite_inputs_checked"]


class EGNNLayer(nn.Module):
    """One EGNN layer (equations in the module docstring); one method per equation.

    Pairs follow the layout of :mod:`equidyn.models.particles`: ``pair_attr`` is
    (batch, n, n − 1, edge_attr_dim) (:func:`~equidyn.models.particles.off_diagonal` of the
    dense edge attributes) or ``None``, ``index`` is
    :func:`~equidyn.models.particles.neighbour_index`.

    >>> layer = EGNNLayer(num_features=8, edge_attr_dim=1)
    >>> h, x, v = torch.randn(2, 4, 8), torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    >>> h2, x2 = layer(h, x, v, torch.randn(2, 4, 3, 1), neighbour_index(4))
    >>> h2.shape, x2.shape
    (torch.Size([2, 4, 8]), torch.Size([2, 4, 3]))
    """

    @renamed_arguments(hidden_dim="num_features")
    def __init__(
        self,
        num_features: int,
        edge_attr_dim: int,
        *,
        velocity: bool = True,
        coord_init_scale: float = 1e-3,
    ) -> None:
        super().__init__()
        width = num_features
        self.velocity = velocity
        self.phi_e = mlp([2 * width + 1 + edge_attr_dim, width, width], True)
        self.phi_x = mlp([width, width, 1], False)
        with torch.no_grad():  # start close to the identity / linear dynamics
            self.phi_x[-1].weight.mul_(coord_init_scale)
            self.phi_x[-1].bias.zero_()
        self.phi_h = mlp([2 * width, width, width], False)
        self.phi_v = mlp([width, width, 1], False) if velocity else None

    def edge_model(
        self, h: Tensor, radial: Tensor, pair_attr: Tensor | None, index: Tensor
    ) -> Tensor:
        """``m_ij = φ_e(h_i, h_j, |x_i − x_j|², a_ij)``: (batch, n, n − 1, hidden)."""
        return self.phi_e(pair_features(h, index, radial[..., None], pair_attr))

    def coord_model(self, rel: Tensor, m: Tensor) -> Tensor:
        """``C Σ_{j≠i} (x_i − x_j) φ_x(m_ij)``: the equivariant update vector (batch, n, 3)."""
        w = self.phi_x(m)  # [batch, n, n - 1, 1]
        return (w * rel).sum(2) / rel.shape[2]  # [batch, n, 3]

    def velocity_model(self, h: Tensor, vel: Tensor, update: Tensor) -> Tensor:
        """``v_i' = φ_v(h_i) v_i + update_i`` (batch, n, 3); ``update`` from :meth:`coord_model`."""
        assert self.phi_v is not None  # built with velocity=True
        return self.phi_v(h) * vel + update  # [batch, n, 3]

    def node_model(self, h: Tensor, m: Tensor) -> Tensor:
        """``h_i' = h_i + φ_h(h_i, Σ_{j≠i} m_ij)`` (batch, n, hidden)."""
        return h + self.phi_h(torch.cat([h, m.sum(2)], dim=-1))

    def messages(
        self, h: Tensor, x: Tensor, pair_attr: Tensor | None, index: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``(m_ij, C Σ_j (x_i − x_j) φ_x(m_ij))`` of positions ``x``."""
        rel = relative_positions(x, index)  # [batch, n, n - 1, 3]
        m = self.edge_model(h, (rel * rel).sum(-1), pair_attr, index)
        return m, self.coord_model(rel, m)

    def forward(
        self,
        h: Tensor,
        x: Tensor,
        vel: Tensor | None,
        pair_attr: Tensor | None,
        index: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        index = neighbour_index(x.shape[1], x.device) if index is None else index
        m, update = self.messages(h, x, pair_attr, index)
        if self.velocity and vel is not None:
            x = x + self.velocity_model(h, vel, update)
        else:
            x = x + update
        return self.node_model(h, m), x


@register_model(kind="particle")
class EGNN(ParticleModel):
    """EGNN for particle dynamics: ``EGNN(pos, vel, node_attr, edge_attr) -> positions``.

    The node input is ``[|v_i|, node_attr_i]`` embedded to ``num_features``; ``num_layers``
    :class:`EGNNLayer` follow (``velocity=True`` is the velocity variant EGNN-vel of the
    paper). Protocol settings for the charged N-body task: ``num_features=64, num_layers=4,
    node_attr_dim=0, edge_attr_dim=2`` (``a_ij = [q_i q_j, |x_i − x_j|²]``, see :meth:`inputs`).

    With ``predict_velocity=True`` an extra equivariant head (one more edge model and
    velocity update) also predicts the velocity at the target time; :meth:`forward_state`
    returns both, which is what chained rollouts need.

    >>> model = EGNN(num_features=16, num_layers=2, node_attr_dim=0, edge_attr_dim=1)
    >>> pos, vel = torch.randn(3, 5, 3), torch.randn(3, 5, 3)
    >>> q = torch.randint(0, 2, (3, 5, 1)) * 2.0 - 1
    >>> model(pos, vel, torch.zeros(3, 5, 0), q[:, :, None] * q[:, None, :]).shape
    torch.Size([3, 5, 3])
    """

    @renamed_arguments(**RENAMED_ARGUMENTS)
    def __init__(
        self,
        num_features: int = 64,
        num_layers: int = 4,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 1,
        *,
        velocity: bool = True,
        predict_velocity: bool = False,
        coord_init_scale: float = 1e-3,
    ) -> None:
        super().__init__(node_attr_dim, edge_attr_dim)
        check_sizes(num_features=num_features, num_layers=num_layers)
        self.velocity, self.predict_velocity = velocity, predict_velocity
        self.embed = nn.Linear(1 + node_attr_dim, num_features)
        self.layers = nn.ModuleList(
            EGNNLayer(
                num_features, edge_attr_dim, velocity=velocity, coord_init_scale=coord_init_scale
            )
            for _ in range(num_layers)
        )
        self.velocity_head = (
            EGNNLayer(num_features, edge_attr_dim, velocity=True, coord_init_scale=coord_init_scale)
            if predict_velocity
            else None
        )
        if self.velocity_head is not None:
            with torch.no_grad():  # start at v' = v
                last = self.velocity_head.phi_v[-1]
                last.weight.zero_()
                last.bias.fill_(1.0)

    @property
    def predicts_velocity(self) -> bool:
        return self.velocity_head is not None

    def inputs(self, system: ParticleSystem) -> tuple[Tensor, Tensor | None]:
        """As :meth:`ParticleModel.inputs`; with ``edge_attr_dim=2`` the edges of the paper's
        N-body model, ``[q_i q_j, |x_i − x_j|²]``."""
        if self.edge_attr_dim != 2 or self.node_attr_dim != 0:
            return super().inputs(system)
        edges = torch.cat([system.charge_products(), system.squared_distances()], dim=-1)
        return system.empty(), edges  # [batch, n, 0], [batch, n, n, 2]

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor | None]:
        pos, vel, node_attr, _ = inputs
        index, pair_attr = inputs.pairs()  # [n, n - 1], [batch, n, n - 1, edge_attr_dim] or None
        speed = vel.norm(dim=-1, keepdim=True)  # [batch, n, 1]
        h = self.embed(torch.cat([speed, node_attr], dim=-1))  # [batch, n, hidden]
        x = pos
        for layer in self.layers:
            h, x = layer(h, x, vel if self.velocity else None, pair_attr, index)
        if not velocity or self.velocity_head is None:
            return x, None
        head = self.velocity_head
        return x, head.velocity_model(h, vel, head.messages(h, x, pair_attr, index)[1])
