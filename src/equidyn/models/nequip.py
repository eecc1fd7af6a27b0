r"""NequIP: an E(3)-equivariant message-passing interatomic potential (Batzner et al. 2022).

Atom :math:`i` carries features :math:`h_i` made of irreps :math:`(l, p)` with
:math:`l \le l_{\max}`. Each edge :math:`i \to j` (vector :math:`\vec r_{ij}`, length
:math:`r_{ij} < r_{\max}`) contributes a message built from the spherical harmonics
:math:`Y(\hat r_{ij})` and a learned radial function; layer :math:`t` computes

.. math::

    m_i &= \frac{1}{\sqrt{\bar n}} \sum_{j \in \mathcal N(i)}
        \big(W_1 h^t_j\big) \otimes_{R(r_{ij})} Y(\hat r_{ij})
        && \text{(channelwise "uvu" tensor product)} \\
    R(r_{ij}) &= \mathrm{MLP}\big(B(r_{ij})\, u(r_{ij})\big)
        && \text{(one weight per path and channel)} \\
    h^{t+1}_i &= \mathrm{Gate}\big(W_2 m_i + \mathrm{SC}(h^t_i, z_i)\big),

with :math:`B` the Bessel basis :math:`\sqrt{2/r_{\max}} \sin(n\pi r/r_{\max})/r`,
:math:`u` the polynomial cutoff of exponent :math:`p` (value, first and second derivative
vanish at :math:`r_{\max}`, so energies and forces are smooth as atoms cross the cutoff),
:math:`W_1, W_2` equivariant linear maps, :math:`\bar n` the average number of neighbours and
SC a species-dependent self-connection (a tensor product of :math:`h_i` with the one-hot
species vector). The initial features are an embedding of the one-hot species; the per-atom
energy is a linear map of the final even scalars (``0e``). The energy is invariant and the
forces (its negative gradient) equivariant under rotations, reflections, translations and
permutations by construction, because every step is.

``l_max = 0`` gives the invariant model of the same architecture (only scalar messages).
With ``parity=True`` (the published default, "O(3) full") both parities of every ``l``
are kept: ``16x0e+16x0o+16x1o+16x1e+16x2e+16x2o`` for ``l_max=2``, 16 features.

>>> import torch
>>> model = NequIP(num_species=2, r_max=3.0, l_max=1, num_features=4, num_layers=2)
>>> edge_index = torch.tensor([[0, 1], [1, 0]])
>>> edge_vec = torch.tensor([[1.0, 0.5, 0.0], [-1.0, -0.5, 0.0]])
>>> model(torch.tensor([0, 1]), edge_index, edge_vec).shape
torch.Size([2])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from equidyn import o3
from equidyn._deprecation import renamed_arguments
from equidyn.models.blocks import (
    EdgeEmbedding,
    RadialWeightedConvolution,
    SavedKeyPrefixes,
    nequip_gate,
)
from equidyn.models.potential import check_model_args
from equidyn.models.registry import model_config, register_model

__all__ = ["NequIP", "InteractionBlock", "hidden_irreps"]


def hidden_irreps(num_features: int, l_max: int, parity: bool) -> o3.Irreps:
    """Feature irreps of the hidden layers: ``num_features`` copies of every ``(l, p)``.

    With ``parity`` both parities of each ``l``, else only the ``p = (-1)^l`` ones.

    >>> hidden_irreps(16, 2, True)
    16x0e+16x0o+16x1o+16x1e+16x2e+16x2o
    >>> hidden_irreps(8, 1, False)
    8x0e+8x1o
    """
    parts = []
    for l in range(l_max + 1):
        natural = "e" if l % 2 == 0 else "o"
        other = "o" if natural == "e" else "e"
        parts.append(f"{num_features}x{l}{natural}")
        if parity:
            parts.append(f"{num_features}x{l}{other}")
    return o3.Irreps("+".join(parts))


def _reachable(irreps_in: o3.Irreps, irreps_sh: o3.Irreps) -> set[tuple[int, int]]:
    """The (l, p) that some product irreps_in ⊗ irreps_sh contains."""
    out = set()
    for _, a in irreps_in:
        for _, b in irreps_sh:
            for l in range(abs(a.l - b.l), a.l + b.l + 1):
                out.add((l, a.p * b.p))
    return out


class InteractionBlock(nn.Module):
    r"""One NequIP layer: linear, convolution, linear, self-connection, gate.

    Args:
        irreps_in: node features entering the layer.
        irreps_target: the features wanted after the gate (those the convolution cannot
            reach are dropped).
        irreps_sh: spherical harmonics of the edge directions.
        num_attrs: size of the scalar node attributes of the self-connection (the one-hot
            species or a species embedding); ``0``: no self-connection.
        num_basis: size of the radial embedding.
        radial_hidden: width of the radial MLP's hidden layers.
        radial_layers: number of hidden layers of the radial MLP.
        avg_num_neighbors: :math:`\bar n`, the neighbour sum is divided by its square root.

    Inputs of :meth:`forward`: node features ``[n_atoms, irreps_in.dim]``, node attributes
    ``[n_atoms, num_attrs]``, ``edge_index`` ``[2, n_edges]``, spherical harmonics
    ``[n_edges, irreps_sh.dim]`` and the radial embedding ``[n_edges, num_basis]``.
    The convolution (:class:`~equidyn.models.blocks.RadialWeightedConvolution`) saves its
    radial MLP under the key ``radial.`` of the layer, as model files always had it.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_target: o3.Irreps,
        irreps_sh: o3.Irreps,
        num_attrs: int,
        num_basis: int,
        radial_hidden: int,
        radial_layers: int,
        avg_num_neighbors: float,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        reach = _reachable(self.irreps_in, irreps_sh)
        reachable = o3.Irreps([(m, ir) for m, ir in irreps_target if (ir.l, ir.p) in reach])
        self.gate = nequip_gate(reachable)
        irreps_mid = self.gate.irreps_in  # scalars + gates + gated
        self.linear_1 = o3.Linear(self.irreps_in, self.irreps_in)
        self.conv = RadialWeightedConvolution(
            self.irreps_in,
            irreps_sh,
            [ir for _, ir in irreps_mid],
            [num_basis] + [radial_hidden] * radial_layers,
        )
        self.linear_2 = o3.Linear(self.conv.irreps_out, irreps_mid)
        self.self_connection: o3.FullyConnectedTensorProduct | None = None
        if num_attrs > 0:
            self.self_connection = o3.FullyConnectedTensorProduct(
                self.irreps_in, o3.Irreps(f"{num_attrs}x0e"), irreps_mid
            )
        self.norm = 1.0 / float(avg_num_neighbors) ** 0.5
        self.irreps_out = self.gate.irreps_out
        SavedKeyPrefixes({"conv.radial.": "radial."}).attach(self)

    def forward(
        self, h: Tensor, attrs: Tensor, edge_index: Tensor, sh: Tensor, radial: Tensor
    ) -> Tensor:
        x = self.linear_1(h)  # [n_atoms, irreps_in.dim]
        m = self.conv(x, edge_index, sh, radial, self.norm)  # [n_atoms, conv.irreps_out.dim]
        out = self.linear_2(m)  # [n_atoms, irreps_mid.dim]
        if self.self_connection is not None:
            out = out + self.self_connection(h, attrs)
        return self.gate(out)  # [n_atoms, irreps_out.dim]


