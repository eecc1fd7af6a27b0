r"""Edge frames and SO(2) convolutions (Passaro & Zitnick 2023, eSCN).

**Why.** A convolution against the spherical harmonics of an edge,
:math:`x \otimes_w Y(\hat r)`, costs :math:`O(L^6)` with dense Clebsch–Gordan tensors
(:math:`O(L^5)` sparse). Rotate the features into a frame where the edge lies on the polar
axis :math:`e_y`: there :math:`Y^{l_2}_{m_2}(e_y) = c_{l_2}\,\delta_{m_2 0}`, so only the
coefficients :math:`C^{l_1 l_2 l_3}_{m_1 0 m_3}` survive, and they couple :math:`m_1` with
:math:`m_3 = \pm m_1` only. What is left is, for every :math:`m \ge 0`, a map of the pair
:math:`(x_{+m}, x_{-m})` of every input block into the pair of every output block that commutes
with rotations about :math:`e_y` — the **SO(2) convolution**

.. math::

    y_{+m} = a_m x_{+m} - b_m x_{-m}, \qquad y_{-m} = b_m x_{+m} + a_m x_{-m},
    \qquad y_0 = a_0 x_0,

(a rotation by :math:`t` about :math:`e_y` acts on :math:`(x_{+m}, x_{-m})` as the rotation
matrix of angle :math:`mt` in e3nn's real basis, so these are all the maps commuting with it).
Each of :math:`O(L^2)` block pairs has :math:`O(L)` coefficients: :math:`O(L^3)` in all.
Rotating back gives the convolution in the global frame,

.. math::

    \mathrm{conv}(x, \vec r) = D(R_{\vec r})\, \mathrm{SO2}\big(D(R_{\vec r})^\top x\big),
    \qquad R_{\vec r}\, e_y = \hat r,

which is independent of the roll of the frame about :math:`\hat r` (SO(2) maps commute with
it) and so is a function of :math:`\vec r` only.

**Parity.** Under O(3) a coefficient between input block :math:`(l_1, p_1)` and output block
:math:`(l_3, p_3)` comes from harmonics of parity :math:`(-1)^{l_2} = p_1 p_3`; if
:math:`p_1 p_3 (-1)^{l_1 + l_3} = +1` only even :math:`l_1 + l_2 + l_3` contribute and the
coefficient is a pure :math:`a_m` ("A-type", :math:`m = 0 \dots`), otherwise only odd ones and
it is a pure :math:`b_m` ("B-type", :math:`m \ge 1`). Keeping to that pattern makes the maps
equivariant under reflections too.

**Truncation.** Keeping only :math:`m \le m_{\max} < L` (eSCN's :math:`m_{\max} = 2` at
:math:`L = 6`) is still exactly equivariant: every :math:`m` is its own SO(2) representation.

**The identity with the tensor product.** With :math:`m_{\max} = L` the channelwise
:class:`SO2Convolution` equals :class:`~equidyn.o3.ChannelwiseTensorProduct` of the features
with :math:`Y(\hat r)` after summing, for each input block and output irrep, the product's
blocks over :math:`l_2`, when its weights are

.. math::

    a_m = \sum_{l_2} w_{l_1 l_2 l_3}\, \alpha_{l_1 l_2 l_3}\, c_{l_2}\,
    C^{l_1 l_2 l_3}_{+m, 0, +m}, \qquad
    b_m = \sum_{l_2} w_{l_1 l_2 l_3}\, \alpha_{l_1 l_2 l_3}\, c_{l_2}\,
    C^{l_1 l_2 l_3}_{+m, 0, -m}

(:math:`\alpha` the product's normalization, :math:`C` :func:`~equidyn.o3.wigner_3j` in the
real basis, indices :math:`l \pm m`); :meth:`SO2Convolution.weights_from_tensor_product` builds
this linear map and the tests check the identity in float64 to 1e-12.

**Edge frames.** :func:`edge_frame` builds :math:`R_{\vec r}` as the shortest rotation from
:math:`e_y` to :math:`\hat r` for :math:`\hat r_y \ge 0` and from :math:`-e_y` (composed with
the half turn about :math:`x`) otherwise, so it is finite and differentiable everywhere —
edges on :math:`\pm e_y` included, with no Euler-angle gimbal lock; a zero-length edge gets the
identity frame (finite values and zero direction gradients; it has no direction to be
equivariant to). :func:`edge_wigner_D` then gives :math:`D^l(R_{\vec r})` for all
:math:`l \le L` from one stable angle extraction.

>>> import torch
>>> from equidyn import o3
>>> vec = torch.randn(5, 3, dtype=torch.float64)
>>> R = o3.edge_frame(vec)
>>> torch.allclose(R[:, :, 1], vec / vec.norm(dim=-1, keepdim=True))
True
>>> conv = o3.SO2Convolution("4x0e + 4x1o + 4x2e", ["0e", "1o", "2e"])
>>> conv.irreps_out
4x0e+4x0e+4x0e+4x1o+4x1o+4x1o+4x2e+4x2e+4x2e
>>> conv(torch.randn(5, 36, dtype=torch.float64), vec,
...      torch.randn(5, conv.weight_numel, dtype=torch.float64)).shape
torch.Size([5, 108])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from equidyn.o3.irreps import Irrep, Irreps
from equidyn.o3.spherical_harmonics import spherical_harmonics
from equidyn.o3.tensor_product import TensorProduct
from equidyn.o3.wigner import _stable_angles, _wigner_D_stable

__all__ = [
    "edge_frame",
    "edge_wigner_D",
    "rotate_to_edge_frame",
    "rotate_from_edge_frame",
    "SO2Convolution",
    "SO2Linear",
]


# ---------------------------------------------------------------------------------------------
# edge frames
# ---------------------------------------------------------------------------------------------


def _skew(v: Tensor) -> Tensor:
    """[v]_x of shape (..., 3, 3)."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack(
        [torch.stack([o, -z, y], -1), torch.stack([z, o, -x], -1), torch.stack([-y, x, o], -1)],
        -2,
    )


