r"""MACE: higher body-order equivariant message passing (Batatia et al. 2022).

Atom :math:`i` of species :math:`z_i` carries features :math:`h_i` (``hidden_irreps``, e.g.
``128x0e + 128x1o``, with :math:`C` channels). Interaction :math:`t` builds the *atomic basis*
:math:`A` from the neighbours, then the *product basis* :math:`B` — equivariant polynomials of
:math:`A` of degree :math:`\nu \le \nu_{\max}` (``correlation``), i.e. many-body features of body
order :math:`\nu_{\max} + 1` per layer — from which the next features are a linear map:

.. math::

    A_{i,c\,lm} &= \frac{1}{\bar n} W^{A}\!\!\sum_{j \in \mathcal N(i)}
        R_{c}(r_{ij}) \big(W^{\uparrow} h_j\big)_c \otimes Y(\hat r_{ij})
        && \text{(channelwise "uvu" convolution, } R = \mathrm{MLP}(B(r)\,u(r))\text{)} \\
    B_{i,c\,LM} &= \sum_{\nu=1}^{\nu_{\max}} \sum_k w^{(\nu)}_{z_i k c}
        \sum_{l_1 m_1 \ldots l_\nu m_\nu} U^{(\nu)}_{l_1m_1\ldots l_\nu m_\nu, LM, k}
        \prod_{\alpha=1}^{\nu} A_{i,c\,l_\alpha m_\alpha}
        && \text{(symmetric contraction, per-species weights)} \\
    h^{t+1}_i &= W^{B} B_i + \mathrm{SC}(h^t_i, z_i)
        && \text{(linear + species-dependent residual)} \\
    \varepsilon_i &= \sum_t \mathrm{Readout}_t(h^{t+1}_i)
        && \text{(linear for the first layers, an MLP of the scalars for the last)}

with :math:`B(r)` the Bessel basis :math:`\sqrt{2/r_{\max}}\sin(n\pi r/r_{\max})/r`,
:math:`u(r)` the polynomial cutoff of exponent :math:`p` (smooth energies and forces at
:math:`r_{\max}`), :math:`\bar n` the average number of neighbours and :math:`U^{(\nu)}` the
generalized Clebsch–Gordan tensors of :mod:`equidyn.o3.symmetric_contraction`. The last
interaction only produces the even scalars the energy is read from. Per-atom energies
:math:`\varepsilon_i` go through :class:`~equidyn.models.potential.Potential` (scale, shift,
reference energies, forces :math:`-\partial E/\partial \vec r`, stress).

The published defaults (:data:`MACE_DEFAULTS`: ``r_max=5``, 8 Bessel functions, ``p=5``,
``l_max=3``, ``correlation=3``, 2 interactions, ``128x0e+128x1o``, radial MLP
``[64, 64, 64]``, SiLU) are the constructor's defaults. ``hidden_irreps="Nx0e"`` is the
invariant-feature variant (messages still use :math:`l \le` ``l_max``); ``l_max=0``
makes every intermediate invariant too.

>>> import torch
>>> model = MACE(num_species=2, r_max=3.0, l_max=2, hidden_irreps="4x0e + 4x1o",
...              radial_mlp=[8], correlation=2)
>>> edge_index = torch.tensor([[0, 1], [1, 0]])
>>> edge_vec = torch.tensor([[1.0, 0.5, 0.0], [-1.0, -0.5, 0.0]])
>>> model(torch.tensor([0, 1]), edge_index, edge_vec).shape  # per-atom energies
torch.Size([2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from equidyn import nn as enn
from equidyn import o3
from equidyn._deprecation import renamed_arguments
from equidyn.models.blocks import EdgeEmbedding, RadialWeightedConvolution, SavedKeyPrefixes
from equidyn.models.potential import check_model_args
from equidyn.models.registry import model_config, register_model
from equidyn.o3.symmetric_contraction import SymmetricContraction

__all__ = ["MACE", "MACEInteraction", "MACEProduct", "MACE_DEFAULTS"]

#: The hyperparameters of the MACE paper (Batatia et al. 2022), also mace-torch's defaults.
MACE_DEFAULTS: dict[str, Any] = {
    "r_max": 5.0,
    "num_basis": 8,
    "polynomial_p": 5,
    "l_max": 3,
    "correlation": 3,
    "num_layers": 2,
    "hidden_irreps": "128x0e + 128x1o",
    "radial_mlp": [64, 64, 64],
}


def _hidden_channels(hidden_irreps: Any) -> tuple[o3.Irreps, int]:
    """``hidden_irreps`` as Irreps and its number of channels :math:`C` (ValueError unless it
    parses, contains ``0e`` and has one multiplicity for every irrep)."""
    try:
        irreps = o3.Irreps(hidden_irreps)
    except (ValueError, TypeError) as e:
        raise ValueError(f"hidden_irreps {hidden_irreps!r} is not an Irreps: {e}") from None
    muls = {mul for mul, _ in irreps}
    if len(muls) != 1 or o3.Irrep("0e") not in [ir for _, ir in irreps]:
        raise ValueError(
            "hidden_irreps must contain 0e and have one multiplicity (the channels) for every "
            f"irrep, e.g. '128x0e + 128x1o'; got {irreps}"
        )
    return irreps, muls.pop()


def _check_widths(radial_mlp: Sequence[int]) -> list[int]:
    widths = list(radial_mlp)
    if any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"radial_mlp must be a list of positive ints, got {radial_mlp!r}")
    return widths


class MACEInteraction(nn.Module):
    r"""The atomic basis :math:`A` of one MACE layer, plus the residual self-connection.

    Args:
        irreps_in: node features entering the layer.
        irreps_sh: spherical harmonics of the edges (``1x0e + 1x1o + ...``).
        num_channels: :math:`C`; :math:`A` has irreps :math:`C \times` ``irreps_sh``.
        irreps_sc: irreps of the self-connection (the layer's output features).
        num_species: size of the one-hot species vector.
        num_basis: size of the radial embedding.
        radial_mlp: hidden widths of the radial MLP.
        avg_num_neighbors: :math:`\bar n`; the neighbour sum is divided by it.

    ``forward(h, one_hot, edge_index, sh, radial)`` with ``h`` ``[n, irreps_in.dim]``,
    ``one_hot`` ``[n, num_species]``, ``edge_index`` ``[2, n_edges]`` (messages flow from
    ``edge_index[1]`` to ``edge_index[0]``), ``sh`` ``[n_edges, irreps_sh.dim]``, ``radial``
    ``[n_edges, num_basis]``; returns ``A`` ``[n, irreps_out.dim]`` and the self-connection
    ``[n, irreps_sc.dim]``. The convolution
    (:class:`~equidyn.models.blocks.RadialWeightedConvolution`) saves its radial MLP under the
    key ``radial.`` of the layer, as model files always had it.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_sh: o3.Irreps,
        num_channels: int,
        irreps_sc: o3.Irreps,
        num_species: int,
        num_basis: int,
        radial_mlp: Sequence[int],
        avg_num_neighbors: float,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps([(num_channels, ir) for _, ir in irreps_sh])
        self.linear_up = o3.Linear(self.irreps_in, self.irreps_in)
        self.conv = RadialWeightedConvolution(
            self.irreps_in, irreps_sh, [ir for _, ir in self.irreps_out], [num_basis, *radial_mlp]
        )
        self.linear = o3.Linear(self.conv.irreps_out, self.irreps_out)
        self.self_connection = o3.FullyConnectedTensorProduct(
            self.irreps_in, o3.Irreps(f"{num_species}x0e"), irreps_sc
        )
        self.inv_avg = 1.0 / float(avg_num_neighbors)
        SavedKeyPrefixes({"conv.radial.": "radial."}).attach(self)

    def forward(
        self, h: Tensor, one_hot: Tensor, edge_index: Tensor, sh: Tensor, radial: Tensor
    ) -> tuple[Tensor, Tensor]:
        sc = self.self_connection(h, one_hot)  # [n, irreps_sc.dim]
        x = self.linear_up(h)  # [n, irreps_in.dim]
        a = self.conv(x, edge_index, sh, radial, self.inv_avg)  # [n, conv.irreps_out.dim]
        return self.linear(a), sc  # [n, irreps_out.dim], [n, irreps_sc.dim]


class MACEProduct(nn.Module):
    r"""The product basis: symmetric contraction of :math:`A` (per-species weights), then a
    linear map, plus the residual: :math:`h^{t+1} = W^B B(A, z) + \mathrm{SC}`.

    ``forward(a, species, sc)``: ``a`` ``[n, irreps_in.dim]``, ``species`` ``[n]`` indices,
    ``sc`` ``[n, irreps_out.dim]``; returns ``[n, irreps_out.dim]``.
    """

    def __init__(
        self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, correlation: int, num_species: int
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        self.contraction = SymmetricContraction(
            self.irreps_in, self.irreps_out, correlation, num_species
        )
        self.linear = o3.Linear(self.irreps_out, self.irreps_out)

    def forward(self, a: Tensor, species: Tensor, sc: Tensor) -> Tensor:
        b = self.contraction(a, species)  # [n, irreps_out.dim]
        return self.linear(b) + sc  # [n, irreps_out.dim]


@register_model(kind="potential")
class MACE(nn.Module):
    r"""The MACE per-atom energy model (see the module docstring for the equations).

    Wrap it in :class:`~equidyn.models.potential.Potential` for energies, forces and stress
    (``equidyn train`` does this with ``model_class: MACE``).

    Args:
        num_species: number of species (inputs are indices ``0 .. num_species - 1``).
        r_max: cutoff radius (Å).
        num_basis: number of Bessel radial functions.
        trainable_basis: learn the Bessel frequencies.
        polynomial_p: exponent of the polynomial cutoff envelope.
        l_max: largest ``l`` of the edge spherical harmonics and of :math:`A`.
        correlation: :math:`\nu_{\max}`, the highest degree of the product basis (1..3 are
            tested; body order per layer :math:`\nu_{\max} + 1`).
        num_layers: number of interactions.
        hidden_irreps: node features between layers, one multiplicity :math:`C` for every irrep
            and containing ``0e`` (``"128x0e + 128x1o"``; ``"Cx0e"`` for invariant features).
        radial_mlp: hidden widths of the radial MLP (SiLU).
        readout_hidden: width of the hidden layer of the last (MLP) readout.
        avg_num_neighbors: :math:`\bar n` normalising the neighbour sums; ``None`` = 1 (the
            trainer fills it in from the training data).

    Attributes:
        r_max, num_species: see :class:`~equidyn.models.potential.AtomicEnergyModel`.
        edges: the :class:`~equidyn.models.blocks.EdgeEmbedding` (Bessel basis times the
            polynomial cutoff; saved under the key ``bessel.`` as model files always had it).

    ``num_bessel``, ``trainable_bessel``, ``max_ell`` and ``num_interactions`` are deprecated
    names of ``num_basis``, ``trainable_basis``, ``l_max`` and ``num_layers``.
    """

    @renamed_arguments(
        num_bessel="num_basis",
        trainable_bessel="trainable_basis",
        max_ell="l_max",
        num_interactions="num_layers",
    )
    def __init__(
        self,
        num_species: int = 1,
        r_max: float = 5.0,
        num_basis: int = 8,
        trainable_basis: bool = False,
        polynomial_p: int = 5,
        l_max: int = 3,
        correlation: int = 3,
        num_layers: int = 2,
        hidden_irreps: str = "128x0e + 128x1o",
        radial_mlp: Sequence[int] = (64, 64, 64),
        readout_hidden: int = 16,
        avg_num_neighbors: float | None = None,
    ) -> None:
        super().__init__()
        check_model_args(
            [
                ("num_species", num_species, 1),
                ("num_basis", num_basis, 1),
                ("polynomial_p", polynomial_p, 2),
                ("l_max", l_max, 0),
                ("correlation", correlation, 1),
                ("num_layers", num_layers, 1),
                ("readout_hidden", readout_hidden, 1),
            ],
            r_max,
            avg_num_neighbors,
        )
        radial_mlp = _check_widths(radial_mlp)
        irreps_hidden, channels = _hidden_channels(hidden_irreps)
        self.r_max = float(r_max)
        self.num_species = num_species
        self.l_max = l_max
        self.irreps_hidden = irreps_hidden
        n_bar = 1.0 if avg_num_neighbors is None else float(avg_num_neighbors)

        self.edges = EdgeEmbedding.bessel(l_max, r_max, num_basis, polynomial_p, trainable_basis)
        SavedKeyPrefixes({"edges.basis.": "bessel."}).attach(self)
        self.irreps_sh = self.edges.irreps_sh
        scalars = o3.Irreps(f"{channels}x0e")
        self.embedding = o3.Linear(o3.Irreps(f"{num_species}x0e"), scalars)
        interactions, products, readouts = [], [], []
        irreps_in = scalars
        for t in range(num_layers):
            last = t == num_layers - 1
            irreps_out = scalars if last else irreps_hidden
            inter = MACEInteraction(
                irreps_in, self.irreps_sh, channels, irreps_out, num_species, num_basis,
                radial_mlp, n_bar,
            )  # fmt: skip
            interactions.append(inter)
            products.append(MACEProduct(inter.irreps_out, irreps_out, correlation, num_species))
            if last:
                readouts.append(enn.MLP([channels, readout_hidden, 1], torch.nn.functional.silu))
            else:
                readouts.append(o3.Linear(irreps_out, o3.Irreps("1x0e")))
            irreps_in = irreps_out
        self.interactions = nn.ModuleList(interactions)
        self.products = nn.ModuleList(products)
        self.readouts = nn.ModuleList(readouts)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (what a model file stores)."""
        return model_config(self)

    def forward(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        """Per-atom energies ``[n_atoms]`` from species indices ``[n_atoms]``, ``edge_index``
        ``[2, n_edges]`` and edge vectors ``[n_edges, 3]``."""
        one_hot = torch.nn.functional.one_hot(species, self.num_species).to(edge_vec.dtype)
        # [n_atoms, num_species]
        sh, radial = self.edges(edge_vec)  # [n_edges, irreps_sh.dim], [n_edges, num_basis]
        h = self.embedding(one_hot)  # [n_atoms, C]
        energy = edge_vec.new_zeros(species.shape[0])  # [n_atoms]
        for inter, prod, readout in zip(self.interactions, self.products, self.readouts):
            a, sc = inter(h, one_hot, edge_index, sh, radial)  # [n, A.dim], [n, out.dim]
            h = prod(a, species, sc)  # [n_atoms, prod.irreps_out.dim]
            energy = energy + readout(h)[:, 0]
        return energy  # [n_atoms]
