r"""eSCN: an equivariant potential with SO(2) convolutions (Passaro & Zitnick 2023).

Every edge :math:`j \to i` is rotated onto the polar axis, :math:`R_{ij} e_y = \hat r_{ij}`
(:func:`~equidyn.o3.edge_frame`), where the convolution with the edge direction is a set of
per-:math:`m` linear maps (:class:`~equidyn.o3.SO2Linear`, :math:`O(L^3)` instead of the
:math:`O(L^6)` of a Clebsch–Gordan product). Layer :math:`t` computes

.. math::

    x'_{ij} &= D(R_{ij})^\top \,[h^t_i \,\|\, h^t_j]
        && \text{(both atoms' features in the edge frame)} \\
    y'_{ij} &= \mathrm{SO2}_2\Big(\mathrm{Gate}\big(\mathrm{SO2}_1(x'_{ij};\;
        s(r_{ij}))\big)\Big)
        && s = \mathrm{MLP}\big(B(r_{ij})\,u(r_{ij})\big) \text{ per } m, \text{ block, channel} \\
    m_i &= \frac{1}{\sqrt{\bar n}} \sum_{j} D(R_{ij})\, y'_{ij} \\
    h^{t+1}_i &= h^t_i + W_3\, \mathrm{Gate}\big(W_2 m_i + \mathrm{SC}(h^t_i, z_i)\big),

with :math:`m \le m_{\max}` kept in both SO(2) maps (eSCN's :math:`m_{\max} = 2` at
:math:`L = 6`), :math:`B` the Bessel basis and :math:`u` the polynomial cutoff (the radial
scales vanish smoothly at :math:`r_{\max}`, and with them every message), :math:`W` equivariant
linear maps and SC a species self-connection. The gate acts in the edge frame: it multiplies
blocks by invariant scalars, so it commutes with the rotation. The per-atom energy is a linear
map of the final even scalars.

Invariance of the energy under rotations, reflections, translations and permutations holds by
construction (the SO(2) maps follow the parity rule of :mod:`equidyn.o3.so2`, so reflections
too) and is tested. The edge frames are finite and differentiable for edges along
:math:`\pm e_y`, so forces there are exact. Departures from the paper: a
:class:`~equidyn.nn.Gate` instead of the S² grid activation, and no layer norm; features
are ``num_features`` copies of each ``l`` (natural parity, or both with ``parity=True``).

>>> import torch
>>> model = ESCN(num_species=2, r_max=3.0, l_max=2, m_max=1, num_features=4, num_layers=2)
>>> edge_index = torch.tensor([[0, 1], [1, 0]])
>>> edge_vec = torch.tensor([[0.0, 1.5, 0.0], [0.0, -1.5, 0.0]])
>>> model(torch.tensor([0, 1]), edge_index, edge_vec).shape
torch.Size([2])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from equidyn import nn as enn
from equidyn import o3
from equidyn.graph.scatter import scatter_sum
from equidyn.models.blocks import nequip_gate
from equidyn.models.nequip import hidden_irreps
from equidyn.models.potential import check_model_args
from equidyn.models.registry import model_config, register_model

__all__ = ["ESCN", "SO2MessageBlock"]


class SO2MessageBlock(nn.Module):
    r"""One eSCN layer (module docstring): SO(2) messages in the edge frames, a gated node
    update with a species self-connection and a residual.

    Args:
        irreps: node features (input and output).
        num_attrs: size of the one-hot species of the self-connection.
        num_basis: size of the radial embedding.
        radial_hidden: width of the radial MLP's hidden layer.
        m_max: largest :math:`m` of the SO(2) maps.
        avg_num_neighbors: :math:`\bar n`.

    :meth:`forward` takes node features ``[n_atoms, irreps.dim]``, one-hot species
    ``[n_atoms, num_attrs]``, ``edge_index`` ``[2, n_edges]``, the edge Wigner matrices (from
    :func:`~equidyn.o3.edge_wigner_D`) and the radial embedding ``[n_edges, num_basis]``, and
    returns ``[n_atoms, irreps.dim]``.
    """

    def __init__(
        self,
        irreps: o3.Irreps,
        num_attrs: int,
        num_basis: int,
        radial_hidden: int,
        m_max: int,
        avg_num_neighbors: float,
    ) -> None:
        super().__init__()
        self.irreps = o3.Irreps(irreps)
        self.irreps_pair = self.irreps + self.irreps  # [h_i || h_j]
        self.edge_gate = nequip_gate(self.irreps)
        self.so2_1 = o3.SO2Linear(self.irreps_pair, self.edge_gate.irreps_in, m_max)
        self.so2_2 = o3.SO2Linear(self.irreps, self.irreps, m_max)
        self.radial = enn.MLP(
            [num_basis, radial_hidden, self.so2_1.num_scales], torch.nn.functional.silu
        )
        self.node_gate = nequip_gate(self.irreps)
        self.linear_msg = o3.Linear(self.irreps, self.node_gate.irreps_in)
        self.self_connection = o3.FullyConnectedTensorProduct(
            self.irreps, o3.Irreps(f"{num_attrs}x0e"), self.node_gate.irreps_in
        )
        self.linear_out = o3.Linear(self.irreps, self.irreps)
        self.norm = 1.0 / float(avg_num_neighbors) ** 0.5

    def edge_messages(
        self, h: Tensor, edge_index: Tensor, wigner: list[Tensor], radial: Tensor
    ) -> Tensor:
        """``D SO2_2(Gate(SO2_1(D^T [h_i || h_j]; s)))`` per edge ``[n_edges, irreps.dim]``."""
        pair = torch.cat([h.index_select(0, edge_index[0]), h.index_select(0, edge_index[1])], -1)
        x = o3.rotate_to_edge_frame(pair, self.irreps_pair, wigner)  # [n_edges, 2 irreps.dim]
        y = self.so2_1(x, self.radial(radial))  # [n_edges, edge_gate.irreps_in.dim]
        y = self.so2_2(self.edge_gate(y))  # [n_edges, irreps.dim]
        return o3.rotate_from_edge_frame(y, self.irreps, wigner)

    def forward(
        self,
        h: Tensor,
        attrs: Tensor,
        edge_index: Tensor,
        wigner: list[Tensor],
        radial: Tensor,
    ) -> Tensor:
        if edge_index.shape[1] == 0:
            m = h.new_zeros(h.shape)
        else:
            messages = self.edge_messages(h, edge_index, wigner, radial)
            m = scatter_sum(messages, edge_index[0], h.shape[0]) * self.norm
        mid = self.linear_msg(m) + self.self_connection(h, attrs)
        return h + self.linear_out(self.node_gate(mid))  # [n_atoms, irreps.dim]


@register_model(kind="potential")
class ESCN(nn.Module):
    r"""The eSCN per-atom energy model (see the module docstring for the equations).

    Wrap it in :class:`~equidyn.models.potential.Potential` for energies, forces and stress;
    ``equidyn train`` builds it from a config with ``model_class: ESCN``.

    Args:
        num_species: number of species (inputs are indices ``0 .. num_species - 1``).
        r_max: cutoff radius (Å).
        l_max: largest rotation order :math:`L` of the features (eSCN: 6).
        m_max: largest :math:`m` of the SO(2) maps (eSCN: 2); ``None`` = ``l_max`` (exact
            convolutions). Any value is exactly equivariant.
        parity: both parities of every ``l`` (``False``: only :math:`p = (-1)^l`).
        num_features: multiplicity of every irrep of the features.
        num_layers: number of message blocks.
        num_basis: number of Bessel radial basis functions.
        trainable_basis: learn the Bessel frequencies.
        polynomial_p: exponent of the polynomial cutoff.
        radial_hidden: width of the radial MLP producing the SO(2) scales.
        avg_num_neighbors: :math:`\bar n` (``None`` = 1; the trainer sets it from the data).

    Attributes:
        r_max, num_species: see :class:`~equidyn.models.potential.AtomicEnergyModel`.
        irreps_hidden: the feature irreps.
    """

    def __init__(
        self,
        num_species: int = 1,
        r_max: float = 4.0,
        l_max: int = 4,
        m_max: int | None = 2,
        parity: bool = False,
        num_features: int = 16,
        num_layers: int = 2,
        num_basis: int = 8,
        trainable_basis: bool = True,
        polynomial_p: int = 6,
        radial_hidden: int = 64,
        avg_num_neighbors: float | None = None,
    ) -> None:
        super().__init__()
        check_model_args(
            [
                ("num_species", num_species, 1),
                ("l_max", l_max, 0),
                ("num_features", num_features, 1),
                ("num_layers", num_layers, 1),
                ("num_basis", num_basis, 1),
                ("radial_hidden", radial_hidden, 1),
            ],
            r_max,
            avg_num_neighbors,
        )
        if m_max is not None and (
            isinstance(m_max, bool) or not isinstance(m_max, int) or not 0 <= m_max <= l_max
        ):
            raise ValueError(f"m_max must be an int in 0 .. l_max = {l_max} or None, got {m_max!r}")
        self.r_max = float(r_max)
        self.num_species = num_species
        self.l_max = l_max
        self.m_max = l_max if m_max is None else m_max
        self.irreps_hidden = hidden_irreps(num_features, l_max, parity)
        n_bar = 1.0 if avg_num_neighbors is None else float(avg_num_neighbors)
        self.basis = enn.BesselBasis(r_max, num_basis, trainable=trainable_basis)
        self.cutoff = enn.PolynomialCutoff(r_max, polynomial_p)
        self.embedding = o3.Linear(o3.Irreps(f"{num_species}x0e"), o3.Irreps(f"{num_features}x0e"))
        self.blocks = nn.ModuleList(
            SO2MessageBlock(
                self.irreps_hidden, num_species, num_basis, radial_hidden, self.m_max, n_bar
            )
            for _ in range(num_layers)
        )
        self.readout = o3.Linear(self.irreps_hidden, o3.Irreps("1x0e"))
        self._scalar_dim = num_features  # the embedding fills the leading 0e block

    def config(self) -> dict[str, Any]:
        """The constructor arguments (what a model file stores)."""
        return model_config(self)

    def forward(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        """Per-atom energies ``[n_atoms]`` from species indices ``[n_atoms]``, ``edge_index``
        ``[2, n_edges]`` and edge vectors ``[n_edges, 3]``."""
        one_hot = torch.nn.functional.one_hot(species, self.num_species).to(edge_vec.dtype)
        # [n_atoms, num_species]
        r = (edge_vec * edge_vec).sum(-1).clamp(min=1e-12).sqrt()  # [n_edges]
        radial = self.basis(r) * self.cutoff(r)[:, None]  # [n_edges, num_basis]
        wigner = o3.edge_wigner_D(edge_vec, self.l_max)  # [n_edges, 2l+1, 2l+1] for each l
        scalars = self.embedding(one_hot)  # [n_atoms, num_features]
        h = torch.cat(
            [scalars, scalars.new_zeros(len(species), self.irreps_hidden.dim - self._scalar_dim)],
            dim=-1,
        )  # [n_atoms, irreps_hidden.dim]
        for block in self.blocks:
            h = block(h, one_hot, edge_index, wigner, radial)
        return self.readout(h)[:, 0]  # [n_atoms]

    def extra_repr(self) -> str:
        return f"l_max={self.l_max}, m_max={self.m_max}"