def _shortest_rotation(v: Tensor, c: Tensor) -> Tensor:
    """I + [v] + [v]^2 / (1 + c): the rotation taking a to n for v = a x n, c = a . n > -1."""
    K = _skew(v)
    eye = torch.eye(3, dtype=v.dtype, device=v.device)
    return eye + K + (K @ K) / (1 + c)[..., None, None]


def _check_vectors(vec: Tensor, name: str) -> None:
    if not isinstance(vec, Tensor):
        raise TypeError(f"{name} must be a tensor of shape (..., 3), got {type(vec).__name__}")
    if vec.ndim < 1 or vec.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (..., 3), got {tuple(vec.shape)}")
    if not vec.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {vec.dtype}")


def edge_frame(vec: Tensor) -> Tensor:
    r"""A proper rotation :math:`R` with :math:`R\, e_y = \hat r` for every vector,
    ``(..., 3)`` → ``(..., 3, 3)``.

    For :math:`\hat r_y \ge 0`: :math:`R = I + [v]_\times + [v]_\times^2 / (1 + c)` with
    :math:`v = e_y \times \hat r`, :math:`c = \hat r_y \ge 0`; otherwise the same construction
    from :math:`-e_y` times :math:`X(\pi) = \mathrm{diag}(1, -1, -1)`. Each branch is evaluated
    only where it is well conditioned (:math:`1 + c \ge 1`), so values and derivatives of every
    order are finite everywhere, including :math:`\hat r = \pm e_y`. A zero vector gets
    :math:`R = I`. The roll of the frame about :math:`\hat r` is arbitrary; SO(2)-equivariant
    maps in the frame do not depend on it.

    >>> R = edge_frame(torch.tensor([[0.0, -2.0, 0.0], [1.0, 0.0, 0.0]]))
    >>> R[:, :, 1] + 0.0
    tensor([[ 0., -1.,  0.],
            [ 1.,  0.,  0.]])
    >>> torch.linalg.det(R)
    tensor([1., 1.])
    """
    _check_vectors(vec, "edge_frame: vec")
    e_y = torch.tensor([0.0, 1.0, 0.0], dtype=vec.dtype, device=vec.device)
    r2 = (vec * vec).sum(-1, keepdim=True)  # (..., 1)
    safe = torch.where(r2 > 0, vec, e_y)
    n = safe * torch.rsqrt((safe * safe).sum(-1, keepdim=True))  # (..., 3) unit
    up = n[..., 1:2] >= 0  # (..., 1)
    n1 = torch.where(up, n, e_y)  # rotate from +e_y (c = n_y >= 0)
    v1 = torch.stack([n1[..., 2], torch.zeros_like(n1[..., 0]), -n1[..., 0]], -1)  # e_y x n
    R1 = _shortest_rotation(v1, n1[..., 1])
    n2 = torch.where(up, -e_y, n)  # rotate from -e_y (c = -n_y > 0), then e_y -> -e_y
    v2 = torch.stack([-n2[..., 2], torch.zeros_like(n2[..., 0]), n2[..., 0]], -1)  # -e_y x n
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=vec.dtype, device=vec.device)
    R2 = _shortest_rotation(v2, -n2[..., 1]) * flip  # columns scaled: R' @ diag(1, -1, -1)
    return torch.where(up[..., None], R1, R2)  # (..., 3, 3)


