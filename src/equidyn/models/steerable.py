r"""Building blocks shared by the steerable dynamics models (SEGNN, TFN, SE(3)-Transformer).

Particles live on a dense, fully connected graph, with the pair layout of
:mod:`equidyn.models.particles` (``(batch, n, n − 1, ...)``, :func:`neighbour_index`).

The node input of the three models is

.. math::  x_i = \big(|v_i|\ (0e),\ v_i\ (1o),\ x_i - \bar x\ (1o),\ a_i\ (d \times 0e)\big)

with :math:`\bar x` the centroid of the particles and :math:`a_i` the optional scalar node
attributes (``node_input_irreps`` gives the layout: ``1x0e + 2x1o + dx0e``, simplified).
The models predict a ``1o`` vector :math:`\delta_i` per particle and return
:math:`x_i + \delta_i`: every input enters through :math:`x_i - \bar x`, :math:`x_i - x_j`,
:math:`v_i` and scalars, so :math:`\delta` is O(3)-equivariant and translation invariant, and
the prediction is E(3)-equivariant.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from equidyn.models.blocks import EdgeEmbedding, gate_irreps
from equidyn.models.particles import (
    ParticleInputs,
    ParticleModel,
    check_sizes,
    neighbour_index,
    off_diagonal,
)
from equidyn.nn import Gate, GaussianBasis
from equidyn.o3 import (
    FullyConnectedTensorProduct,
    Irrep,
    Irreps,
    Linear,
)

__all__ = [
    "STEERABLE_RENAMED_ARGUMENTS",
    "check_hidden_irreps",
    "resolve_hidden_irreps",
    "PairEdgeEmbedding",
    "IrrepsConcat",
    "PointDynamicsTrunk",
    "PositionVelocityHeads",
    "SteerableLayer",
    "gate_irreps",
    "neighbour_index",
    "node_input_irreps",
    "node_inputs",
    "off_diagonal",
]


#: old argument name -> new name shared by SEGNN, TFN and SE3Transformer (deprecated aliases,
#: one release with a ``FutureWarning``)
STEERABLE_RENAMED_ARGUMENTS = {
    "hidden_features": "num_features",
    "n_layers": "num_layers",
    "lmax_hidden": "l_max",
}


def node_input_irreps(node_attr_dim: int) -> Irreps:
    """Irreps of :func:`node_inputs`: ``|v|``, then ``v`` and ``x − x̄``, then the attributes.

    >>> node_input_irreps(2)
    1x0e+2x1o+2x0e
    """
    irreps = Irreps("1x0e + 2x1o")
    return irreps + Irreps(f"{node_attr_dim}x0e") if node_attr_dim > 0 else irreps


def node_inputs(pos: Tensor, vel: Tensor, node_attr: Tensor) -> Tensor:
    """``[|v_i|, v_i, x_i − x̄, a_i]`` (batch, n, 7 + d), laid out as :func:`node_input_irreps`.

    >>> x = node_inputs(torch.ones(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 2, 0))
    >>> x.shape
    torch.Size([1, 2, 7])
    """
    speed = vel.norm(dim=-1, keepdim=True)  # [batch, n, 1]
    centred = pos - pos.mean(dim=1, keepdim=True)  # [batch, n, 3]
    return torch.cat([speed, vel, centred, node_attr], dim=-1)  # [batch, n, 7 + d]


class IrrepsConcat(nn.Module):
    r"""Concatenate features of several irreps and regroup them: one block per irrep.

    :math:`(x^{(1)}, \dots, x^{(k)}) \mapsto P (x^{(1)} \oplus \dots \oplus x^{(k)})` with
    :math:`P` the fixed permutation of components that sorts blocks by ``(l, p)`` and merges
    equal irreps (``.irreps_out == sum(irreps_in).regroup()``). A permutation of components
    that only moves whole irreps commutes with O(3), so the map is equivariant; fewer blocks
    make the following tensor products faster.

    >>> cat = IrrepsConcat(["1x1o", "1x0e", "1x1o"])
    >>> cat.irreps_out
    1x0e+2x1o
    >>> cat(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0]), torch.tensor([4.0, 5.0, 6.0]))
    tensor([0., 1., 2., 3., 4., 5., 6.])
    """

    def __init__(self, irreps_in: Sequence[Irreps | str]) -> None:
        super().__init__()
        self.irreps_in = [Irreps(i) for i in irreps_in]
        full = sum(self.irreps_in, Irreps())
        srt = full.sort()
        starts = [0]
        for mul_ir in full:
            starts.append(starts[-1] + mul_ir.dim)
        order: list[int] = []
        for i in srt.inv:
            order += range(starts[i], starts[i + 1])
        self.irreps_out = srt.irreps.simplify()
        self.register_buffer("order", torch.tensor(order, dtype=torch.long), persistent=False)

    def forward(self, *xs: Tensor) -> Tensor:
        """``xs[k]``: ``(..., irreps_in[k].dim)`` broadcasting → ``(..., irreps_out.dim)``."""
        if len(xs) != len(self.irreps_in):
            raise ValueError(f"expected {len(self.irreps_in)} tensors, got {len(xs)}")
        for k, (x, ir) in enumerate(zip(xs, self.irreps_in)):
            if x.shape[-1] != ir.dim:
                raise ValueError(
                    f"input {k} has shape {tuple(x.shape)}, expected (..., {ir.dim}) for {ir}"
                )
        lead = torch.broadcast_shapes(*(x.shape[:-1] for x in xs))
        full = torch.cat([x.expand(*lead, x.shape[-1]) for x in xs], dim=-1)
        return full.index_select(-1, self.order)  # [..., irreps_out.dim]


class SteerableLayer(nn.Module):
    r"""O(3)-steerable linear layer conditioned on attributes, optionally gated (SEGNN's
    building block):

    .. math::  y = \mathrm{Gate}\big(W\,(x \otimes a) + b\big) \quad\text{or}\quad
               y = W\,(x \otimes a) + b,

    with :math:`x \otimes_W a` the fully connected tensor product
    (:class:`~equidyn.o3.FullyConnectedTensorProduct`) of the features with the steerable
    attributes :math:`a` (spherical harmonics, whose ``0e`` component is constant so the layer
    contains a plain linear map of :math:`x`), and :math:`b` a bias on the ``0e`` outputs (zero
    at init). With ``gate=True`` the product outputs ``scalars + gates + gated``
    (:func:`gate_irreps` of ``irreps_out``); scalars go through SiLU, the gates through a
    sigmoid and scale the gated irreps, so ``irreps_out`` is returned.

    >>> layer = SteerableLayer("2x0e + 1x1o", "1x0e + 1x1o", "4x0e + 2x1o", gate=True)
    >>> layer(torch.randn(6, 5), torch.randn(6, 4)).shape
    torch.Size([6, 10])
    """

    def __init__(
        self,
        irreps_in: Irreps | str,
        irreps_attr: Irreps | str,
        irreps_out: Irreps | str,
        *,
        gate: bool = True,
    ) -> None:
        super().__init__()
        self.irreps_in, self.irreps_attr = Irreps(irreps_in), Irreps(irreps_attr)
        self.irreps_out = Irreps(irreps_out)
        if gate:
            scalars, gates, gated = gate_irreps(self.irreps_out)
            self.gate: Gate | None = Gate(scalars, nn.functional.silu, gates, torch.sigmoid, gated)
            tp_out = self.gate.irreps_in
            if self.gate.irreps_out != self.irreps_out:
                raise ValueError(
                    f"irreps_out {self.irreps_out} must list its 0e block first (sorted irreps)"
                )
        else:
            self.gate = None
            tp_out = self.irreps_out
        self.tp = FullyConnectedTensorProduct(self.irreps_in, self.irreps_attr, tp_out)
        n_scalar = sum(m for m, ir in tp_out if ir == Irrep("0e"))
        self.bias = nn.Parameter(torch.zeros(n_scalar))
        mask = torch.cat(
            [torch.full((m * ir.dim,), ir == Irrep("0e"), dtype=torch.bool) for m, ir in tp_out]
        )
        self.register_buffer("bias_index", torch.nonzero(mask)[:, 0], persistent=False)

    def forward(self, x: Tensor, attr: Tensor) -> Tensor:
        """``x`` ``(..., irreps_in.dim)``, ``attr`` ``(..., irreps_attr.dim)`` broadcasting."""
        y = self.tp(x, attr)  # [..., tp irreps_out.dim]
        if self.bias.numel() > 0:
            full = y.new_zeros(y.shape[-1]).index_copy(0, self.bias_index, self.bias)
            y = y + full
        if self.gate is not None:
            y = self.gate(y)
        return y  # [..., irreps_out.dim]

    def extra_repr(self) -> str:
        return f"{self.irreps_in} x {self.irreps_attr} -> {self.irreps_out}"


class PairEdgeEmbedding(nn.Module):
    r"""Geometry of the ordered pairs of the dense graph: spherical harmonics and radial features.

    For :math:`r_{ij} = x_i - x_j` returns :math:`Y(\hat r_{ij})` (``l = 0 .. lmax_sh``,
    component normalization) and the invariant radial input
    :math:`\big(G(|r_{ij}|) \oplus e_{ij}\big)`, Gaussians :math:`G` on ``num_basis`` centres in
    ``[0, r_max]`` (the graph is fully connected: no cutoff) and the scalar edge attributes;
    :class:`~equidyn.models.blocks.EdgeEmbedding` computes the first two.

    >>> emb = PairEdgeEmbedding(lmax_sh=2, num_basis=8, r_max=6.0, edge_attr_dim=1)
    >>> index = neighbour_index(4)
    >>> y, rad = emb(torch.randn(2, 4, 3), torch.randn(2, 4, 4, 1), index)
    >>> y.shape, rad.shape
    (torch.Size([2, 4, 3, 9]), torch.Size([2, 4, 3, 9]))
    """

    def __init__(self, lmax_sh: int, num_basis: int, r_max: float, edge_attr_dim: int) -> None:
        super().__init__()
        if lmax_sh < 0:
            raise ValueError(f"lmax_sh must be >= 0, got {lmax_sh}")
        self.lmax_sh, self.edge_attr_dim = lmax_sh, edge_attr_dim
        self.embedding = EdgeEmbedding(lmax_sh, GaussianBasis(0.0, r_max, num_basis))
        self.irreps_sh = self.embedding.irreps_sh
        self.radial_dim = num_basis + edge_attr_dim

    def forward(
        self, pos: Tensor, edge_attr: Tensor | None, index: Tensor
    ) -> tuple[Tensor, Tensor]:
        """``pos`` (batch, n, 3), ``edge_attr`` (batch, n, n, d) or None →
        ``(Y, radial)``: (batch, n, n − 1, irreps_sh.dim), (batch, n, n − 1, radial_dim)."""
        rel = pos[:, :, None, :] - pos[:, index]  # [batch, n, n - 1, 3]
        y, basis = self.embedding(rel)  # [batch, n, n - 1, sh / num_basis]
        parts = [basis]
        if self.edge_attr_dim > 0 and edge_attr is not None:
            parts.append(off_diagonal(edge_attr, index))
        return y, torch.cat(parts, dim=-1)  # [batch, n, n - 1, radial_dim]


def check_hidden_irreps(hidden: Irreps) -> Irreps:
    """Raise ValueError unless ``hidden`` is sorted, one block per irrep, with ``0e``."""
    if hidden != hidden.regroup() or Irrep("0e") not in hidden:
        raise ValueError(
            f"hidden_irreps must be sorted, one block per irrep, and contain 0e; got {hidden} "
            f"(try {hidden.regroup()})"
        )
    return hidden


def resolve_hidden_irreps(
    hidden_irreps: Irreps | str | None, default: Callable[[], Irreps]
) -> Irreps:
    """The user's ``hidden_irreps`` checked by :func:`check_hidden_irreps`, or ``default()``
    when it is ``None``.

    >>> resolve_hidden_irreps(None, lambda: Irreps("4x0e+4x1o"))
    4x0e+4x1o
    """
    return default() if hidden_irreps is None else check_hidden_irreps(Irreps(hidden_irreps))


class PositionVelocityHeads(ParticleModel):
    """:meth:`_predict` of a dynamics model from its two readouts.

    A subclass implements ``_readouts(inputs, velocity) -> (δ, u)`` (each (batch, n, 3);
    ``u`` is ``None`` unless ``velocity``) and sets ``self.velocity_readout`` (``None`` without
    ``predict_velocity``). Then ``forward = x + δ`` and ``forward_state = (x + δ, v + u)``.

    >>> from equidyn.models import TFN
    >>> model = TFN(8, 1, 0, 1, predict_velocity=True)
    >>> pos, vel = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    >>> x, v = model.forward_state(pos, vel, torch.zeros(2, 4, 0), torch.ones(2, 4, 4, 1))
    >>> x.shape, torch.equal(v, vel)  # the velocity starts at the input velocity
    (torch.Size([2, 4, 3]), True)
    """

    velocity_readout: nn.Module | None

    @abstractmethod
    def _readouts(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor | None]:
        """``(δ, u)``: position update and (if ``velocity``) velocity update, (batch, n, 3)."""

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor | None]:
        delta, u = self._readouts(inputs, velocity)
        return inputs.pos + delta, None if u is None else inputs.vel + u  # [batch, n, 3] each


class PointDynamicsTrunk(PositionVelocityHeads):
    """The shared frame of TFN and SE3Transformer: node embedding, ``num_layers`` message
    layers over the fully connected graph, and ``1o`` readouts for ``δ`` (and ``u``).

    A subclass calls :meth:`_build` from its ``__init__`` (after
    ``super().__init__(node_attr_dim, edge_attr_dim)``) with a factory of its layer; the
    modules are created in the order embedding, layers, readouts (so a seed gives the same
    weights as it always did).
    """

    def _build(
        self,
        make_layer: Callable[[Irreps, Irreps, int], nn.Module],
        hidden: Irreps,
        num_layers: int,
        *,
        l_max_sh: int,
        num_basis: int,
        r_max: float,
        readout_init_scale: float,
        predict_velocity: bool,
    ) -> None:
        """``make_layer(hidden, irreps_sh, radial_dim)`` builds one message layer."""
        check_sizes(num_layers=num_layers)
        node_attr_dim, edge_attr_dim = self.node_attr_dim, self.edge_attr_dim
        self.hidden_irreps = hidden
        self.edges = PairEdgeEmbedding(l_max_sh, num_basis, r_max, edge_attr_dim)
        self.cat_in = IrrepsConcat([node_input_irreps(node_attr_dim)])
        self.embed = Linear(self.cat_in.irreps_out, hidden, biases=True)
        self.layers = nn.ModuleList(
            make_layer(hidden, self.edges.irreps_sh, self.edges.radial_dim)
            for _ in range(num_layers)
        )
        self.readout = Linear(hidden, "1x1o")
        with torch.no_grad():  # start close to x' = x: small steps at initialisation
            self.readout.weight.mul_(readout_init_scale)
        self.predict_velocity = predict_velocity
        self.velocity_readout: Linear | None = None
        if predict_velocity:  # the extra 1o output of the readout: v' - v
            self.velocity_readout = Linear(hidden, "1x1o")
            with torch.no_grad():  # start at v' = v exactly
                self.velocity_readout.weight.zero_()

    def _trunk(self, inputs: ParticleInputs) -> Tensor:
        """Checked inputs → the last hidden features ``h`` (batch, n, hidden)."""
        pos, vel, node_attr, edge_attr = inputs
        index = neighbour_index(pos.shape[1], pos.device)  # [n, n - 1]
        y, radial = self.edges(pos, edge_attr, index)  # [batch, n, n - 1, sh / radial]
        h = self.embed(self.cat_in(node_inputs(pos, vel, node_attr)))  # [batch, n, hidden]
        for layer in self.layers:
            h = layer(h, y, radial, index)
        return h  # [batch, n, hidden]

    def _readouts(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor | None]:
        h = self._trunk(inputs)  # [batch, n, hidden]
        u = self.velocity_readout(h) if velocity and self.velocity_readout is not None else None
        return self.readout(h), u  # [batch, n, 3] each
