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

Common interface of the dynamics models in equidyn (``EGNN``, ``GNN``, ``RadialField``,
``LinearDynamics``, :class:`equidyn.dynamics.NeuralODE`)::

    model(pos, vel, node_attr, edge_attr=None) -> predicted positions   # [batch, n, 3]

``pos``, ``vel``: (batch, n, 3); ``node_attr``: (batch, n, node_attr_dim) per-particle
scalars (dimension 0 allowed); ``edge_attr``: (batch, n, n, edge_attr_dim) scalars per
ordered pair (the diagonal is ignored), or ``None`` when ``edge_attr_dim == 0``. The graph
is dense and fully connected, which is the fastest layout for the few particles of N-body
tasks. For the charged N-body protocol ``node_attr`` is empty, ``edge_attr = q_i q_j`` and
the node input is ``|v_i|``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

__all__ = ["EGNN", "EGNNLayer", "check_particle_inputs"]


#: set while a caller that has checked its inputs once evaluates a model many times on states
#: it computed itself (an ODE solver's steps); the shape checks still run, the finiteness
#: checks (one synchronising reduction per tensor) do not
_FINITE_CHECKED: ContextVar[bool] = ContextVar("equidyn_finite_checked", default=False)


@contextmanager
def finite_inputs_checked() -> Iterator[None]:
    """Within this block :func:`check_particle_inputs` skips its finiteness checks (the
    caller checked the user's inputs once; the states in between are its own)."""
    token = _FINITE_CHECKED.set(True)
    try:
        yield
    finally:
        _FINITE_CHECKED.reset(token)


def check_particle_inputs(
    pos: torch.Tensor,
    vel: torch.Tensor,
    node_attr: torch.Tensor,
    edge_attr: torch.Tensor | None,
    node_attr_dim: int,
    edge_attr_dim: int,
) -> None:
    """Raise ``ValueError`` unless the inputs follow the dynamics-model interface.

    >>> check_particle_inputs(torch.zeros(2, 5, 3), torch.zeros(2, 4, 3), torch.zeros(2, 5, 0),
    ...                       None, 0, 0)
    Traceback (most recent call last):
    ...
    ValueError: vel must have the shape of pos (2, 5, 3), got (2, 4, 3)
    """
    if pos.dim() != 3 or pos.shape[-1] != 3:
        raise ValueError(f"pos must have shape (batch, n, 3), got {tuple(pos.shape)}")
    batch, n = pos.shape[:2]
    if n < 2:
        raise ValueError(f"need at least 2 particles, got pos of shape {tuple(pos.shape)}")
    if vel.shape != pos.shape:
        raise ValueError(
            f"vel must have the shape of pos {tuple(pos.shape)}, got {tuple(vel.shape)}"
        )
    if node_attr.shape != (batch, n, node_attr_dim):
        raise ValueError(
            f"node_attr must have shape (batch, n, node_attr_dim) = {(batch, n, node_attr_dim)}, "
            f"got {tuple(node_attr.shape)}"
        )
    if edge_attr_dim == 0:
        if edge_attr is not None and edge_attr.shape[-1] != 0:
            raise ValueError(
                "this model takes no edge attributes (edge_attr_dim=0), "
                f"got {tuple(edge_attr.shape)}"
            )
    elif edge_attr is None or edge_attr.shape != (batch, n, n, edge_attr_dim):
        got = None if edge_attr is None else tuple(edge_attr.shape)
        raise ValueError(
            f"edge_attr must have shape (batch, n, n, edge_attr_dim) = "
            f"{(batch, n, n, edge_attr_dim)}, got {got}"
        )
    if not torch.compiler.is_compiling() and not _FINITE_CHECKED.get():
        for name, t in (
            ("pos", pos),
            ("vel", vel),
            ("node_attr", node_attr),
            ("edge_attr", edge_attr),
        ):
            if t is not None and not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} contains NaN or infinite values")