def edge_wigner_D(vec: Tensor, l_max: int) -> list[Tensor]:
    r""":math:`D^l(R_{\vec r})` of the :func:`edge_frame` of every vector for
    :math:`l = 0 \dots l_{\max}`: a list of tensors ``(..., 2l+1, 2l+1)``.

    The Euler angles of all frames are extracted once (the stable extraction of
    :func:`~equidyn.o3.wigner_D`) and shared by every :math:`l`; differentiable everywhere.

    >>> D = edge_wigner_D(torch.randn(4, 3), 2)
    >>> [tuple(d.shape) for d in D]
    [(4, 1, 1), (4, 3, 3), (4, 5, 5)]
    """
    if isinstance(l_max, bool) or not isinstance(l_max, int) or l_max < 0:
        raise ValueError(f"edge_wigner_D: l_max must be an int >= 0, got {l_max!r}")
    R = edge_frame(vec)  # (..., 3, 3)
    angles = _stable_angles(R) if l_max > 1 else None
    return [_wigner_D_stable(l, R, angles) for l in range(l_max + 1)]


def _rotate(x: Tensor, irreps: Irreps, wigner: Sequence[Tensor], transpose: bool) -> Tensor:
    if x.shape[-1] != irreps.dim:
        raise ValueError(
            f"features of irreps {irreps} need last dimension {irreps.dim}, got {tuple(x.shape)}"
        )
    if irreps.dim and irreps.lmax >= len(wigner):
        raise ValueError(
            f"irreps {irreps} need Wigner matrices up to l = {irreps.lmax}, got "
            f"{len(wigner)} (l = 0 .. {len(wigner) - 1}): call edge_wigner_D(vec, {irreps.lmax})"
        )
    if not irreps.dim:
        return x
    # one batched product per run of consecutive blocks of equal l (sorted irreps: one per l);
    # split, not slicing, so the backward pass concatenates instead of zero-filling per block
    runs: list[list[int]] = []  # [l, total multiplicity]
    for mul, ir in irreps:
        if runs and runs[-1][0] == ir.l:
            runs[-1][1] += mul
        else:
            runs.append([ir.l, mul])
    chunks = x.split([mul * (2 * l + 1) for l, mul in runs], dim=-1)
    parts = []
    for (l, mul), chunk in zip(runs, chunks):
        D = wigner[l]  # (..., n, n)
        if transpose:
            D = D.transpose(-1, -2)
        rotated = chunk.unflatten(-1, (mul, 2 * l + 1)) @ D  # rows of D^T x, i.e. x^T D
        parts.append(rotated.flatten(-2))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)  # (..., irreps.dim)


