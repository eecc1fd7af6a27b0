r"""Building blocks shared by the message-passing models (NequIP, MACE, TFN, SE(3)-Transformer,
SEGNN).

An edge :math:`i \to j` with vector :math:`\vec r_{ij}` is described by its *embedding*
(:class:`EdgeEmbedding`): the spherical harmonics :math:`Y(\hat r_{ij})` (``l = 0 .. l_max``,
component normalisation) and invariant radial features

.. math::  \rho_{ij} = B(r_{ij})\, u(r_{ij}),

a radial basis :math:`B` (Bessel, Gaussians, ...) times an optional smooth cutoff :math:`u`.
The *radial-weighted convolution* (:class:`RadialWeightedConvolution`, Thomas et al. 2018;
Batzner et al. 2022) sums over the neighbours the channelwise tensor products of their
features with :math:`Y`, with one learned weight per path and channel computed from
:math:`\rho_{ij}` by an MLP :math:`R`:

.. math::  m_i = c \sum_{j \in \mathcal N(i)} x_j \otimes_{R(\rho_{ij})} Y(\hat r_{ij}),

:math:`c` a normalisation (e.g. :math:`1/\sqrt{\bar n}` with :math:`\bar n` the average number
of neighbours). Both are E(3)-equivariant: :math:`Y` rotates with the edge, :math:`\rho` and the
weights are invariant, and the tensor product is equivariant. :func:`gate_irreps` splits hidden
irreps into the ``(scalars, gates, gated)`` of :class:`equidyn.nn.Gate`.

>>> import torch
>>> from equidyn.nn import BesselBasis, PolynomialCutoff
>>> emb = EdgeEmbedding(1, BesselBasis(3.0, 4), PolynomialCutoff(3.0, 6))
>>> conv = RadialWeightedConvolution("2x0e", emb.irreps_sh, ["0e", "1o"], [4, 8])
>>> edge_index = torch.tensor([[0, 1], [1, 0]])  # messages flow edge_index[1] -> [0]
>>> sh, radial = emb(torch.tensor([[1.0, 0.5, 0.0], [-1.0, -0.5, 0.0]]))
>>> conv(torch.randn(2, 2), edge_index, sh, radial).shape  # [n_nodes, conv.irreps_out.dim]
torch.Size([2, 8])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.utils.checkpoint
from torch import Tensor, nn

from equidyn.graph.scatter import scatter_sum
from equidyn.nn import MLP, BesselBasis, Gate, PolynomialCutoff
from equidyn.o3 import ChannelwiseTensorProduct, Irrep, Irreps, spherical_harmonics

__all__ = [
    "EdgeEmbedding",
    "RadialWeightedConvolution",
    "SavedKeyPrefixes",
    "gate_irreps",
    "nequip_gate",
    "set_edge_chunk",
]


def gate_irreps(
    irreps: Irreps | str, *, gate_odd_scalars: bool = True
) -> tuple[Irreps, Irreps, Irreps]:
    """Split hidden irreps into ``(scalars, gates, gated)`` for :class:`equidyn.nn.Gate`.

    Scalars are the ``0e`` blocks (and the ``0o`` blocks when ``gate_odd_scalars`` is
    ``False``: they then take an odd activation instead of a gate); every other irrep is
    gated by one extra ``0e`` scalar.

    >>> gate_irreps("8x0e + 4x1o + 2x2e")
    (8x0e, 6x0e, 4x1o+2x2e)
    >>> gate_irreps("8x0e + 2x0o + 4x1o", gate_odd_scalars=False)
    (8x0e+2x0o, 4x0e, 4x1o)
    """
    irreps = Irreps(irreps)

    def is_scalar(ir: Irrep) -> bool:
        return ir == Irrep("0e") or (not gate_odd_scalars and ir.l == 0)

    scalars = Irreps([(m, ir) for m, ir in irreps if is_scalar(ir)])
    gated = Irreps([(m, ir) for m, ir in irreps if not is_scalar(ir)])
    gates = Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps > 0 else Irreps()
    return scalars, gates, gated


def nequip_gate(irreps: Irreps | str) -> Gate:
    """The gate of NequIP (and ESCN) whose output is ``irreps``: SiLU on the even scalars, tanh
    on the odd ones, and every other irrep multiplied by the SiLU of one extra ``0e`` scalar
    (:func:`gate_irreps` with ``gate_odd_scalars=False``).

    >>> gate = nequip_gate("4x0e + 2x0o + 2x1o")
    >>> gate.irreps_in, gate.irreps_out
    (4x0e+2x0o+2x0e+2x1o, 4x0e+2x0o+2x1o)
    """
    scalars, gates, gated = gate_irreps(irreps, gate_odd_scalars=False)
    return Gate(
        scalars,
        [torch.nn.functional.silu if ir.p == 1 else torch.tanh for _, ir in scalars],
        gates,
        torch.nn.functional.silu if gated.num_irreps else [],
        gated,
    )


class EdgeEmbedding(nn.Module):
    r"""Spherical harmonics and radial features of edge vectors (module docstring).

    Args:
        l_max: largest ``l`` of the spherical harmonics (``irreps_sh = 1x0e + 1x1o + ...``).
        basis: radial basis, ``(...)`` distances → ``(..., num_basis)`` (e.g.
            :class:`~equidyn.nn.BesselBasis`); needs a ``num_basis`` attribute.
        cutoff: envelope :math:`u(r)` multiplying the basis, or ``None`` (no cutoff).

    ``forward(edge_vec)`` with ``edge_vec`` ``[..., 3]`` returns ``(Y, ρ)``:
    ``[..., irreps_sh.dim]`` and ``[..., num_basis]``.

    >>> from equidyn.nn import GaussianBasis
    >>> emb = EdgeEmbedding(2, GaussianBasis(0.0, 5.0, 8))
    >>> [t.shape for t in emb(torch.randn(4, 6, 3))]
    [torch.Size([4, 6, 9]), torch.Size([4, 6, 8])]
    """

    def __init__(self, l_max: int, basis: nn.Module, cutoff: nn.Module | None = None) -> None:
        super().__init__()
        if isinstance(l_max, bool) or not isinstance(l_max, int) or l_max < 0:
            raise ValueError(f"l_max must be an int >= 0, got {l_max!r}")
        self.l_max = l_max
        self.irreps_sh = Irreps.spherical_harmonics(l_max)
        self.basis = basis
        self.cutoff = cutoff
        num_basis = getattr(basis, "num_basis", None)
        if not isinstance(num_basis, int):
            raise TypeError(f"basis must have an int attribute num_basis, got {basis!r}")
        self.num_basis = num_basis

    @classmethod
    def bessel(
        cls, l_max: int, r_max: float, num_basis: int, polynomial_p: int, trainable: bool = False
    ) -> EdgeEmbedding:
        """The embedding of the interatomic potentials: ``num_basis`` Bessel functions (learned
        frequencies if ``trainable``) times the polynomial cutoff of exponent ``polynomial_p``.

        >>> EdgeEmbedding.bessel(2, r_max=4.0, num_basis=8, polynomial_p=6).num_basis
        8
        """
        basis = BesselBasis(r_max, num_basis, trainable=trainable)
        return cls(l_max, basis, PolynomialCutoff(r_max, polynomial_p))

    def forward(self, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        sh = spherical_harmonics(
            list(range(self.l_max + 1)), edge_vec, normalize=True, normalization="component"
        )  # [..., irreps_sh.dim]
        r = (edge_vec * edge_vec).sum(-1).clamp(min=1e-12).sqrt()  # [...]
        radial = self.basis(r)  # [..., num_basis]
        if self.cutoff is not None:
            radial = radial * self.cutoff(r)[..., None]
        return sh, radial

    def extra_repr(self) -> str:
        return f"l_max={self.l_max}"


class RadialWeightedConvolution(nn.Module):
    r"""Neighbour sum of channelwise tensor products weighted by a radial MLP (module docstring).

    Args:
        irreps_in: features of the neighbours :math:`x_j`.
        irreps_sh: spherical harmonics of the edges.
        filter_ir_out: the output irreps to keep (``[ir for _, ir in target]``).
        radial_dims: input size of the radial MLP (the radial features) followed by its hidden
            widths; its output, one weight per path and channel, is added. SiLU activations.
        num_filters: independent weight sets (``> 1``: e.g. the keys and values of attention),
            stacked on a leading dimension of :meth:`edge_messages`.

    Attributes:
        tp: the :class:`~equidyn.o3.ChannelwiseTensorProduct` (mode ``uvu``, external weights).
        radial: the :class:`~equidyn.nn.MLP` :math:`R`.
        irreps_out: irreps of the messages.
        edge_chunk: ``None`` (default) or the number of edges per chunk of :meth:`forward`:
            the per-edge weights and messages, the largest tensors of a large system, then
            exist for one chunk at a time, and under autograd each chunk is recomputed in the
            backward pass instead of kept (:func:`torch.utils.checkpoint.checkpoint`), so the
            memory of a force call falls by about half for some extra forward time. The sum is
            the same up to summation order. Set it on a whole model with
            :func:`set_edge_chunk`.

    >>> conv = RadialWeightedConvolution("4x0e + 2x1o", "1x0e + 1x1o", ["0e", "1o"], [5, 8])
    >>> conv.irreps_out
    4x0e+2x0e+4x1o+2x1o
    >>> conv.edge_messages(torch.randn(10, 10), torch.randn(10, 4), torch.randn(10, 5)).shape
    torch.Size([10, 24])
    """

    def __init__(
        self,
        irreps_in: Irreps | str,
        irreps_sh: Irreps | str,
        filter_ir_out: Sequence[Irrep | str],
        radial_dims: Sequence[int],
        *,
        num_filters: int = 1,
    ) -> None:
        super().__init__()
        if isinstance(num_filters, bool) or not isinstance(num_filters, int) or num_filters < 1:
            raise ValueError(f"num_filters must be an int >= 1, got {num_filters!r}")
        self.tp = ChannelwiseTensorProduct(
            irreps_in, irreps_sh, list(filter_ir_out), internal_weights=False
        )
        self.irreps_in, self.irreps_sh = self.tp.irreps_in1, self.tp.irreps_in2
        self.irreps_out = self.tp.irreps_out
        self.num_filters = num_filters
        self.radial = MLP(
            [*radial_dims, num_filters * self.tp.weight_numel], torch.nn.functional.silu
        )
        self.edge_chunk: int | None = None

    def edge_messages(self, x_j: Tensor, sh: Tensor, radial: Tensor) -> Tensor:
        r""":math:`x_j \otimes_{R(\rho_{ij})} Y_{ij}` per edge: ``x_j`` ``[..., irreps_in.dim]``,
        ``sh`` ``[..., irreps_sh.dim]``, ``radial`` ``[..., radial_dims[0]]`` (broadcasting)
        → ``[..., irreps_out.dim]`` (``[num_filters, ..., irreps_out.dim]`` if
        ``num_filters > 1``)."""
        w = self.radial(radial)  # [..., num_filters * weight_numel]
        if self.num_filters > 1:
            w = w.unflatten(-1, (self.num_filters, self.tp.weight_numel)).movedim(-2, 0)
        return self.tp(x_j, sh, w)

    def forward(
        self, x: Tensor, edge_index: Tensor, sh: Tensor, radial: Tensor, norm: float = 1.0
    ) -> Tensor:
        """``norm`` times the sum over the edges ``j = edge_index[1] → i = edge_index[0]`` of
        the messages: ``x`` ``[n_nodes, irreps_in.dim]``, ``edge_index`` ``[2, n_edges]``,
        ``sh`` ``[n_edges, irreps_sh.dim]``, ``radial`` ``[n_edges, radial_dims[0]]`` →
        ``[n_nodes, irreps_out.dim]`` (zeros where a node has no neighbour)."""
        if self.num_filters != 1:
            raise ValueError(f"forward sums one filter; this one has {self.num_filters}")
        if edge_index.shape[1] == 0:  # no neighbours anywhere (e.g. one isolated atom)
            return x.new_zeros(x.shape[0], self.irreps_out.dim)
        chunk = self.edge_chunk
        if chunk is None or edge_index.shape[1] <= chunk:
            return self._edge_sum(x, edge_index, sh, radial) * norm
        out = x.new_zeros(x.shape[0], self.irreps_out.dim)
        recompute = torch.is_grad_enabled()
        for start in range(0, edge_index.shape[1], chunk):
            part = (edge_index[:, start : start + chunk], sh[start : start + chunk],
                    radial[start : start + chunk])  # fmt: skip
            if recompute:
                out = out + torch.utils.checkpoint.checkpoint(
                    self._edge_sum, x, *part, use_reentrant=False
                )
            else:
                out = out + self._edge_sum(x, *part)
        return out * norm

    def _edge_sum(self, x: Tensor, edge_index: Tensor, sh: Tensor, radial: Tensor) -> Tensor:
        """The messages of these edges summed on their receivers: ``[n_nodes, irreps_out.dim]``."""
        messages = self.edge_messages(x.index_select(0, edge_index[1]), sh, radial)
        # [n_edges, irreps_out.dim]
        return scatter_sum(messages, edge_index[0], x.shape[0])


def set_edge_chunk(module: nn.Module, edges: int | None) -> int:
    """Process the convolutions of ``module`` in chunks of ``edges`` edges (``None``: at once).

    Sets :attr:`RadialWeightedConvolution.edge_chunk` on every convolution inside ``module``
    (NequIP, MACE, ... and any :class:`~equidyn.models.potential.Potential` around them) and
    returns how many it set. Results are unchanged up to summation order; the peak memory of
    a large system's energy-and-forces call falls by about half (see the large-systems guide).

    >>> conv = RadialWeightedConvolution("2x0e", "1x0e + 1x1o", ["0e", "1o"], [4, 8])
    >>> set_edge_chunk(conv, 1000), conv.edge_chunk
    (1, 1000)
    >>> set_edge_chunk(conv, 0)
    Traceback (most recent call last):
    ...
    ValueError: edges per chunk must be a positive int or None, got 0
    """
    if edges is not None and (isinstance(edges, bool) or not isinstance(edges, int) or edges < 1):
        raise ValueError(f"edges per chunk must be a positive int or None, got {edges!r}")
    convs = [m for m in module.modules() if isinstance(m, RadialWeightedConvolution)]
    for conv in convs:
        conv.edge_chunk = edges
    return len(convs)


class SavedKeyPrefixes:
    """State-dict hooks that save and load some submodules under the keys of an older layout.

    ``SavedKeyPrefixes({"conv.radial.": "radial."}).attach(module)`` makes
    ``module.state_dict()`` write ``...conv.radial.X`` as ``...radial.X`` and
    ``module.load_state_dict`` read ``...radial.X`` into ``...conv.radial.X``, so that model
    files written before the shared blocks existed load strictly and are written unchanged.

    >>> class Old(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.radial = nn.Linear(2, 2)
    >>> class New(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv = nn.Module()
    ...         self.conv.radial = nn.Linear(2, 2)
    ...         SavedKeyPrefixes({"conv.radial.": "radial."}).attach(self)
    >>> sorted(New().state_dict()) == sorted(Old().state_dict())
    True
    >>> New().load_state_dict(Old().state_dict(), strict=True)
    <All keys matched successfully>
    """

    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefixes = dict(prefixes)  # current prefix -> saved prefix

    def attach(self, module: nn.Module) -> None:
        module._register_state_dict_hook(self.save)
        module._register_load_state_dict_pre_hook(self.load)

    @staticmethod
    def _rename(state: dict[str, Tensor], prefix: str, table: dict[str, str]) -> None:
        items = list(state.items())
        state.clear()
        for key, value in items:
            rest = key[len(prefix) :] if key.startswith(prefix) else None
            for src, dst in table.items():
                if rest is not None and rest.startswith(src):
                    key = prefix + dst + rest[len(src) :]
                    break
            state[key] = value

    def save(self, module: nn.Module, state: dict[str, Tensor], prefix: str, *_: object) -> None:
        self._rename(state, prefix, self.prefixes)

    def load(self, state: dict[str, Tensor], prefix: str, *_: object) -> None:
        self._rename(state, prefix, {v: k for k, v in self.prefixes.items()})
