r"""Steerable E(3)-equivariant graph neural network (SEGNN, Brandstetter et al. 2022).

Node features :math:`h_i` are steerable (``hidden_irreps``, e.g. ``32x0e + 32x1o``). Every
learned map is a :class:`~equidyn.models.steerable.SteerableLayer`, a fully connected tensor
product with steerable attributes followed by a gate, written :math:`\phi(\,\cdot\,; a)`.
The attributes are spherical harmonics (``l_max_attr``) of the geometry:

.. math::
    a_{ij} = Y(x_i - x_j), \qquad
    a_i = \tfrac12 \Big(Y(v_i) + \frac{1}{n-1} \sum_{j \ne i} a_{ij}\Big) .

(The factor ½ keeps the ``0e`` component of :math:`a_i` at 1 like that of :math:`a_{ij}`, so
that the steerable layers keep their unit scale at initialisation.)

On a fully connected graph of ``n`` particles, layer ``l`` computes

.. math::
    m_{ij} &= \phi_{m,2}\big(\phi_{m,1}(h_i \oplus h_j \oplus |x_i - x_j|^2 \oplus e_{ij};
        a_{ij}); a_{ij}\big) \quad \text{(message_model)} \\
    h_i' &= h_i + \phi_{f,2}\big(\phi_{f,1}(h_i \oplus \tfrac{1}{n-1}
        \textstyle\sum_{j \ne i} m_{ij}; a_i); a_i\big)
        \quad \text{(node_model; the last map is not gated)}

with :math:`e_{ij}` the scalar edge attributes (``q_i q_j`` for charged N-body); messages are
averaged rather than summed so that the features keep their scale at initialisation. The node
input is :math:`|v_i| \oplus v_i \oplus (x_i - \bar x) \oplus` node attributes
(``1x0e + 2x1o``), embedded by one ungated steerable layer; the readout is two steerable
layers (the last ungated) to one ``1o`` vector :math:`\delta_i`, and the model returns
:math:`x_i + \delta_i`. All inputs enter as irreps and all maps are equivariant, so the
prediction is E(3)-equivariant (rotations, reflections, translations) and permutation
equivariant.

With ``predict_velocity=True`` the last readout layer gets a second ``1o`` output
:math:`u_i` (a separate, ungated steerable layer on the same readout features) and
:meth:`SEGNN.forward_state` also returns the velocity :math:`v_i' = v_i + u_i`. Its weights
start at zero, so :math:`v_i' = v_i` exactly at initialisation. :math:`u_i` is a
translation-invariant ``1o`` vector, so :math:`v'` is O(3)-equivariant and translation
invariant.

Published N-body settings (charged, 3000 training systems): 4 layers, hidden irreps
weight-balanced to 64 scalar features with ``l_max = l_max_attr = 1``
(:func:`balanced_irreps` gives ``32x0e + 32x1o``), Adam with learning rate 5e-4, batch 100;
test MSE 0.0043.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equidyn._deprecation import renamed_arguments
from equidyn.models.particles import ParticleInputs, check_sizes, relative_positions
from equidyn.models.registry import register_model
from equidyn.models.steerable import (
    STEERABLE_RENAMED_ARGUMENTS,
    IrrepsConcat,
    PositionVelocityHeads,
    SteerableLayer,
    node_input_irreps,
    node_inputs,
    resolve_hidden_irreps,
)
from equidyn.nn import LayerNorm
from equidyn.o3 import Irrep, Irreps, spherical_harmonics

__all__ = ["SEGNN", "SEGNNLayer", "balanced_irreps"]


@renamed_arguments(hidden_features="num_features", lmax_hidden="l_max", lmax_attr="l_max_attr")
def balanced_irreps(num_features: int, l_max: int, l_max_attr: int) -> Irreps:
    r"""Hidden irreps ``k x 0e + k x 1o + ... + k x (l_max)`` (parity :math:`(-1)^l`)
    whose steerable layer has about as many weights as a scalar layer of width
    ``num_features``.

    A :class:`~equidyn.o3.FullyConnectedTensorProduct` ``hidden ⊗ Y(l_max_attr) → hidden`` has
    :math:`k^2 P` weights, :math:`P` the number of allowed ``(l_1, l_2, l_3)`` triples; a scalar
    layer has ``num_features²``; so :math:`k = \mathrm{round}(\text{num\_features} /
    \sqrt{P})`.

    >>> balanced_irreps(64, 1, 1)
    32x0e+32x1o
    >>> balanced_irreps(64, 2, 2)
    19x0e+19x1o+19x2e
    """
    check_sizes(num_features=num_features)
    if l_max < 0 or l_max_attr < 0:
        raise ValueError(f"need l_max, l_max_attr >= 0, got {l_max}, {l_max_attr}")
    irs = [Irrep(l, (-1) ** l) for l in range(l_max + 1)]
    attr = [Irrep(l, (-1) ** l) for l in range(l_max_attr + 1)]
    n_paths = sum(1 for a in irs for b in attr for c in irs if c in a * b)
    k = max(1, round(num_features / math.sqrt(n_paths)))
    return Irreps([(k, ir) for ir in irs])


class SEGNNLayer(nn.Module):
    """One SEGNN message-passing layer (equations in the module docstring).

    >>> from equidyn.models.particles import neighbour_index
    >>> layer = SEGNNLayer("4x0e + 4x1o", "1x0e + 1x1o", edge_attr_dim=1)
    >>> h, a_i = torch.randn(2, 3, 16), torch.randn(2, 3, 4)
    >>> a_ij, s_ij = torch.randn(2, 3, 2, 4), torch.randn(2, 3, 2, 2)
    >>> layer(h, a_i, a_ij, s_ij, neighbour_index(3)).shape
    torch.Size([2, 3, 16])
    """

    def __init__(
        self,
        hidden_irreps: Irreps | str,
        irreps_attr: Irreps | str,
        edge_attr_dim: int,
        *,
        norm: bool = True,
    ) -> None:
        super().__init__()
        hidden, attr = Irreps(hidden_irreps), Irreps(irreps_attr)
        self.hidden_irreps = hidden
        self.cat_edge = IrrepsConcat([hidden, hidden, f"{1 + edge_attr_dim}x0e"])
        self.message_1 = SteerableLayer(self.cat_edge.irreps_out, attr, hidden)
        self.message_2 = SteerableLayer(hidden, attr, hidden)
        self.cat_node = IrrepsConcat([hidden, hidden])
        self.update_1 = SteerableLayer(self.cat_node.irreps_out, attr, hidden)
        self.update_2 = SteerableLayer(hidden, attr, hidden, gate=False)
        self.norm = LayerNorm(hidden) if norm else None

    def message_model(
        self, h: Tensor, attr_edge: Tensor, scalars_edge: Tensor, index: Tensor
    ) -> Tensor:
        """``m_ij`` (batch, n, n − 1, hidden) from ``h_i, h_j``, edge scalars and ``a_ij``."""
        h_i = h[:, :, None, :]  # [batch, n, 1, hidden]
        h_j = h[:, index]  # [batch, n, n - 1, hidden]
        e = self.cat_edge(h_i, h_j, scalars_edge)  # [batch, n, n - 1, cat_edge.irreps_out.dim]
        return self.message_2(self.message_1(e, attr_edge), attr_edge)

    def node_model(self, h: Tensor, m: Tensor, attr_node: Tensor) -> Tensor:
        """``h_i + φ_f(h_i ⊕ mean_j m_ij; a_i)`` (batch, n, hidden)."""
        x = self.cat_node(h, m.mean(dim=2))  # [batch, n, 2 hidden]
        h = h + self.update_2(self.update_1(x, attr_node), attr_node)
        return h if self.norm is None else self.norm(h)

    def forward(
        self,
        h: Tensor,
        attr_node: Tensor,
        attr_edge: Tensor,
        scalars_edge: Tensor,
        index: Tensor,
    ) -> Tensor:
        """``h`` (batch, n, hidden), ``attr_node`` (batch, n, attr), ``attr_edge``
        (batch, n, n − 1, attr), ``scalars_edge`` (batch, n, n − 1, 1 + edge_attr_dim),
        ``index`` from :func:`~equidyn.models.particles.neighbour_index`."""
        m = self.message_model(h, attr_edge, scalars_edge, index)
        return self.node_model(h, m, attr_node)  # [batch, n, hidden]


@register_model(kind="particle")
class SEGNN(PositionVelocityHeads):
    """SEGNN for particle dynamics: ``SEGNN(pos, vel, node_attr, edge_attr) -> positions``.

    Args:
        num_features: width of the equivalent scalar model; the hidden irreps are
            :func:`balanced_irreps` ``(num_features, l_max, l_max_attr)`` unless
            ``hidden_irreps`` is given.
        num_layers: message-passing layers.
        node_attr_dim: scalar node attributes per particle (``0e``).
        edge_attr_dim: scalar attributes per ordered pair (``q_i q_j``: 1).
        l_max: highest ``l`` of the hidden features (1 or 2 in the paper).
        l_max_attr: highest ``l`` of the spherical-harmonic attributes.
        hidden_irreps: explicit hidden irreps; must start with ``0e`` and be sorted.
        readout_init_scale: factor on the initial weights of the last layer (small initial
            displacements ``δ_i``).
        norm: equivariant :class:`~equidyn.nn.LayerNorm` after every layer's residual update
            (keeps the features bounded when inputs such as ``|x_i − x_j|²`` are large).
        predict_velocity: add the velocity output used by :meth:`forward_state` (chained
            rollouts); ``forward`` and the other parameters are unchanged by it.

    Protocol settings for charged N-body: ``SEGNN(64, 4, 0, 1)`` with ``edge_attr = q_i q_j``.

    >>> model = SEGNN(num_features=16, num_layers=2, node_attr_dim=0, edge_attr_dim=1)
    >>> model.hidden_irreps
    8x0e+8x1o
    >>> from equidyn.models import ParticleSystem
    >>> q = torch.randint(0, 2, (3, 5, 1)) * 2.0 - 1
    >>> system = ParticleSystem(torch.randn(3, 5, 3), torch.randn(3, 5, 3), q)
    >>> model.predict(system).shape  # its inputs: q_i q_j per pair
    torch.Size([3, 5, 3])
    """

    @renamed_arguments(**STEERABLE_RENAMED_ARGUMENTS, lmax_attr="l_max_attr")
    def __init__(
        self,
        num_features: int = 64,
        num_layers: int = 4,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 1,
        *,
        l_max: int = 1,
        l_max_attr: int = 1,
        hidden_irreps: Irreps | str | None = None,
        readout_init_scale: float = 0.1,
        norm: bool = True,
        predict_velocity: bool = False,
    ) -> None:
        super().__init__(node_attr_dim, edge_attr_dim)
        check_sizes(num_layers=num_layers)
        hidden = resolve_hidden_irreps(
            hidden_irreps, lambda: balanced_irreps(num_features, l_max, l_max_attr)
        )
        self.l_max_attr = l_max_attr
        self.hidden_irreps = hidden
        self.irreps_attr = Irreps.spherical_harmonics(l_max_attr)
        self.irreps_in = node_input_irreps(node_attr_dim).regroup()
        self.cat_in = IrrepsConcat([node_input_irreps(node_attr_dim)])
        self.embed = SteerableLayer(self.irreps_in, self.irreps_attr, hidden, gate=False)
        self.layers = nn.ModuleList(
            SEGNNLayer(hidden, self.irreps_attr, edge_attr_dim, norm=norm)
            for _ in range(num_layers)
        )
        self.readout_1 = SteerableLayer(hidden, self.irreps_attr, hidden)
        self.readout_2 = SteerableLayer(hidden, self.irreps_attr, "1x1o", gate=False)
        with torch.no_grad():  # start close to x' = x: small steps at initialisation
            self.readout_2.tp.weight.mul_(readout_init_scale)
        self.predict_velocity = predict_velocity
        self.velocity_readout: SteerableLayer | None = None
        if predict_velocity:  # the extra 1o output of the last readout layer: v' - v
            self.velocity_readout = SteerableLayer(hidden, self.irreps_attr, "1x1o", gate=False)
            with torch.no_grad():  # start at v' = v exactly
                self.velocity_readout.tp.weight.zero_()

    def attributes(self, vel: Tensor, rel: Tensor) -> tuple[Tensor, Tensor]:
        """``(a_i, a_ij)``: (batch, n, attr) and (batch, n, n − 1, attr) from the velocities
        and the relative positions ``x_i − x_j`` (batch, n, n − 1, 3)."""
        ls = list(range(self.l_max_attr + 1))
        a_ij = spherical_harmonics(ls, rel, normalize=True, normalization="component")
        a_i = spherical_harmonics(ls, vel, normalize=True, normalization="component")
        return 0.5 * (a_i + a_ij.mean(dim=2)), a_ij

    def _trunk(self, inputs: ParticleInputs) -> tuple[Tensor, Tensor]:
        """Checked inputs → readout features ``φ_r1(h_i; a_i)`` (batch, n, hidden) and ``a_i``."""
        pos, vel, node_attr, _ = inputs
        index, pair_attr = inputs.pairs()  # [n, n - 1], [batch, n, n - 1, edge_attr_dim] or None
        rel = relative_positions(pos, index)  # [batch, n, n - 1, 3]
        a_i, a_ij = self.attributes(vel, rel)
        scalars = [(rel * rel).sum(-1, keepdim=True)]  # |x_i - x_j|^2
        if pair_attr is not None:
            scalars.append(pair_attr)
        s_ij = torch.cat(scalars, dim=-1)  # [batch, n, n - 1, 1 + edge_attr_dim]
        x = self.cat_in(node_inputs(pos, vel, node_attr))  # [batch, n, irreps_in.dim]
        h = self.embed(x, a_i)  # [batch, n, hidden]
        for layer in self.layers:
            h = layer(h, a_i, a_ij, s_ij, index)
        return self.readout_1(h, a_i), a_i  # [batch, n, hidden], [batch, n, attr]

    def _readouts(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor | None]:
        r, a_i = self._trunk(inputs)  # [batch, n, hidden], [batch, n, attr]
        use_u = velocity and self.velocity_readout is not None
        u = self.velocity_readout(r, a_i) if use_u else None
        return self.readout_2(r, a_i), u  # [batch, n, 3] each