def rotate_to_edge_frame(x: Tensor, irreps: Irreps | str, wigner: Sequence[Tensor]) -> Tensor:
    r"""Features in the edge frames, :math:`x' = D(R_{\vec r})^\top x` block by block:
    ``x`` ``(..., irreps.dim)`` and ``wigner`` from :func:`edge_wigner_D` →
    ``(..., irreps.dim)``. The edge direction becomes :math:`e_y`.

    >>> vec = torch.randn(3, 3)
    >>> v = rotate_to_edge_frame(vec, "1x1o", edge_wigner_D(vec, 1))
    >>> torch.allclose(v[:, [0, 2]], torch.zeros(3, 2), atol=1e-6)
    True
    """
    return _rotate(x, Irreps(irreps), wigner, transpose=False)


def rotate_from_edge_frame(x: Tensor, irreps: Irreps | str, wigner: Sequence[Tensor]) -> Tensor:
    r"""The inverse of :func:`rotate_to_edge_frame`: :math:`x = D(R_{\vec r})\, x'`,
    ``(..., irreps.dim)`` → ``(..., irreps.dim)``.

    >>> vec, x = torch.randn(3, 3), torch.randn(3, 9)
    >>> D = edge_wigner_D(vec, 2)
    >>> back = rotate_from_edge_frame(rotate_to_edge_frame(x, "1x0e+1x1o+2e", D), "1x0e+1x1o+2e", D)
    >>> torch.allclose(back, x, atol=1e-5)
    True
    """
    return _rotate(x, Irreps(irreps), wigner, transpose=True)


# ---------------------------------------------------------------------------------------------
# SO(2) maps in the edge frame
# ---------------------------------------------------------------------------------------------


def _a_type(ir1: Irrep, ir3: Irrep) -> bool:
    """Whether block pair (ir1 -> ir3) has cos-like (a_m) rather than sin-like (b_m)
    coefficients (see the module docstring: parity of l1 + l2 + l3)."""
    return ir1.p * ir3.p * (-1) ** (ir1.l + ir3.l) == 1


def _m_range(ir1: Irrep, ir3: Irrep, m_max: int) -> range:
    top = min(ir1.l, ir3.l, m_max)
    return range(0, top + 1) if _a_type(ir1, ir3) else range(1, top + 1)


def _component(irreps: Irreps, block: int, u: int, m: int) -> int:
    """Index of component m of channel u of a block in the flat layout."""
    ir = irreps[block].ir
    return irreps.slices()[block].start + u * ir.dim + ir.l + m


def _check_m_max(m_max: int | None, lmax: int) -> int:
    if m_max is None:
        return lmax
    if isinstance(m_max, bool) or not isinstance(m_max, int) or m_max < 0:
        raise ValueError(f"m_max must be an int >= 0 or None (= the largest l), got {m_max!r}")
    return m_max


def _inverse_gather(positions: list[int], dim: int) -> Tensor:
    """Index that gathers an output of length ``dim`` from ``cat([values, 0])`` where
    ``values[k]`` belongs at ``positions[k]`` (uncovered positions read the trailing zero)."""
    inv = torch.full((dim,), len(positions), dtype=torch.long)
    inv[torch.tensor(positions, dtype=torch.long)] = torch.arange(len(positions))
    return inv