def _mlp(dims: list[int], act_last: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2 or act_last:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class EGNNLayer(nn.Module):
    """One EGNN layer (equations in the module docstring); one method per equation.

    >>> layer = EGNNLayer(hidden_dim=8, edge_attr_dim=1)
    >>> h, x, v = torch.randn(2, 4, 8), torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    >>> h2, x2 = layer(h, x, v, torch.randn(2, 4, 4, 1))
    >>> h2.shape, x2.shape
    (torch.Size([2, 4, 8]), torch.Size([2, 4, 3]))
    """

    def __init__(
        self,
        hidden_dim: int,
        edge_attr_dim: int,
        *,
        velocity: bool = True,
        coord_init_scale: float = 1e-3,
    ) -> None:
        super().__init__()
        self.velocity = velocity
        self.phi_e = _mlp([2 * hidden_dim + 1 + edge_attr_dim, hidden_dim, hidden_dim], True)
        self.phi_x = _mlp([hidden_dim, hidden_dim, 1], False)
        with torch.no_grad():  # start close to the identity / linear dynamics
            self.phi_x[-1].weight.mul_(coord_init_scale)
            self.phi_x[-1].bias.zero_()
        self.phi_h = _mlp([2 * hidden_dim, hidden_dim, hidden_dim], False)
        self.phi_v = _mlp([hidden_dim, hidden_dim, 1], False) if velocity else None

    def edge_model(
        self, h: torch.Tensor, radial: torch.Tensor, edge_attr: torch.Tensor | None
    ) -> torch.Tensor:
        """``m_ij = φ_e(h_i, h_j, |x_i − x_j|², a_ij)``: (batch, n, n, hidden)."""
        n = h.shape[1]
        hi = h[:, :, None, :].expand(-1, -1, n, -1)
        hj = h[:, None, :, :].expand(-1, n, -1, -1)
        parts = [hi, hj, radial[..., None]]
        if edge_attr is not None:
            parts.append(edge_attr)
        return self.phi_e(torch.cat(parts, dim=-1))  # [batch, n, n, hidden]

    def coord_model(self, diff: torch.Tensor, m: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``C Σ_{j≠i} (x_i − x_j) φ_x(m_ij)``: the equivariant update vector (batch, n, 3)."""
        w = self.phi_x(m)[..., 0] * mask  # [batch, n, n]
        return (w[..., None] * diff).sum(2) / (mask.shape[-1] - 1)  # [batch, n, 3]

    def velocity_model(
        self, h: torch.Tensor, vel: torch.Tensor, update: torch.Tensor
    ) -> torch.Tensor:
        """``v_i' = φ_v(h_i) v_i + update_i`` (batch, n, 3); ``update`` from :meth:`coord_model`."""
        assert self.phi_v is not None
        return self.phi_v(h) * vel + update  # [batch, n, 3]

    def node_model(self, h: torch.Tensor, m: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``h_i' = h_i + φ_h(h_i, Σ_{j≠i} m_ij)`` (batch, n, hidden)."""
        agg = (m * mask[..., None]).sum(2)  # [batch, n, hidden]
        return h + self.phi_h(torch.cat([h, agg], dim=-1))

    def forward(
        self,
        h: torch.Tensor,
        x: torch.Tensor,
        vel: torch.Tensor | None,
        edge_attr: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[1]
        mask = 1.0 - torch.eye(n, dtype=x.dtype, device=x.device)  # [n, n]
        diff = x[:, :, None, :] - x[:, None, :, :]  # [batch, n, n, 3]
        radial = (diff * diff).sum(-1)  # [batch, n, n]
        m = self.edge_model(h, radial, edge_attr)
        update = self.coord_model(diff, m, mask)
        if self.velocity and vel is not None:
            x = x + self.velocity_model(h, vel, update)
        else:
            x = x + update
        return self.node_model(h, m, mask), x


class EGNN(nn.Module):
    """EGNN for particle dynamics: ``EGNN(pos, vel, node_attr, edge_attr) -> positions``.

    The node input is ``[|v_i|, node_attr_i]`` embedded to ``hidden_dim``; ``n_layers``
    :class:`EGNNLayer` follow (``velocity=True`` is the velocity variant EGNN-vel of the
    paper). Protocol settings for the charged N-body task: ``hidden_dim=64, n_layers=4,
    node_attr_dim=0, edge_attr_dim=1`` (``a_ij = q_i q_j``; the layers add ``|x_i − x_j|²``).

    With ``predict_velocity=True`` an extra equivariant head (one more edge model and
    velocity update) also predicts the velocity at the target time; :meth:`forward_state`
    returns both, which is what chained rollouts need.

    >>> model = EGNN(hidden_dim=16, n_layers=2, node_attr_dim=0, edge_attr_dim=1)
    >>> pos, vel = torch.randn(3, 5, 3), torch.randn(3, 5, 3)
    >>> q = torch.randint(0, 2, (3, 5, 1)) * 2.0 - 1
    >>> model(pos, vel, torch.zeros(3, 5, 0), q[:, :, None] * q[:, None, :]).shape
    torch.Size([3, 5, 3])
    """

    def __init__(
        self,
        hidden_dim: int = 64,
        n_layers: int = 4,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 1,
        *,
        velocity: bool = True,
        predict_velocity: bool = False,
        coord_init_scale: float = 1e-3,
    ) -> None:
        super().__init__()
        if hidden_dim < 1 or n_layers < 1:
            raise ValueError(f"need hidden_dim, n_layers >= 1, got {hidden_dim}, {n_layers}")
        self.node_attr_dim, self.edge_attr_dim = node_attr_dim, edge_attr_dim
        self.velocity, self.predict_velocity = velocity, predict_velocity
        self.embed = nn.Linear(1 + node_attr_dim, hidden_dim)
        self.layers = nn.ModuleList(
            EGNNLayer(
                hidden_dim, edge_attr_dim, velocity=velocity, coord_init_scale=coord_init_scale
            )
            for _ in range(n_layers)
        )
        self.velocity_head = (
            EGNNLayer(hidden_dim, edge_attr_dim, velocity=True, coord_init_scale=coord_init_scale)
            if predict_velocity
            else None
        )
        if self.velocity_head is not None:
            with torch.no_grad():  # start at v' = v
                last = self.velocity_head.phi_v[-1]
                last.weight.zero_()
                last.bias.fill_(1.0)

    def _trunk(
        self,
        pos: torch.Tensor,
        vel: torch.Tensor,
        node_attr: torch.Tensor,
        edge_attr: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        check_particle_inputs(
            pos, vel, node_attr, edge_attr, self.node_attr_dim, self.edge_attr_dim
        )
        if self.edge_attr_dim == 0:
            edge_attr = None
        speed = vel.norm(dim=-1, keepdim=True)  # [batch, n, 1]
        h = self.embed(torch.cat([speed, node_attr], dim=-1))  # [batch, n, hidden]
        x = pos
        for layer in self.layers:
            h, x = layer(h, x, vel if self.velocity else None, edge_attr)
        return h, x, edge_attr

    def forward_state(
        self,
        pos: torch.Tensor,
        vel: torch.Tensor,
        node_attr: torch.Tensor,
        edge_attr: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predicted ``(positions, velocities)``, each (batch, n, 3); needs ``predict_velocity``."""
        if self.velocity_head is None:
            raise ValueError("forward_state needs a model built with predict_velocity=True")
        h, x, edge_attr = self._trunk(pos, vel, node_attr, edge_attr)
        head = self.velocity_head
        mask = 1.0 - torch.eye(x.shape[1], dtype=x.dtype, device=x.device)  # [n, n]
        diff = x[:, :, None, :] - x[:, None, :, :]  # [batch, n, n, 3]
        m = head.edge_model(h, (diff * diff).sum(-1), edge_attr)
        v_out = head.velocity_model(h, vel, head.coord_model(diff, m, mask))
        return x, v_out  # [batch, n, 3] each

    def forward(
        self,
        pos: torch.Tensor,
        vel: torch.Tensor,
        node_attr: torch.Tensor,
        edge_attr: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self._trunk(pos, vel, node_attr, edge_attr)[1]  # [batch, n, 3]