@register_model(kind="potential")
class NequIP(nn.Module):
    r"""The NequIP per-atom energy model (see the module docstring for the equations).

    Wrap it in :class:`~equidyn.models.potential.Potential` for energies, forces and stress.

    Args:
        num_species: number of species (inputs are indices ``0 .. num_species - 1``).
        r_max: cutoff radius (Å); 4–5 Å in the paper.
        l_max: largest rotation order of features and spherical harmonics (0 = invariant).
        parity: keep both parities of every ``l`` (``True``: O(3) "full" features as
            published; ``False``: only ``p = (-1)^l``).
        num_features: multiplicity of every irrep of the hidden features (16–64).
        num_layers: number of interaction blocks (4–6 in the paper).
        num_basis: number of Bessel radial basis functions (8).
        trainable_basis: learn the Bessel frequencies.
        polynomial_p: exponent :math:`p` of the polynomial cutoff (6).
        radial_hidden: width of the radial MLP (64).
        radial_layers: hidden layers of the radial MLP (2).
        avg_num_neighbors: :math:`\bar n` normalising the neighbour sums; ``None`` = 1
            (the trainer sets it from the training data).
        self_connection: the node attributes :math:`z_i` of the self-connections:
            ``"species"`` (the one-hot species, in every layer) or ``"embedding"`` (as the
            ``nequip`` package: the learned species embedding of ``num_features`` scalars that
            also starts the features, and no self-connection in the first layer; about
            ``num_features`` times more self-connection weights).

    Attributes:
        r_max, num_species: see :class:`~equidyn.models.potential.AtomicEnergyModel`.
        irreps_hidden: the target feature irreps of the hidden layers.
        edges: the :class:`~equidyn.models.blocks.EdgeEmbedding` (Bessel basis times the
            polynomial cutoff; saved under the key ``bessel.`` as model files always had it).

    ``num_bessel`` and ``trainable_bessel`` are deprecated names of ``num_basis`` and
    ``trainable_basis``.
    """

    @renamed_arguments(num_bessel="num_basis", trainable_bessel="trainable_basis")
    def __init__(
        self,
        num_species: int = 1,
        r_max: float = 4.0,
        l_max: int = 2,
        parity: bool = True,
        num_features: int = 16,
        num_layers: int = 4,
        num_basis: int = 8,
        trainable_basis: bool = True,
        polynomial_p: int = 6,
        radial_hidden: int = 64,
        radial_layers: int = 2,
        avg_num_neighbors: float | None = None,
        self_connection: str = "species",
    ) -> None:
        super().__init__()
        if self_connection not in ("species", "embedding"):
            raise ValueError(
                f"self_connection must be 'species' or 'embedding', got {self_connection!r}"
            )
        check_model_args(
            [
                ("num_species", num_species, 1),
                ("l_max", l_max, 0),
                ("num_features", num_features, 1),
                ("num_layers", num_layers, 1),
                ("num_basis", num_basis, 1),
                ("radial_hidden", radial_hidden, 1),
                ("radial_layers", radial_layers, 0),
            ],
            r_max,
            avg_num_neighbors,
        )
        self.r_max = float(r_max)
        self.num_species = num_species
        self.l_max = l_max
        self.self_connection = self_connection
        num_attrs = num_species if self_connection == "species" else num_features
        self.irreps_hidden = hidden_irreps(num_features, l_max, parity)
        n_bar = 1.0 if avg_num_neighbors is None else float(avg_num_neighbors)

        self.edges = EdgeEmbedding.bessel(l_max, r_max, num_basis, polynomial_p, trainable_basis)
        SavedKeyPrefixes({"edges.basis.": "bessel."}).attach(self)
        self.irreps_sh = self.edges.irreps_sh
        self.embedding = o3.Linear(o3.Irreps(f"{num_species}x0e"), o3.Irreps(f"{num_features}x0e"))
        blocks = []
        irreps = o3.Irreps(f"{num_features}x0e")
        for t in range(num_layers):
            last = t == num_layers - 1
            # the last block only needs the even scalars that the energy is read from
            target = o3.Irreps(f"{num_features}x0e") if last else self.irreps_hidden
            attrs = 0 if self_connection == "embedding" and t == 0 else num_attrs
            block = InteractionBlock(
                irreps, target, self.irreps_sh, attrs, num_basis, radial_hidden, radial_layers,
                n_bar,
            )  # fmt: skip
            blocks.append(block)
            irreps = block.irreps_out
        self.blocks = nn.ModuleList(blocks)
        self.readout = o3.Linear(irreps, o3.Irreps("1x0e"))

    def config(self) -> dict[str, Any]:
        """The constructor arguments (what a model file stores)."""
        return model_config(self)

    def forward(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        """Per-atom energies ``[n_atoms]`` from species indices ``[n_atoms]``, ``edge_index``
        ``[2, n_edges]`` and edge vectors ``[n_edges, 3]``."""
        one_hot = torch.nn.functional.one_hot(species, self.num_species).to(edge_vec.dtype)
        # [n_atoms, num_species]
        sh, radial = self.edges(edge_vec)  # [n_edges, irreps_sh.dim], [n_edges, num_basis]
        h = self.embedding(one_hot)  # [n_atoms, num_features]
        attrs = one_hot if self.self_connection == "species" else h  # [n_atoms, num_attrs]
        for block in self.blocks:
            h = block(h, attrs, edge_index, sh, radial)  # [n_atoms, block.irreps_out.dim]
        return self.readout(h)[:, 0]  # [n_atoms]