class SO2Convolution(nn.Module):
    r"""The channelwise ("uvu") convolution of features with the edge direction through the
    edge frame: ``conv(x, edge_vec, weight)`` :math:`= D\,\mathrm{SO2}_w(D^\top x)` (module
    docstring). Per edge and channel the SO(2) maps cost :math:`O(L^3)` (the sparse tensor
    product: :math:`O(L^5)`); rotating the :math:`O(L^2)` output blocks (one per input block
    and output irrep) back out of the frame costs :math:`O(L^4)`, which dominates at large
    :math:`L` (``benchmarks/so2_scaling.py``; :class:`SO2Linear` mixes channels in the frame
    first, as eSCN does, and rotates back only its own output).

    Every block :math:`(U \times l_1)` of ``irreps_in`` gives one output block
    :math:`U \times l_3` for every irrep of ``filter_ir_out`` (channel :math:`u` keeps its
    identity); a block pair has the coefficients :math:`a_m`, :math:`m = 0 \dots
    \min(l_1, l_3, m_{\max})` or :math:`b_m`, :math:`m = 1 \dots` (parity rule of the module
    docstring; B-type pairs with no :math:`m \ge 1` are left out). Output blocks are sorted by
    :math:`(l, p)` (stable), as :class:`~equidyn.o3.ChannelwiseTensorProduct` sorts its paths.

    Args:
        irreps_in: features :math:`x` (of the neighbours).
        filter_ir_out: the output irreps wanted (``None``: every irrep of ``irreps_in``).
        m_max: the largest :math:`m` kept (``None``: :math:`L`, the exact convolution).
        internal_weights: one shared weight vector (parameter ``.weight``) instead of
            per-edge weights given to :meth:`forward`.

    ``weight`` has shape ``(..., weight_numel)``: for each output block, channel-major, its
    coefficients in increasing :math:`m`. :meth:`forward` takes ``x`` ``(n_edges,
    irreps_in.dim)``, ``edge_vec`` ``(n_edges, 3)`` (or precomputed ``wigner`` from
    :func:`edge_wigner_D`) and returns ``(n_edges, irreps_out.dim)``; :meth:`frame_forward`
    is the map in the frame alone.
    """

    _src: Tensor
    _widx: Tensor
    _sign: Tensor
    _gather: Tensor

    def __init__(
        self,
        irreps_in: Irreps | str,
        filter_ir_out: Iterable[Any] | None = None,
        m_max: int | None = None,
        internal_weights: bool = False,
    ) -> None:
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        wanted = (
            [ir for _, ir in self.irreps_in]
            if filter_ir_out is None
            else [Irrep(ir) for ir in filter_ir_out]
        )
        wanted = list(dict.fromkeys(wanted))
        self.m_max = _check_m_max(m_max, max([self.irreps_in.lmax, *(ir.l for ir in wanted)]))
        blocks = []  # (input block, output irrep)
        for b1, (_, ir1) in enumerate(self.irreps_in):
            for ir3 in wanted:
                if len(_m_range(ir1, ir3, self.m_max)):
                    blocks.append((b1, ir3))
        blocks.sort(key=lambda b: b[1])  # stable
        self.blocks: tuple[tuple[int, Irrep], ...] = tuple(blocks)
        self.irreps_out = Irreps([(self.irreps_in[b1].mul, ir3) for b1, ir3 in blocks])
        # per coefficient entry: sources, signs and destinations of y_{+m} and y_{-m}
        src_p, sgn_p, dst_p, w_p = [], [], [], []
        offsets, numel = [], 0
        for o, (b1, ir3) in enumerate(blocks):
            ir1 = self.irreps_in[b1].ir
            ms = _m_range(ir1, ir3, self.m_max)
            offsets.append(numel)
            a_type = _a_type(ir1, ir3)
            for u in range(self.irreps_in[b1].mul):
                for k, m in enumerate(ms):
                    w = numel + u * len(ms) + k
                    xp = _component(self.irreps_in, b1, u, m)
                    xm = _component(self.irreps_in, b1, u, -m)
                    yp = _component(self.irreps_out, o, u, m)
                    ym = _component(self.irreps_out, o, u, -m)
                    if a_type:  # y+ = a x+, y- = a x-
                        entries = [(xp, 1.0, yp)] + ([(xm, 1.0, ym)] if m else [])
                    else:  # y+ = -b x-, y- = b x+
                        entries = [(xm, -1.0, yp), (xp, 1.0, ym)]
                    for s, g, d in entries:
                        src_p.append(s)
                        sgn_p.append(g)
                        dst_p.append(d)
                        w_p.append(w)
            numel += self.irreps_in[b1].mul * len(ms)
        self.weight_numel = numel
        self._offsets = tuple(offsets)
        self.register_buffer("_src", torch.tensor(src_p, dtype=torch.long), persistent=False)
        self.register_buffer("_widx", torch.tensor(w_p, dtype=torch.long), persistent=False)
        self.register_buffer(
            "_sign", torch.tensor(sgn_p, dtype=torch.get_default_dtype()), persistent=False
        )
        self.register_buffer(
            "_gather", _inverse_gather(dst_p, self.irreps_out.dim), persistent=False
        )
        self.internal_weights = internal_weights
        if internal_weights:
            self.weight = nn.Parameter(torch.randn(numel))

    def frame_forward(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """The SO(2) map on features already in the edge frames: ``x`` ``(..., irreps_in.dim)``,
        ``weight`` ``(..., weight_numel)`` → ``(..., irreps_out.dim)``."""
        if x.shape[-1] != self.irreps_in.dim:
            raise ValueError(
                f"SO2Convolution: x must have last dimension {self.irreps_in.dim} "
                f"({self.irreps_in}), got {tuple(x.shape)}"
            )
        if weight is None:
            if not self.internal_weights:
                raise ValueError("SO2Convolution has external weights: pass weight")
            weight = self.weight
        elif self.internal_weights:
            raise ValueError("SO2Convolution has internal weights: do not pass weight")
        if weight.shape[-1] != self.weight_numel:
            raise ValueError(
                f"SO2Convolution: weight must have last dimension {self.weight_numel}, got "
                f"{tuple(weight.shape)}"
            )
        vals = x.index_select(-1, self._src) * weight.index_select(-1, self._widx) * self._sign
        vals = torch.cat([vals, vals.new_zeros(vals.shape[:-1] + (1,))], dim=-1)
        return vals.index_select(-1, self._gather)  # (..., irreps_out.dim)

    def forward(
        self,
        x: Tensor,
        edge_vec: Tensor | None = None,
        weight: Tensor | None = None,
        *,
        wigner: Sequence[Tensor] | None = None,
    ) -> Tensor:
        """``D SO2(D^T x)``: ``x`` ``(n_edges, irreps_in.dim)``, ``edge_vec`` ``(n_edges, 3)``
        or ``wigner`` (:func:`edge_wigner_D` up to the largest ``l`` of input and output),
        ``weight`` ``(n_edges, weight_numel)`` or ``(weight_numel,)`` → ``(n_edges,
        irreps_out.dim)``."""
        if wigner is None:
            if edge_vec is None:
                raise ValueError("SO2Convolution.forward needs edge_vec or wigner")
            wigner = edge_wigner_D(edge_vec, max(self.irreps_in.lmax, self.irreps_out.lmax))
        x = rotate_to_edge_frame(x, self.irreps_in, wigner)  # (n_edges, irreps_in.dim)
        y = self.frame_forward(x, weight)  # (n_edges, irreps_out.dim)
        return rotate_from_edge_frame(y, self.irreps_out, wigner)

    def weights_from_tensor_product(
        self, tp: TensorProduct, normalization: str = "component"
    ) -> Tensor:
        r"""The linear map :math:`T` (float64, ``(tp.weight_numel, weight_numel)``) with
        ``conv(x, r, w @ T) == S tp(x, Y(r), w)``, where ``tp`` is a channelwise ("uvu")
        product of ``irreps_in`` with spherical harmonics ``1x0e+1x1o+...`` (each
        :math:`l` once, ``normalization`` as used for ``Y``) and :math:`S` sums, for each
        input block and output irrep, the product's output blocks (over :math:`l_2`). The
        formula is in the module docstring; it needs ``m_max = L``.
        """
        if tp.irreps_in1 != self.irreps_in:
            raise ValueError(
                f"tp.irreps_in1 is {tp.irreps_in1}, this convolution's {self.irreps_in}"
            )
        e_y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
        index = {blk: o for o, blk in enumerate(self.blocks)}
        T = torch.zeros(tp.weight_numel, self.weight_numel, dtype=torch.float64)
        layout = tp._weight_layout()
        for i, p in enumerate(tp.paths):
            if p.mode != "uvu" or tp.irreps_in2[p.in2].mul != 1:
                raise ValueError(f"tp path {p} is not a channelwise path against one harmonic")
            ir1, ir2, ir3 = (
                tp.irreps_in1[p.in1].ir,
                tp.irreps_in2[p.in2].ir,
                tp.irreps_out[p.out].ir,
            )
            if ir2.p != (-1) ** ir2.l:
                raise ValueError(f"tp input 2 block {ir2} is not a spherical harmonic")
            o = index.get((p.in1, ir3))
            if o is None:
                raise ValueError(f"tp path {p} writes {ir3}, which this convolution does not make")
            ms = _m_range(ir1, ir3, self.m_max)
            if min(ir1.l, ir3.l) > self.m_max:
                raise ValueError(
                    f"the identity needs m_max >= {min(ir1.l, ir3.l)}, got {self.m_max}"
                )
            c = spherical_harmonics(ir2.l, e_y, normalize=True, normalization=normalization)[ir2.l]
            G = tp._cg(i)[:, ir2.l, :] * c  # (2l1+1, 2l3+1): the frame map of path i
            l1, l3 = ir1.l, ir3.l
            for u in range(self.irreps_in[p.in1].mul):
                row = layout.offsets[i] + u  # uvu weight shape (mul1, 1)
                for k, m in enumerate(ms):
                    coef = G[l1 + m, l3 + m] if _a_type(ir1, ir3) else G[l1 + m, l3 - m]
                    T[row, self._offsets[o] + u * len(ms) + k] += coef
        return T

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, m_max={self.m_max}"


class SO2Linear(nn.Module):
    r"""eSCN's SO(2) convolution in the edge frame: for every :math:`m \le m_{\max}` a dense
    map of all input channels and blocks with :math:`l_1 \ge m` to all output channels and
    blocks with :math:`l_3 \ge m` ("uvw", shared weights),

    .. math::

        \begin{pmatrix} y_{+m} \\ y_{-m} \end{pmatrix} =
        \begin{pmatrix} A_m & -B_m \\ B_m & A_m \end{pmatrix}
        \begin{pmatrix} s_m \odot x_{+m} \\ s_m \odot x_{-m} \end{pmatrix},

    with :math:`A_m` on the A-type and :math:`B_m` on the B-type block pairs (module docstring;
    :math:`B_0 = 0`) and an optional per-edge scale :math:`s_m` of every input channel and
    block at each :math:`m` (the radial modulation of eSCN: a function of the edge length, the
    same for :math:`\pm m`, so still SO(2)-equivariant). Components with :math:`m > m_{\max}`
    are dropped. Weights are unit normal, scaled by :math:`1/\sqrt{\text{fan-in}}` of each
    output component: unit-variance outputs for unit-variance inputs. Cost per edge
    :math:`\sum_m 4 K_{\text{in}}(m) K_{\text{out}}(m) = O(C^2 L^3)`.

    ``forward(x, scale=None)``: ``x`` ``(..., irreps_in.dim)`` in the edge frame, ``scale``
    ``(..., num_scales)`` → ``(..., irreps_out.dim)``.

    >>> lin = SO2Linear("8x0e + 8x1o + 8x2e", "4x0e + 4x1o + 4x2e", m_max=1)
    >>> lin(torch.randn(3, 72), torch.randn(3, lin.num_scales)).shape
    torch.Size([3, 36])
    >>> lin.num_scales
    40
    """

    _gather: Tensor

    def __init__(
        self, irreps_in: Irreps | str, irreps_out: Irreps | str, m_max: int | None = None
    ) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = Irreps(irreps_in), Irreps(irreps_out)
        self.m_max = _check_m_max(m_max, max(self.irreps_in.lmax, self.irreps_out.lmax))
        self.weights = nn.ParameterList()
        positions: list[int] = []
        num_scales = 0
        for m in range(self.m_max + 1):
            ins = [
                (b, u)
                for b, (mul, ir) in enumerate(self.irreps_in)
                if ir.l >= m
                for u in range(mul)
            ]
            outs = [
                (b, u)
                for b, (mul, ir) in enumerate(self.irreps_out)
                if ir.l >= m
                for u in range(mul)
            ]
            rows, cols, src, sign = [], [], [], []
            n = 0
            ki, ko = len(ins), len(outs)
            for i, (b1, _) in enumerate(ins):
                ir1 = self.irreps_in[b1].ir
                for j, (b3, _) in enumerate(outs):
                    if _a_type(ir1, self.irreps_out[b3].ir):
                        entries = [(i, j, 1.0)] + ([(ki + i, ko + j, 1.0)] if m else [])
                    elif m:
                        entries = [(ki + i, j, -1.0), (i, ko + j, 1.0)]
                    else:
                        continue
                    for r, c, g in entries:
                        rows.append(r)
                        cols.append(c)
                        src.append(n)
                        sign.append(g)
                    n += 1
            size = (ki * (2 if m else 1), ko * (2 if m else 1))
            fan = torch.zeros(size[1])
            fan.index_add_(0, torch.tensor(cols, dtype=torch.long), torch.ones(len(cols)))
            norm = torch.where(fan > 0, fan, torch.ones_like(fan)).rsqrt()
            self.weights.append(nn.Parameter(torch.randn(n)))
            dt = torch.get_default_dtype()
            self.register_buffer(
                f"_rows{m}", torch.tensor(rows, dtype=torch.long), persistent=False
            )
            self.register_buffer(
                f"_cols{m}", torch.tensor(cols, dtype=torch.long), persistent=False
            )
            self.register_buffer(f"_src{m}", torch.tensor(src, dtype=torch.long), persistent=False)
            self.register_buffer(f"_sign{m}", torch.tensor(sign, dtype=dt), persistent=False)
            self.register_buffer(f"_norm{m}", norm.to(dt), persistent=False)
            x_idx = [_component(self.irreps_in, b, u, m) for b, u in ins]
            if m:
                x_idx += [_component(self.irreps_in, b, u, -m) for b, u in ins]
            self.register_buffer(f"_x{m}", torch.tensor(x_idx, dtype=torch.long), persistent=False)
            self.register_buffer(
                f"_s{m}",
                torch.arange(num_scales, num_scales + ki).repeat(2 if m else 1),
                persistent=False,
            )
            num_scales += ki
            positions += [_component(self.irreps_out, b, u, m) for b, u in outs]
            if m:
                positions += [_component(self.irreps_out, b, u, -m) for b, u in outs]
            setattr(self, f"_size{m}", size)
        #: number of per-edge scales :math:`s_m` (one per input channel and block at each m)
        self.num_scales = num_scales
        self.register_buffer(
            "_gather", _inverse_gather(positions, self.irreps_out.dim), persistent=False
        )

    def _matrix(self, m: int) -> Tensor:
        w = self.weights[m]
        M = w.new_zeros(getattr(self, f"_size{m}"))
        vals = w.index_select(0, getattr(self, f"_src{m}")) * getattr(self, f"_sign{m}")
        M = M.index_put((getattr(self, f"_rows{m}"), getattr(self, f"_cols{m}")), vals)
        return M * getattr(self, f"_norm{m}")

    def forward(self, x: Tensor, scale: Tensor | None = None) -> Tensor:
        if x.shape[-1] != self.irreps_in.dim:
            raise ValueError(
                f"SO2Linear: x must have last dimension {self.irreps_in.dim} ({self.irreps_in}), "
                f"got {tuple(x.shape)}"
            )
        if scale is not None and scale.shape[-1] != self.num_scales:
            raise ValueError(
                f"SO2Linear: scale must have last dimension {self.num_scales}, got "
                f"{tuple(scale.shape)}"
            )
        outs = []
        for m in range(self.m_max + 1):
            xm = x.index_select(-1, getattr(self, f"_x{m}"))  # (..., (2) K_in(m))
            if scale is not None:
                xm = xm * scale.index_select(-1, getattr(self, f"_s{m}"))
            outs.append(xm @ self._matrix(m))  # (..., (2) K_out(m))
        y = torch.cat([*outs, x.new_zeros(x.shape[:-1] + (1,))], dim=-1)
        return y.index_select(-1, self._gather)  # (..., irreps_out.dim)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, m_max={self.m_max}"
