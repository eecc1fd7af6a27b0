r"""Allegro: a strictly local, edge-based equivariant potential (Musaelian et al. 2023).

Allegro has **no message passing between atoms**. Every ordered pair :math:`(i, j)` with
:math:`r_{ij} < r_{\max}` carries an invariant latent :math:`x_{ij}` and equivariant tensor
features :math:`V_{ij}` (``num_tensor_features`` channels :math:`n` of every irrep
:math:`l \le l_{\max}`), and both are updated from the environment of the *central* atom
:math:`i` only:

.. math::

    x^0_{ij} &= \mathrm{MLP}_{2b}\big([\mathbf 1_{z_i}, \mathbf 1_{z_j}, B(r_{ij})\,u(r_{ij})]\big)
        \, u(r_{ij})
        && \text{(two-body latent)} \\
    V^0_{ij,n l} &= w^0_{ij,n l}\, Y^l(\hat r_{ij}), \quad w^0_{ij} = W^0 x^0_{ij}
        && \text{(weighted spherical harmonics)} \\
    \Gamma^\ell_{i,n l} &= \frac{1}{\sqrt{\bar n}} \sum_{k \in \mathcal N(i)}
        w^\ell_{ik,n l}\, Y^l(\hat r_{ik}), \quad w^\ell_{ik} = W^\ell x^{\ell-1}_{ik}
        && \text{(environment of } i\text{)} \\
    V^\ell_{ij} &= \mathrm{Linear}^\ell\big(V^{\ell-1}_{ij} \otimes_n \Gamma^\ell_i\big)
        && \text{(channel-wise "uuu" tensor product)} \\
    x^\ell_{ij} &= \tfrac{1}{\sqrt 2}\Big(x^{\ell-1}_{ij}
        + \mathrm{MLP}^\ell_{\mathrm{lat}}\big([x^{\ell-1}_{ij}, V^\ell_{ij}|_{0e}]\big)\,
        u(r_{ij})\Big)
        && \text{(residual latent update)} \\
    E_{ij} &= \mathrm{MLP}_{\mathrm{out}}(x^L_{ij})\, u(r_{ij}), \qquad
    \varepsilon_i = \sum_{j \in \mathcal N(i)} \sigma_{z_i z_j} E_{ij}
        && \text{(edge and per-atom energies)}

with :math:`\mathbf 1_z` the one-hot species, :math:`B` the Bessel basis
:math:`\sqrt{2/r_{\max}} \sin(n\pi r/r_{\max})/r`, :math:`u` the polynomial cutoff of
exponent :math:`p` (value, first and second derivative vanish at :math:`r_{\max}`), :math:`Y`
the spherical harmonics (component normalisation), :math:`\bar n` the average number of
neighbours and :math:`W^\ell` bias-free linear maps giving one weight per channel :math:`n`
and per rotation order :math:`l` of :math:`Y`. The tensor product pairs channel :math:`n` of
:math:`V` with channel :math:`n` of :math:`\Gamma` (every block pair and every output irrep
:math:`l \le l_{\max}`, unweighted), and the equivariant linear map mixes channels and paths
of the same irrep. The scalars ``0e`` of :math:`V^\ell` enter the latent MLP. Design choices
(the paper leaves them open):

* the residual uses fixed coefficients :math:`1/\sqrt 2` (variance preserving; the reference
  code learns them starting from this value);
* the per-species-pair scale :math:`\sigma_{z_i z_j}` (initialised to 1) is **not**
  symmetrised: :math:`E_{ij}` already differs from :math:`E_{ji}` (it sees the environment
  of :math:`i`, not of :math:`j`), so nothing is gained by tying :math:`\sigma_{ab}` to
  :math:`\sigma_{ba}`;
* the last layer only produces the scalars the latent update needs (its other irreps would
  never be read);
* the tensor product and the linear map after it are computed by
  :class:`ChannelwiseProductLinear`, one contraction per block pair, equal to the reference
  :class:`~equidyn.o3.TensorProduct` with unweighted ``"uuu"`` paths.

**Strict locality.** :math:`\varepsilon_i` depends only on the vectors :math:`\vec r_{ik}` to
the neighbours :math:`k` of :math:`i` (within :math:`r_{\max}`), whatever the number of
layers: an atom outside the cutoff sphere of :math:`i` cannot change :math:`\varepsilon_i`,
unlike in message passing (NequIP, MACE) where the receptive field grows by :math:`r_{\max}`
per layer. The cost is linear in the number of edges. Every latent carries a factor
:math:`u(r_{ij})` and every MLP here is bias free, so an edge entering the cutoff switches on
smoothly; energies are invariant and forces equivariant under rotations, reflections,
translations and permutations because every step is.

``parity=True`` keeps both parities of every :math:`l` (``16x0e+16x0o+16x1o+16x1e+16x2e+16x2o``
for ``l_max=2``); ``l_max=0`` is the invariant model of the same form (scalar environments).

>>> import torch
>>> model = Allegro(num_species=2, r_max=3.0, l_max=1, num_tensor_features=4, latent_dim=8,
...                 two_body_hidden=[8], latent_hidden=[8], edge_energy_hidden=[4])
>>> edge_index = torch.tensor([[0, 1], [1, 0]])
>>> edge_vec = torch.tensor([[1.0, 0.5, 0.0], [-1.0, -0.5, 0.0]])
>>> model(torch.tensor([0, 1]), edge_index, edge_vec).shape  # per-atom energies
torch.Size([2])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from equidyn import nn as enn
from equidyn import o3
from equidyn.graph.scatter import scatter_sum
from equidyn.models.blocks import EdgeEmbedding
from equidyn.models.nequip import hidden_irreps
from equidyn.models.potential import check_model_args
from equidyn.models.registry import model_config, register_model

__all__ = ["Allegro", "AllegroLayer", "ChannelwiseProductLinear", "weighted_harmonics"]


def weighted_harmonics(weights: Tensor, sh: Tensor, num_channels: int, l_max: int) -> Tensor:
    r"""Channels of spherical harmonics: :math:`V_{nlm} = w_{nl}\, Y_{lm}`, channel-major.

    ``weights`` ``[..., num_channels * (l_max + 1)]`` (entry ``n * (l_max + 1) + l``), ``sh``
    ``[..., (l_max + 1)^2]`` → ``[..., num_channels, (l_max + 1)^2]``: row ``n`` holds
    channel ``n`` of every ``l`` (the components of ``1x0e + 1x1o + ...``).

    >>> sh = torch.tensor([[1.0, 0.0, 0.0, 1.0]])  # l = 0 and l = 1
    >>> weighted_harmonics(torch.tensor([[2.0, 3.0, 5.0, 7.0]]), sh, 2, 1)
    tensor([[[2., 0., 0., 3.],
             [5., 0., 0., 7.]]])
    """
    w = weights.unflatten(-1, (num_channels, l_max + 1))  # [..., n, L + 1]
    per_component = [w[..., l : l + 1].expand(*w.shape[:-1], 2 * l + 1) for l in range(l_max + 1)]
    w = torch.cat(per_component, dim=-1) if l_max > 0 else per_component[0]  # [..., n, (L+1)^2]
    return w * sh[..., None, :]  # [..., n, (L + 1)^2]


def _channel_major(x: Tensor, irreps: o3.Irreps) -> Tensor:
    """``[..., irreps.dim]`` of blocks ``n x ir`` (one multiplicity n) → ``[..., n, D]`` with
    ``D`` the sum of the irrep dimensions (channel ``u`` of every block in a row)."""
    n = irreps[0].mul
    blocks = torch.split(x, [mul * ir.dim for mul, ir in irreps], dim=-1)
    rows = [b.unflatten(-1, (n, ir.dim)) for b, (_, ir) in zip(blocks, irreps)]
    return torch.cat(rows, dim=-1) if len(rows) > 1 else rows[0]


def _channelwise_product(
    irreps1: o3.Irreps, irreps2: o3.Irreps, keep: set[tuple[int, int]]
) -> o3.TensorProduct:
    """Unweighted "uuu" tensor product: every block pair, every output ``(l, p)`` in ``keep``,
    each path into a block of its own (the linear map after it mixes them)."""
    outs: list[tuple[int, o3.Irrep]] = []
    paths = []
    for a, (mul1, ir1) in enumerate(irreps1):
        for b, (_, ir2) in enumerate(irreps2):
            for _, ir3 in ir1 * ir2:
                if (ir3.l, ir3.p) in keep:
                    paths.append(o3.Path(a, b, len(outs), "uuu", False))
                    outs.append((mul1, ir3))
    return o3.TensorProduct(irreps1, irreps2, o3.Irreps(outs), paths, internal_weights=False)


class ChannelwiseProductLinear(nn.Module):
    r"""The channel-wise tensor product followed by the equivariant linear map,
    :math:`\mathrm{Linear}(V \otimes_n \Gamma)`.

    The product is exactly the unweighted ``"uuu"`` :class:`~equidyn.o3.TensorProduct` of
    every block pair into every irrep of ``irreps_out`` (component normalisation), one path
    per output block; the :class:`~equidyn.o3.Linear` then mixes, per irrep, all channels and
    paths. Each block pair :math:`(a, b)` is one contraction of all its paths at once, with
    :math:`C_{ab}` ``[d_a, d_b, S]`` the Clebsch–Gordan coefficients of its paths (read off
    the reference tensor product in float64): either
    :math:`(v_a \otimes \gamma_b)\, C_{ab}` (the outer product first) or
    :math:`\sum_i v_{a,i} (\gamma_b C_{ab})_i` (the coefficients first), whichever has the
    smaller intermediate (e.g. a pair giving only ``0e`` is a dot product).

    Args:
        irreps1, irreps2: the two inputs, ``n`` channels of every irrep (e.g. ``8x0e + 8x1o``).
        irreps_out: the output irreps (each irrep once; irreps no path reaches are zero).

    ``forward(x1, x2)`` with ``x1`` ``[..., n, D_1]`` and ``x2`` ``[..., n, D_2]`` in the
    channel-major layout (row ``u``: channel ``u`` of every block) returns
    ``[..., irreps_out.dim]`` (the usual block layout).

    >>> op = ChannelwiseProductLinear("2x0e + 2x1o", "2x0e + 2x1o", "3x0e + 3x1e")
    >>> op(torch.randn(5, 2, 4), torch.randn(5, 2, 4)).shape
    torch.Size([5, 12])
    """

    def __init__(
        self, irreps1: o3.Irreps | str, irreps2: o3.Irreps | str, irreps_out: o3.Irreps | str
    ) -> None:
        super().__init__()
        self.irreps1, self.irreps2 = o3.Irreps(irreps1), o3.Irreps(irreps2)
        self.irreps_out = o3.Irreps(irreps_out)
        muls = {mul for mul, _ in self.irreps1} | {mul for mul, _ in self.irreps2}
        if len(muls) != 1:
            raise ValueError(
                f"both inputs need one multiplicity for every irrep, got {self.irreps1} and "
                f"{self.irreps2}"
            )
        n = muls.pop()
        single = [
            o3.Irreps([(1, ir) for _, ir in irreps]) for irreps in (self.irreps1, self.irreps2)
        ]
        d1, d2 = single[0].dim, single[1].dim
        keep = {(ir.l, ir.p) for _, ir in self.irreps_out}
        ref = _channelwise_product(single[0], single[1], keep).to(torch.float64)
        eye1, eye2 = torch.eye(d1, dtype=torch.float64), torch.eye(d2, dtype=torch.float64)
        with torch.no_grad():  # the bilinear map on basis pairs: its coefficients
            table = ref(eye1[:, None, :].expand(d1, d2, d1), eye2[None].expand(d1, d2, d2))
        # [d1, d2, ref.irreps_out.dim]
        out_slices = ref.irreps_out.slices()
        s1, s2 = single[0].slices(), single[1].slices()
        # per block pair: its paths' columns; which output irrep and column each path fills
        self._pairs: list[tuple[slice, slice, bool]] = []
        self._exact: list[Tensor] = []
        where: dict[int, tuple[int, int, int]] = {}  # path -> (pair, first column, width)
        for a in range(len(single[0])):
            for b in range(len(single[1])):
                mine = [k for k, p in enumerate(ref.paths) if (p.in1, p.in2) == (a, b)]
                if not mine:
                    continue
                c = torch.cat([table[s1[a], s2[b], out_slices[ref.paths[k].out]] for k in mine], -1)
                da, db, width = c.shape
                outer_first = da * db <= da * width
                for k in mine:
                    d3 = out_slices[ref.paths[k].out].stop - out_slices[ref.paths[k].out].start
                    start = sum(where[q][2] for q in mine if q in where)
                    where[k] = (len(self._pairs), start, d3)
                if outer_first:
                    c = c.reshape(da * db, width)
                else:
                    c = c.permute(1, 0, 2).reshape(db, da * width)
                self._pairs.append((s1[a], s2[b], outer_first))
                self._exact.append(c)
                self.register_buffer(
                    f"_cg{len(self._exact) - 1}", c.to(torch.get_default_dtype()), persistent=False
                )
        # per output irrep: the (pair, start, width) of its paths, in the reference's order
        self._groups: list[list[tuple[int, int, int]]] = []
        mid = []
        for _, ir in self.irreps_out:
            group = [where[k] for k, p in enumerate(ref.paths) if ref.irreps_out[p.out].ir == ir]
            if group:
                self._groups.append(group)
                mid.append((n * len(group), ir))
        self.irreps_mid = o3.Irreps(mid)
        self.linear = o3.Linear(self.irreps_mid, self.irreps_out)

    def _apply(self, fn: Any, *args: Any, **kw: Any) -> ChannelwiseProductLinear:
        super()._apply(fn, *args, **kw)
        # the coefficients are always rounded from float64, whatever dtypes were visited
        for k, exact in enumerate(self._exact):
            cur = getattr(self, f"_cg{k}")
            setattr(self, f"_cg{k}", exact.to(device=cur.device, dtype=cur.dtype))
        return self

    def paths(self, x1: Tensor, x2: Tensor) -> Tensor:
        """The tensor product alone, ``[..., irreps_mid.dim]``: for every irrep of
        ``irreps_out`` (in order) its ``k`` paths, block ``n * k x ir`` with row ``u * k + p``
        the channel ``u`` of path ``p`` (paths in the order of the reference product)."""
        outs = []
        for k, (sa, sb, outer_first) in enumerate(self._pairs):
            c = getattr(self, f"_cg{k}")
            xa, xb = x1[..., sa], x2[..., sb]  # [..., n, d_a], [..., n, d_b]
            if outer_first:
                o = (xa[..., :, None] * xb[..., None, :]).flatten(-2) @ c  # [..., n, S]
            else:
                g = (xb @ c).unflatten(-1, (xa.shape[-1], -1))  # [..., n, d_a, S]
                o = (g * xa[..., None]).sum(-2)  # [..., n, S]
            outs.append(o)
        parts = []
        for group in self._groups:
            cols = [outs[pair][..., start : start + width] for pair, start, width in group]
            block = torch.stack(cols, dim=-2) if len(cols) > 1 else cols[0][..., None, :]
            parts.append(block.flatten(-3))  # [..., n * k * (2l + 1)]
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return self.linear(self.paths(x1, x2))  # [..., irreps_out.dim]


class AllegroLayer(nn.Module):
    r"""One Allegro layer: environment embedding, channel-wise tensor product, linear map and
    residual latent update (equations in the module docstring).

    Args:
        irreps_in: tensor features :math:`V^{\ell-1}` entering the layer (``n`` channels of
            every irrep).
        irreps_target: the tensor features wanted (those the product cannot reach are
            dropped); must contain ``num_channels x 0e``.
        num_channels: :math:`n`, the channels of :math:`V` and :math:`\Gamma`.
        l_max: largest ``l`` of the spherical harmonics.
        latent_dim: width of the latent :math:`x`.
        latent_hidden: hidden widths of the latent MLP (SiLU).
        avg_num_neighbors: :math:`\bar n`; the environment sum is divided by its square root.

    ``forward(x, v, edge_index, sh, u, n_atoms)`` with ``x`` ``[n_edges, latent_dim]``, ``v``
    ``[n_edges, n, D]`` (channel-major, see :class:`ChannelwiseProductLinear`),
    ``edge_index`` ``[2, n_edges]`` (central atom ``edge_index[0]``), ``sh``
    ``[n_edges, (l_max + 1)^2]`` and the cutoff ``u`` ``[n_edges]`` returns the new ``x``
    ``[n_edges, latent_dim]`` and ``v`` ``[n_edges, irreps_out.dim]`` (block layout).

    >>> layer = AllegroLayer(o3.Irreps("2x0e + 2x1o"), o3.Irreps("2x0e + 2x1e"), 2, 1, 8, [8], 1.0)
    >>> layer.irreps_out, layer.product.irreps_mid  # 1e from 1o x 1o; 0e from 0e x 0e, 1o x 1o
    (2x0e+2x1e, 4x0e+2x1e)
    >>> x, v = layer(torch.randn(3, 8), torch.randn(3, 2, 4), torch.tensor([[0, 0, 1], [1, 2, 0]]),
    ...              torch.randn(3, 4), torch.ones(3), n_atoms=3)
    >>> x.shape, v.shape
    (torch.Size([3, 8]), torch.Size([3, 8]))
    """

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_target: o3.Irreps,
        num_channels: int,
        l_max: int,
        latent_dim: int,
        latent_hidden: Sequence[int],
        avg_num_neighbors: float,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.num_channels, self.l_max = num_channels, l_max
        self.irreps_env = o3.Irreps(
            [(num_channels, ir) for _, ir in o3.Irreps.spherical_harmonics(l_max)]
        )
        reach = {
            (l, ir1.p * ir2.p)
            for _, ir1 in self.irreps_in
            for _, ir2 in self.irreps_env
            for l in range(abs(ir1.l - ir2.l), ir1.l + ir2.l + 1)
        }
        target = o3.Irreps([(m, ir) for m, ir in irreps_target if (ir.l, ir.p) in reach])
        if len(target) == 0 or target[0] != (num_channels, o3.Irrep("0e")):
            raise ValueError(f"irreps_target must start with {num_channels}x0e, got {target}")
        self.irreps_out = target
        # one weight per channel and per l of the spherical harmonics, from the latent
        self.env_weights = enn.MLP([latent_dim, num_channels * (l_max + 1)])
        self.product = ChannelwiseProductLinear(self.irreps_in, self.irreps_env, target)
        self.latent = enn.MLP(
            [latent_dim + num_channels, *latent_hidden, latent_dim], torch.nn.functional.silu
        )
        self.norm = 1.0 / math.sqrt(float(avg_num_neighbors))

    def forward(
        self, x: Tensor, v: Tensor, edge_index: Tensor, sh: Tensor, u: Tensor, n_atoms: int
    ) -> tuple[Tensor, Tensor]:
        center = edge_index[0]
        w = self.env_weights(x)  # [n_edges, n * (l_max + 1)]
        y = weighted_harmonics(w, sh, self.num_channels, self.l_max)  # [n_edges, n, D_sh]
        env = scatter_sum(y, center, n_atoms) * self.norm  # [n_atoms, n, D_sh]
        v = self.product(v, env.index_select(0, center))  # [n_edges, irreps_out.dim]
        scalars = v[:, : self.num_channels]  # [n_edges, n]  (the 0e block comes first)
        update = self.latent(torch.cat([x, scalars], dim=-1)) * u[:, None]
        x = (x + update) * (1.0 / math.sqrt(2.0))  # [n_edges, latent_dim]
        return x, v


def _check_widths(name: str, widths: Sequence[int]) -> list[int]:
    out = list(widths) if isinstance(widths, (list, tuple)) else None
    if out is None or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in out):
        raise ValueError(f"{name} must be a list of positive ints (hidden widths), got {widths!r}")
    return out


@register_model(kind="potential")
class Allegro(nn.Module):
    r"""The Allegro per-atom energy model (see the module docstring for the equations).

    Wrap it in :class:`~equidyn.models.potential.Potential` for energies, forces and stress
    (``equidyn train`` does this with ``model_class: Allegro``).

    Args:
        num_species: number of species (inputs are indices ``0 .. num_species - 1``).
        r_max: cutoff radius (Å); the only length scale of the model (no receptive field
            beyond it).
        l_max: largest rotation order of the spherical harmonics and tensor features
            (``0`` = invariant).
        parity: keep both parities of every ``l`` (``True``, as published) or only
            ``p = (-1)^l``.
        num_layers: number of Allegro layers (tensor products); 1–3 in the paper.
        num_tensor_features: :math:`n`, channels of every irrep of :math:`V` and
            :math:`\Gamma` (the paper uses 8–64).
        latent_dim: width of the invariant edge latent :math:`x` (the paper's latent MLPs are
            far wider; this default suits a CPU).
        two_body_hidden: hidden widths of the two-body MLP (SiLU).
        latent_hidden: hidden widths of each layer's latent MLP (SiLU).
        edge_energy_hidden: hidden widths of the edge-energy MLP (SiLU).
        num_basis: number of Bessel radial functions (8).
        trainable_basis: learn the Bessel frequencies.
        polynomial_p: exponent :math:`p` of the polynomial cutoff (6).
        avg_num_neighbors: :math:`\bar n` normalising the environment sums; ``None`` = 1 (the
            trainer sets it from the training data).

    Attributes:
        r_max, num_species: see :class:`~equidyn.models.potential.AtomicEnergyModel`.
        irreps_hidden: the target irreps of the tensor features of the inner layers.
        edges: the :class:`~equidyn.models.blocks.EdgeEmbedding` (spherical harmonics and
            Bessel basis times the polynomial cutoff).
        pair_scale: :math:`\sigma`, ``[num_species, num_species]`` (row: central species).

    >>> model = Allegro(num_species=1, l_max=1, num_tensor_features=4, latent_dim=8)
    >>> str(model.irreps_hidden), [str(layer.irreps_out) for layer in model.layers]
    ('4x0e+4x0o+4x1o+4x1e', ['4x0e+4x1o+4x1e', '4x0e'])
    >>> edge_vec = torch.tensor([[1.5, 0.0, 0.0], [-1.5, 0.0, 0.0]])
    >>> e = model.edge_energies(torch.tensor([0, 0]), torch.tensor([[0, 1], [1, 0]]), edge_vec)
    >>> e.shape  # one energy per ordered pair; here E_01 = E_10 by symmetry
    torch.Size([2])
    >>> torch.allclose(e[0], e[1])
    True
    """

    def __init__(
        self,
        num_species: int = 1,
        r_max: float = 4.0,
        l_max: int = 2,
        parity: bool = True,
        num_layers: int = 2,
        num_tensor_features: int = 16,
        latent_dim: int = 64,
        two_body_hidden: Sequence[int] = (64, 64),
        latent_hidden: Sequence[int] = (64,),
        edge_energy_hidden: Sequence[int] = (32,),
        num_basis: int = 8,
        trainable_basis: bool = True,
        polynomial_p: int = 6,
        avg_num_neighbors: float | None = None,
    ) -> None:
        super().__init__()
        check_model_args(
            [
                ("num_species", num_species, 1),
                ("l_max", l_max, 0),
                ("num_layers", num_layers, 1),
                ("num_tensor_features", num_tensor_features, 1),
                ("latent_dim", latent_dim, 1),
                ("num_basis", num_basis, 1),
                ("polynomial_p", polynomial_p, 2),
            ],
            r_max,
            avg_num_neighbors,
        )
        if not isinstance(parity, bool):
            raise ValueError(f"parity must be a bool, got {parity!r}")
        two_body = _check_widths("two_body_hidden", two_body_hidden)
        latent = _check_widths("latent_hidden", latent_hidden)
        edge_energy = _check_widths("edge_energy_hidden", edge_energy_hidden)
        self.r_max = float(r_max)
        self.num_species = num_species
        self.l_max = l_max
        self.num_tensor_features = n = num_tensor_features
        n_bar = 1.0 if avg_num_neighbors is None else float(avg_num_neighbors)

        self.edges = EdgeEmbedding.bessel(l_max, r_max, num_basis, polynomial_p, trainable_basis)
        self.irreps_sh = self.edges.irreps_sh
        self.irreps_hidden = hidden_irreps(n, l_max, parity)
        act = torch.nn.functional.silu
        self.two_body = enn.MLP([2 * num_species + num_basis, *two_body, latent_dim], act)
        self.embed_weights = enn.MLP([latent_dim, n * (l_max + 1)])
        layers = []
        irreps = o3.Irreps([(n, ir) for _, ir in self.irreps_sh])  # V^0
        for t in range(num_layers):
            last = t == num_layers - 1
            target = o3.Irreps(f"{n}x0e") if last else self.irreps_hidden
            layer = AllegroLayer(irreps, target, n, l_max, latent_dim, latent, n_bar)
            layers.append(layer)
            irreps = layer.irreps_out
        self.layers = nn.ModuleList(layers)
        self._irreps_out = [layer.irreps_out for layer in layers]
        self.edge_energy = enn.MLP([latent_dim, *edge_energy, 1], act)
        self.pair_scale = nn.Parameter(torch.ones(num_species, num_species))

    def config(self) -> dict[str, Any]:
        """The constructor arguments (what a model file stores)."""
        return model_config(self)

    def edge_energies(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        r""":math:`\sigma_{z_i z_j} E_{ij}` per edge ``[n_edges]`` (same inputs as
        :meth:`forward`)."""
        n_atoms = species.shape[0]
        one_hot = torch.nn.functional.one_hot(species, self.num_species).to(edge_vec.dtype)
        # [n_atoms, num_species]
        center, neighbor = edge_index[0], edge_index[1]
        sh, radial = self.edges(edge_vec)  # [n_edges, irreps_sh.dim], [n_edges, num_basis]
        r = (edge_vec * edge_vec).sum(-1).clamp(min=1e-12).sqrt()  # [n_edges]
        assert self.edges.cutoff is not None
        u = self.edges.cutoff(r)  # [n_edges]
        pair = torch.cat([one_hot[center], one_hot[neighbor], radial], dim=-1)
        x = self.two_body(pair) * u[:, None]  # [n_edges, latent_dim]
        w = self.embed_weights(x)  # [n_edges, n * (l_max + 1)]
        v = weighted_harmonics(w, sh, self.num_tensor_features, self.l_max)  # [n_edges, n, D]
        for t, (layer, irreps) in enumerate(zip(self.layers, self._irreps_out)):
            x, v_out = layer(x, v, edge_index, sh, u, n_atoms)
            if t < len(self.layers) - 1:  # the last layer's tensors are not read again
                v = _channel_major(v_out, irreps)  # [n_edges, n, D_out]
        e = self.edge_energy(x)[:, 0] * u  # [n_edges]
        return e * self.pair_scale[species[center], species[neighbor]]

    def forward(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        """Per-atom energies ``[n_atoms]`` from species indices ``[n_atoms]``, ``edge_index``
        ``[2, n_edges]`` (central atom ``edge_index[0]``) and edge vectors ``[n_edges, 3]``
        (:math:`\\vec r_j - \\vec r_i`); atoms without neighbours get 0."""
        n_atoms = species.shape[0]
        e = self.edge_energies(species, edge_index, edge_vec)  # [n_edges]
        return scatter_sum(e, edge_index[0], n_atoms)  # [n_atoms]
