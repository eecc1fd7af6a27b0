r"""Tensor products of irreps: paths, the general :class:`TensorProduct` and its named cases.

**The maths.** For blocks :math:`x^{(1)} \in (U \times l_1)`, :math:`x^{(2)} \in (V \times l_2)`
and an output block :math:`(W \times l_3)` with :math:`|l_1 - l_2| \le l_3 \le l_1 + l_2` and
:math:`p_3 = p_1 p_2`, a **path** contributes

.. math::
    z_{w k} \mathrel{+}= \alpha \sum_{u v} w_{\dots} \sum_{ij} C^{l_1 l_2 l_3}_{ijk}\,
    x^{(1)}_{u i}\, x^{(2)}_{v j}

with :math:`C` the real Clebsch–Gordan tensor (:func:`~equidyn.o3.wigner_3j`, Frobenius norm 1)
and the channel pattern set by the path's ``mode``:

==========  ============================  ==============================  =============
mode        output channel                weight                          fan-in
==========  ============================  ==============================  =============
``uvw``     :math:`w` (all :math:`u, v`)  :math:`w_{uvw}`, shape (U,V,W)  :math:`UV`
``uvu``     :math:`u` (W = U)             :math:`w_{uv}`, shape (U, V)    :math:`V`
``uuu``     :math:`u` (U = V = W)         :math:`w_{u}`, shape (U,)       1
``uvuv``    :math:`(u, v)` (W = UV)       :math:`w_{uv}`, shape (U, V)    1
``uvv``     :math:`v` (W = V)             :math:`w_{uv}`, shape (U, V)    :math:`U`
``uuw``     :math:`w` (U = V)             :math:`w_{uw}`, shape (U, W)    :math:`U`
``u<vw``    :math:`w` (U = V, pairs       :math:`w_{qw}`, shape (Q, W)    :math:`Q`
            :math:`q = (u < v)`)
``uvu<v``   :math:`q = (u < v)`           :math:`w_{q}`, shape (Q,)       1
            (U = V, W = Q)
==========  ============================  ==============================  =============

with :math:`Q = U(U-1)/2` pairs :math:`u < v` in row-major order. An unweighted path uses
:math:`w \equiv 1`. The weights of all weighted paths are
concatenated, each flattened row-major in the shape above, into one vector of length
``weight_numel`` (the same layout as e3nn's instructions).

**Normalization** (explicit arguments). With :math:`d_l = 2l+1`,

* ``irrep_normalization``: :math:`a = d_3` (``"component"``: unit-variance components in,
  unit-variance components out), :math:`a = d_1 d_2` (``"norm"``: unit-norm irreps in,
  unit-norm out) or :math:`a = 1` (``"none"``);
* ``path_normalization``: :math:`\alpha^2 = a / \sum_{q \to \text{out}} \text{fan-in}(q)`
  (``"element"``: the sum over all paths ``q`` into the same output block, so every output
  element has unit variance), :math:`\alpha^2 = a / (\text{fan-in}(p)\, n_\text{out})`
  (``"path"``: every path counts equally; :math:`n_\text{out}` paths into that block), or
  :math:`\alpha^2 = a` (``"none"``);
* a path's own ``path_weight`` :math:`\lambda \ge 0` multiplies :math:`\alpha^2` (so the
  output of the path scales by :math:`\sqrt{\lambda}`; e3nn's sixth instruction entry).

So with unit-variance inputs and weights (the initialisation), outputs have unit variance.
These are the formulas of e3nn 0.6, so modules with copied weights give the same numbers.

**Speed.** The kernels contract the second input with the sparse Clebsch–Gordan tensor first
(one small GEMM) to obtain, per sample, an :math:`l_1 \to (l_3, \dots)` matrix for all paths
that share an input block, and apply it to all channels at once with one batched matmul;
channel weights are applied to the result. Fully connected ``uvw`` paths contract the
channels with large GEMMs, each path contracting whichever of its two inputs or its output has
the smallest irrep dimension with the weights first. See ``docs/performance.md``.

**Structure.** :class:`TensorProduct` checks the paths, computes the normalization and the
weight layout, and builds one frozen plan at construction (``equidyn.o3._tp_plan``: the kernel
groups and their Clebsch–Gordan constants). Each call goes to the first backend of one ordered
list that supports it (``equidyn.o3._tp_backends``: the native C kernel for the convolution on
CPU, the eager torch-op kernel, the functional version ``equidyn.o3._tp_functional``); all of
them read the same plan and compute the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from equidyn.o3 import _tp_functional
from equidyn.o3._e3nn_state import E3nnStateMixin
from equidyn.o3._native import NativeConv
from equidyn.o3._tp_backends import Bound, select
from equidyn.o3._tp_plan import TensorProductPlan, WeightLayout, build_plan
from equidyn.o3._weights import resolve_weight
from equidyn.o3.irreps import Irrep, Irreps
from equidyn.o3.wigner import wigner_3j

__all__ = [
    "Path",
    "TensorProduct",
    "FullTensorProduct",
    "FullyConnectedTensorProduct",
    "ChannelwiseTensorProduct",
    "ElementwiseTensorProduct",
    "TensorSquare",
    "tensor_product_irreps",
]

_MODES = ("uvw", "uvu", "uuu", "uvuv", "uvv", "uuw", "u<vw", "uvu<v")
_IRREP_NORMS = ("component", "norm", "none")
_PATH_NORMS = ("element", "path", "none")


@dataclass(frozen=True)
class Path:
    r"""One path of a tensor product: block ``in1`` of the first input times block ``in2`` of
    the second, into block ``out`` of the output (indices into the three ``Irreps``).

    ``mode`` is the channel pattern (``"uvw"``, ``"uvu"``, ``"uuu"``, ``"uvuv"``, ``"uvv"``,
    ``"uuw"``, ``"u<vw"`` or ``"uvu<v"``, see the module docstring), ``weighted`` whether it
    has learnable weights and ``path_weight`` a fixed factor :math:`\lambda \ge 0` of its
    squared normalization (e3nn's optional sixth instruction entry; 1 by default).

    >>> Path(0, 1, 2, "uvu", True)
    Path(in1=0, in2=1, out=2, mode='uvu', weighted=True, path_weight=1.0)
    >>> Path.from_e3nn((0, 0, 1, "uvw", True, 0.5))
    Path(in1=0, in2=0, out=1, mode='uvw', weighted=True, path_weight=0.5)
    """

    in1: int
    in2: int
    out: int
    mode: str = "uvw"
    weighted: bool = True
    path_weight: float = 1.0

    @staticmethod
    def from_e3nn(instruction: Path | Sequence[Any]) -> Path:
        """The path of an e3nn instruction tuple
        ``(i_in1, i_in2, i_out, mode, has_weight[, path_weight])``."""
        if isinstance(instruction, Path):
            return instruction
        if not isinstance(instruction, (tuple, list)) or len(instruction) not in (5, 6):
            raise TypeError(
                f"an instruction must be an o3.Path or a tuple (i_in1, i_in2, i_out, mode, "
                f"has_weight[, path_weight]), got {instruction!r}"
            )
        weight = float(instruction[5]) if len(instruction) == 6 else 1.0
        i1, i2, out, mode, weighted = instruction[:5]
        return Path(i1, i2, out, mode, weighted, weight)

    def __post_init__(self) -> None:
        for name in ("in1", "in2", "out"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"Path.{name} must be a non-negative int, got {v!r}")
        if self.mode not in _MODES:
            raise ValueError(f"Path.mode must be one of {_MODES}, got {self.mode!r}")
        if not isinstance(self.weighted, bool):
            raise TypeError(f"Path.weighted must be a bool, got {self.weighted!r}")
        w = self.path_weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"Path.path_weight must be a finite number >= 0, got {w!r}")
        if self.mode == "u<vw" and not self.weighted:
            raise ValueError(f"{self}: mode 'u<vw' needs weights (weighted=True)")


def _filter_set(filter_ir_out: Any) -> set[Irrep] | None:
    if filter_ir_out is None:
        return None
    if isinstance(filter_ir_out, (str, Irrep)):
        filter_ir_out = Irreps(filter_ir_out)
    out: set[Irrep] = set()
    for item in filter_ir_out:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Irrep):
            out.add(item[1])  # a (mul, ir) pair from an Irreps
        else:
            out.add(Irrep(item))
    return out


def _product_paths(
    irreps_in1: Irreps,
    irreps_in2: Irreps,
    filter_ir_out: Any,
    mode: str,
    pairs: str = "all",
    weighted: bool = False,
    sort: bool = True,
) -> tuple[Irreps, list[Path]]:
    """The paths of the named products: for every pair of blocks (``pairs``: ``"all"``,
    ``"upper"`` (``a <= b``) or ``"diagonal"`` (``a = b``)) and every ``l3`` of their product
    in ``filter_ir_out``, one path of ``mode`` into a new output block (multiplicity ``UV``
    for ``uvuv``, ``U`` otherwise); output blocks sorted by ``(l, p)`` (stable, as in e3nn)
    unless ``sort`` is false."""
    keep = _filter_set(filter_ir_out)
    n1, n2 = len(irreps_in1), len(irreps_in2)
    blocks = {
        "all": [(a, b) for a in range(n1) for b in range(n2)],
        "upper": [(a, b) for a in range(n1) for b in range(n2) if a <= b],
        "diagonal": [(a, a) for a in range(min(n1, n2))],
    }[pairs]
    outs: list[tuple[int, Irrep]] = []
    triples: list[tuple[int, int, int]] = []
    for a, b in blocks:
        (mul1, ir1), (mul2, ir2) = irreps_in1[a], irreps_in2[b]
        for _, ir3 in ir1 * ir2:
            if keep is None or ir3 in keep:
                triples.append((a, b, len(outs)))
                outs.append((mul1 * mul2 if mode == "uvuv" else mul1, ir3))
    if not sort:
        return Irreps(outs), [Path(a, b, c, mode, weighted) for a, b, c in triples]
    srt = Irreps(outs).sort()
    return srt.irreps, [Path(a, b, srt.p[c], mode, weighted) for a, b, c in triples]


def tensor_product_irreps(
    irreps1: Irreps | str, irreps2: Irreps | str, filter_ir_out: Any = None
) -> Irreps:
    r"""Output irreps of the full tensor product :math:`\bigoplus (U\!\times\! l_1) \otimes
    (V\!\times\! l_2) = \bigoplus UV \times |l_1-l_2| \oplus \dots \oplus UV \times (l_1+l_2)`,
    sorted by ``(l, p)``, keeping only irreps in ``filter_ir_out`` if given. No tensors involved;
    equal to ``FullTensorProduct(irreps1, irreps2, filter_ir_out).irreps_out``.

    >>> tensor_product_irreps("2x1o", "1x1o + 1x0e")
    2x0e+2x1o+2x1e+2x2e
    >>> tensor_product_irreps("1x1o", "1x1o", filter_ir_out=["0e", "2e"])
    1x0e+1x2e
    """
    return _product_paths(Irreps(irreps1), Irreps(irreps2), filter_ir_out, "uvuv")[0]


def _fan_in(mode: str, mul1: int, mul2: int) -> int:
    pairs = mul1 * (mul2 - 1) // 2
    return {
        "uvw": mul1 * mul2,
        "uvu": mul2,
        "uuu": 1,
        "uvuv": 1,
        "uvv": mul1,
        "uuw": mul1,
        "u<vw": pairs,
        "uvu<v": 1,
    }[mode]


def _weight_shape(mode: str, mul1: int, mul2: int, mul_out: int) -> tuple[int, ...]:
    pairs = mul1 * (mul2 - 1) // 2
    return {
        "uvw": (mul1, mul2, mul_out),
        "uvu": (mul1, mul2),
        "uuu": (mul1,),
        "uvuv": (mul1, mul2),
        "uvv": (mul1, mul2),
        "uuw": (mul1, mul_out),
        "u<vw": (pairs, mul_out),
        "uvu<v": (pairs,),
    }[mode]


def _check_same_dtype(
    x1: Tensor, x2: Tensor, weight: Tensor | None, module_dtype: torch.dtype | None
) -> None:
    """``TypeError`` unless the inputs, external weights and the module's constants share one
    floating dtype. No silent casting: the error says what to convert (the dtype policy)."""
    tensors = [("x1", x1), ("x2", x2)] + ([("weight", weight)] if weight is not None else [])
    dtypes = {name: t.dtype for name, t in tensors}
    if module_dtype is not None:
        dtypes["the module"] = module_dtype
    if not x1.is_floating_point() or len(set(dtypes.values())) > 1:
        got = ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items())
        raise TypeError(
            f"tensor product inputs must share one floating dtype, got {got}: convert them "
            f"(e.g. x2.to(x1.dtype)) and the module (.to(dtype)) to the same one"
        )


class TensorProduct(E3nnStateMixin):
    r"""The general equivariant tensor product :math:`z = x^{(1)} \otimes_w x^{(2)}`, a sum of
    :class:`Path` contributions (formulas and normalization in the module docstring).

    Args:
        irreps_in1, irreps_in2, irreps_out: the irreps of the inputs and of the output.
        paths: the :class:`Path` list; each checks ``p_out = p1 p2``, the triangle rule and
            the multiplicities of its mode (``uvu``: W = U, ``uuu``: U = V = W, ``uvuv``:
            W = U V, ``uvv``: W = V, ``uuw``/``u<vw``: U = V). Output blocks that no path
            reaches are zero. e3nn instruction tuples
            ``(i_in1, i_in2, i_out, mode, has_weight[, path_weight])`` are accepted too and
            converted with :meth:`Path.from_e3nn`.
        instructions: e3nn's name for ``paths`` (give one of the two).
        irrep_normalization: ``"component"`` (default; ``None`` means it, as in e3nn),
            ``"norm"`` or ``"none"``.
        path_normalization: ``"element"`` (default, also for ``None``), ``"path"`` or
            ``"none"``.
        internal_weights: keep the weights as the parameter ``.weight`` (unit-normal init).
            Default: ``True`` unless ``shared_weights=False``.
        shared_weights: with external weights, ``True`` demands a weight of shape
            ``(weight_numel,)``, ``False`` one with leading (batch) dimensions; ``None``
            (default) accepts either: a weight of shape ``(..., weight_numel)`` broadcasts
            against the inputs' leading dimensions (one weight vector per sample, as a
            convolution's radial network produces).

    Called as ``tp(x1, x2)`` (internal weights) or ``tp(x1, x2, weight)``; ``x1``
    ``(..., irreps_in1.dim)`` and ``x2`` ``(..., irreps_in2.dim)`` broadcast over their leading
    dimensions. Returns ``(..., irreps_out.dim)``.

    >>> tp = TensorProduct("2x1o", "1x1o", "2x0e + 2x1e", [Path(0, 0, 0, "uvu", True),
    ...                    Path(0, 0, 1, "uvu", True)], internal_weights=False)
    >>> tp.weight_numel
    4
    >>> tp(torch.randn(10, 6), torch.randn(10, 3), torch.randn(10, 4)).shape
    torch.Size([10, 8])
    >>> tp = TensorProduct("2x1o", "2x1o", "3x0e", instructions=[(0, 0, 0, "uuw", True, 0.5)])
    >>> tp.paths[0], tp.weight_numel
    (Path(in1=0, in2=0, out=0, mode='uuw', weighted=True, path_weight=0.5), 6)
    """

    def __init__(
        self,
        irreps_in1: Irreps | str,
        irreps_in2: Irreps | str,
        irreps_out: Irreps | str,
        paths: Sequence[Path | tuple] | None = None,
        *,
        instructions: Sequence[Path | tuple] | None = None,
        irrep_normalization: str | None = "component",
        path_normalization: str | None = "element",
        internal_weights: bool | None = None,
        shared_weights: bool | None = None,
    ) -> None:
        super().__init__()
        if (paths is None) == (instructions is None):
            raise TypeError(
                "TensorProduct needs the paths: pass paths=[o3.Path(...), ...] or e3nn's "
                "instructions=[(i_in1, i_in2, i_out, mode, has_weight[, path_weight]), ...]"
                + (" (not both)" if paths is not None else "")
            )
        given = paths if paths is not None else instructions
        assert given is not None
        # e3nn's None means its default
        irrep_normalization = irrep_normalization or "component"
        path_normalization = path_normalization or "element"
        self.irreps_in1 = Irreps(irreps_in1)
        self.irreps_in2 = Irreps(irreps_in2)
        self.irreps_out = Irreps(irreps_out)
        if irrep_normalization not in _IRREP_NORMS:
            raise ValueError(
                f"irrep_normalization must be one of {_IRREP_NORMS}, got {irrep_normalization!r}"
            )
        if path_normalization not in _PATH_NORMS:
            raise ValueError(
                f"path_normalization must be one of {_PATH_NORMS}, got {path_normalization!r}"
            )
        self.irrep_normalization = irrep_normalization
        self.path_normalization = path_normalization
        self.paths: tuple[Path, ...] = tuple(Path.from_e3nn(p) for p in given)
        for p in self.paths:
            self._check_path(p)
        if internal_weights is None:
            internal_weights = shared_weights is not False
        if internal_weights and shared_weights is False:
            raise ValueError("internal_weights=True needs shared_weights (not False)")
        self.internal_weights = bool(internal_weights)
        self.shared_weights = True if internal_weights else shared_weights

        self._weights = self._weight_layout()
        self.weight_numel = self._weights.numel
        self._coeffs = [self._coefficient(p) for p in self.paths]
        self._build_plan()
        if self.internal_weights:
            self.weight = nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.register_parameter("weight", None)

    # ------------------------------------------------------------------ construction
    def _check_path(self, p: Path) -> None:
        if not isinstance(p, Path):
            raise TypeError(f"paths must be o3.Path instances, got {p!r}")
        for name, irreps in (("in1", self.irreps_in1), ("in2", self.irreps_in2)):
            i = getattr(p, name)
            if i >= len(irreps):
                raise ValueError(f"{p}: {name}={i} is out of range for irreps {irreps}")
        if p.out >= len(self.irreps_out):
            raise ValueError(f"{p}: out={p.out} is out of range for irreps {self.irreps_out}")
        (m1, ir1), (m2, ir2), (m3, ir3) = (
            self.irreps_in1[p.in1],
            self.irreps_in2[p.in2],
            self.irreps_out[p.out],
        )
        if ir3 not in ir1 * ir2:
            raise ValueError(
                f"{p}: {ir1} x {ir2} cannot give {ir3} (need |l1-l2| <= l3 <= l1+l2 and "
                f"parity p1*p2 = {ir1.p * ir2.p})"
            )
        needs = {
            "uvw": (True, ""),
            "uvu": (m3 == m1, "mul_out == mul1"),
            "uuu": (m1 == m2 == m3, "mul1 == mul2 == mul_out"),
            "uvuv": (m3 == m1 * m2, "mul_out == mul1 * mul2"),
            "uvv": (m3 == m2, "mul_out == mul2"),
            "uuw": (
                m1 == m2 and (p.weighted or m3 == 1),
                "mul1 == mul2 (and mul_out == 1 without weights)",
            ),
            "u<vw": (m1 == m2, "mul1 == mul2"),
            "uvu<v": (
                m1 == m2 and m3 == m1 * (m1 - 1) // 2,
                "mul1 == mul2, mul_out == mul1 * (mul1 - 1) / 2",
            ),
        }
        ok, need = needs[p.mode]
        if not ok:
            raise ValueError(
                f"{p}: mode {p.mode!r} needs {need}, got mul1={m1}, mul2={m2}, mul_out={m3}"
            )

    def _weight_layout(self) -> WeightLayout:
        """The weights of every weighted path, flattened row-major in its mode's shape and
        concatenated in path order (the layout of e3nn's instructions)."""
        shapes, offsets, numel = [], [], 0
        for p in self.paths:
            m1, m2, m3 = (
                self.irreps_in1[p.in1].mul,
                self.irreps_in2[p.in2].mul,
                self.irreps_out[p.out].mul,
            )
            shapes.append(_weight_shape(p.mode, m1, m2, m3))
            offsets.append(numel)
            numel += math.prod(shapes[-1]) if p.weighted else 0
        weighted = tuple(p.weighted for p in self.paths)
        return WeightLayout(tuple(shapes), tuple(offsets), weighted, numel)

    def _coefficient(self, p: Path) -> float:
        ir1, ir2, ir3 = (
            self.irreps_in1[p.in1].ir,
            self.irreps_in2[p.in2].ir,
            self.irreps_out[p.out].ir,
        )
        a = {"component": ir3.dim, "norm": ir1.dim * ir2.dim, "none": 1}[self.irrep_normalization]

        def fan(q: Path) -> int:
            return _fan_in(q.mode, self.irreps_in1[q.in1].mul, self.irreps_in2[q.in2].mul)

        if self.path_normalization == "element":
            x = sum(fan(q) for q in self.paths if q.out == p.out)
        elif self.path_normalization == "path":
            x = fan(p) * sum(1 for q in self.paths if q.out == p.out)
        else:
            x = 1
        return math.sqrt((a / x if x > 0 else a) * p.path_weight)

    def _cg(self, i: int) -> Tensor:
        """alpha * C^{l1 l2 l3} of path ``i`` in float64, shape (d1, d2, d3)."""
        p = self.paths[i]
        l1, l2, l3 = (
            self.irreps_in1[p.in1].ir.l,
            self.irreps_in2[p.in2].ir.l,
            self.irreps_out[p.out].ir.l,
        )
        return wigner_3j(l1, l2, l3, dtype=torch.float64) * self._coeffs[i]

    def _build_plan(self) -> None:
        """The plan every backend reads (:mod:`equidyn.o3._tp_plan`), the native kernel's
        handle for a convolution, and the plan's float64 constants registered as
        non-persistent buffers ``_c0, _c1, ...`` that follow ``.to()`` (re-rounded from
        float64 on every dtype change, see ``_apply``)."""
        cgs = [self._cg(i) for i in range(len(self.paths))]
        args = (self.irreps_in1, self.irreps_in2, self.irreps_out, self.paths, cgs, self._weights)
        self._plan: TensorProductPlan = build_plan(*args)
        self._native: NativeConv | None = None
        if self._plan.convolution:
            consts = [self._plan.constants[g.const] for g in self._plan.uvu.groups]
            self._native = NativeConv(self._plan.uvu, consts)
        self._const_names = tuple(f"_c{i}" for i in range(len(self._plan.constants)))
        for name, t in zip(self._const_names, self._plan.constants):
            self.register_buffer(name, t.to(torch.get_default_dtype()), persistent=False)

    def _apply(self, fn: Any, *args: Any, **kw: Any) -> TensorProduct:
        super()._apply(fn, *args, **kw)
        # keep the constants exactly rounded from float64 whatever dtype sequence was applied
        for name, exact in zip(self._const_names, self._plan.constants):
            cur = getattr(self, name)
            setattr(self, name, exact.to(device=cur.device, dtype=cur.dtype))
        return self

    def _constants(self) -> tuple[Tensor, ...]:
        """The plan's constants in the module's dtype and device, in plan order."""
        return tuple(getattr(self, name) for name in self._const_names)

    def _bound(self) -> Bound:
        return Bound(self._plan, self._constants(), self._native)

    # ------------------------------------------------------------------ forward
    def forward(self, x1: Tensor, x2: Tensor, weight: Tensor | None = None) -> Tensor:
        x1, x2, weight, batch = self._flatten_inputs(x1, x2, weight)
        bound = self._bound()
        out = select(bound, x1, x2, weight).run(bound, x1, x2, weight)  # [Z, irreps_out.dim]
        return out.reshape(*batch, self.irreps_out.dim)

    def _module_dtype(self) -> torch.dtype | None:
        """The floating dtype of the module's constants and weights (they follow ``.to()``)."""
        for t in (*self.parameters(), *self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return None

    def _flatten_inputs(
        self, x1: Tensor, x2: Tensor, weight: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, torch.Size]:
        """Check the inputs and broadcast them to ``[Z, dim]`` (weights ``[numel]`` when
        shared, else ``[Z, numel]``); also returns the broadcast leading shape."""
        d1, d2 = self.irreps_in1.dim, self.irreps_in2.dim
        for name, x, d, irreps in (
            ("x1", x1, d1, self.irreps_in1),
            ("x2", x2, d2, self.irreps_in2),
        ):
            if x.ndim < 1 or x.shape[-1] != d:
                raise ValueError(
                    f"{name} has shape {tuple(x.shape)}, expected (..., {d}) "
                    f"for irreps_{name.replace('x', 'in')} {irreps}"
                )
        _check_same_dtype(x1, x2, weight, self._module_dtype())
        weight, shared = resolve_weight(
            weight,
            owner="TensorProduct",
            call_internal="tp(x1, x2)",
            call_external="tp(x1, x2, weight)",
            internal_weights=self.internal_weights,
            shared_weights=self.shared_weights,
            weight_numel=self.weight_numel,
            parameter=self.weight if self.internal_weights else None,
            like=x1,
        )
        lead = [x1.shape[:-1], x2.shape[:-1]] + ([] if shared else [weight.shape[:-1]])
        try:
            batch = torch.broadcast_shapes(*lead)
        except RuntimeError:
            raise ValueError(
                f"leading dimensions do not broadcast: x1 {tuple(x1.shape)}, x2 "
                f"{tuple(x2.shape)}, weight {tuple(weight.shape)}"
            ) from None
        Z = math.prod(batch)
        x1 = x1.expand(*batch, d1).reshape(Z, d1)
        x2 = x2.expand(*batch, d2).reshape(Z, d2)
        if not shared:
            weight = weight.expand(*batch, self.weight_numel).reshape(Z, self.weight_numel)
        return x1, x2, weight, batch

    def _functional(self, x1: Tensor, x2: Tensor, weight: Tensor) -> Tensor:
        """The functional backend on flat inputs (``[Z, dim]``): the reference of the others."""
        return _tp_functional.forward(self._plan, self._constants(), x1, x2, weight)

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out}, "
            f"{len(self.paths)} paths, weight_numel={self.weight_numel}"
        )


class FullTensorProduct(TensorProduct):
    r"""All paths, no weights: :math:`(U \times l_1) \otimes (V \times l_2) \to UV \times l_3`
    for every :math:`l_3` in :math:`|l_1-l_2| .. l_1+l_2` (mode ``uvuv``), kept if in
    ``filter_ir_out``; outputs sorted by ``(l, p)`` as in e3nn
    (:func:`tensor_product_irreps`).

    >>> tp = FullTensorProduct("1x1o", "1x1o")
    >>> tp.irreps_out
    1x0e+1x1e+1x2e
    >>> x = torch.tensor([[1.0, 0.0, 0.0]])
    >>> (tp(x, x)[0, 0] * 3**0.5).round(decimals=4)  # the dot product, sqrt(1/3) * x.y * sqrt(1)
    tensor(1.)
    """

    def __init__(
        self,
        irreps_in1: Irreps | str,
        irreps_in2: Irreps | str,
        filter_ir_out: Iterable[Any] | None = None,
        *,
        irrep_normalization: str = "component",
        path_normalization: str = "element",
    ) -> None:
        i1, i2 = Irreps(irreps_in1), Irreps(irreps_in2)
        irreps_out, paths = _product_paths(i1, i2, filter_ir_out, "uvuv")
        super().__init__(
            i1,
            i2,
            irreps_out,
            paths,
            irrep_normalization=irrep_normalization,
            path_normalization=path_normalization,
            internal_weights=False,
        )


class FullyConnectedTensorProduct(TensorProduct):
    r"""Every allowed ``(in1, in2) -> out`` block triple with mode ``uvw`` and internal weights:
    :math:`z^{(c)}_{wk} = \sum_{(a,b)\to c} \alpha \sum_{uv} w_{uvw}\, (x^{(1)}_a \otimes
    x^{(2)}_b)^{l_3}_{uv k}`.

    >>> tp = FullyConnectedTensorProduct("4x0e + 2x1o", "1x0e + 1x1o", "3x0e + 1x1o")
    >>> tp.weight_numel  # 0e: 4*1*3 + 2*1*3, 1o: 4*1*1 + 2*1*1
    24
    >>> tp(torch.randn(5, 10), torch.randn(5, 4)).shape
    torch.Size([5, 6])
    """

    def __init__(
        self,
        irreps_in1: Irreps | str,
        irreps_in2: Irreps | str,
        irreps_out: Irreps | str,
        *,
        irrep_normalization: str = "component",
        path_normalization: str = "element",
        internal_weights: bool | None = None,
        shared_weights: bool | None = None,
    ) -> None:
        i1, i2, o = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        paths = [
            Path(a, b, c, "uvw", True)
            for a, (_, ir1) in enumerate(i1)
            for b, (_, ir2) in enumerate(i2)
            for c, (_, ir3) in enumerate(o)
            if ir3 in ir1 * ir2
        ]
        super().__init__(
            i1,
            i2,
            o,
            paths,
            irrep_normalization=irrep_normalization,
            path_normalization=path_normalization,
            internal_weights=internal_weights,
            shared_weights=shared_weights,
        )


class ChannelwiseTensorProduct(TensorProduct):
    r"""The convolution product of NequIP/MACE: every block :math:`(U \times l_1)` of
    ``irreps_in1`` times every block :math:`(V \times l_2)` of ``irreps_in2`` into
    :math:`U \times l_3` for every :math:`l_3` in ``filter_ir_out`` (mode ``uvu``: channel
    :math:`u` keeps its identity, one weight per path, channel and :math:`v`). Outputs are
    sorted by ``(l, p)`` (stable); weights are external and per sample by default.

    >>> tp = ChannelwiseTensorProduct("8x0e + 8x1o", "1x0e + 1x1o", ["0e", "1o"])
    >>> tp.irreps_out
    8x0e+8x0e+8x1o+8x1o
    >>> tp.weight_numel
    32
    >>> tp(torch.randn(7, 32), torch.randn(7, 4), torch.randn(7, 32)).shape
    torch.Size([7, 64])
    """

    def __init__(
        self,
        irreps_in1: Irreps | str,
        irreps_in2: Irreps | str,
        filter_ir_out: Iterable[Any] | None = None,
        internal_weights: bool = False,
        *,
        irrep_normalization: str = "component",
        path_normalization: str = "element",
    ) -> None:
        i1, i2 = Irreps(irreps_in1), Irreps(irreps_in2)
        irreps_out, paths = _product_paths(i1, i2, filter_ir_out, "uvu", weighted=True)
        super().__init__(
            i1,
            i2,
            irreps_out,
            paths,
            irrep_normalization=irrep_normalization,
            path_normalization=path_normalization,
            internal_weights=internal_weights,
            shared_weights=True if internal_weights else None,
        )


def _align(i1: Irreps, i2: Irreps) -> tuple[Irreps, Irreps]:
    """Split blocks so that block k of both has the same multiplicity."""
    a = [list(t) for t in i1.simplify()]
    b = [list(t) for t in i2.simplify()]
    if sum(m for m, _ in a) != sum(m for m, _ in b):
        raise ValueError(
            f"ElementwiseTensorProduct needs the same number of channels: {i1} has "
            f"{i1.num_irreps}, {i2} has {i2.num_irreps}"
        )
    out1: list[tuple[int, Irrep]] = []
    out2: list[tuple[int, Irrep]] = []
    ia = ib = 0
    while ia < len(a):
        m = min(a[ia][0], b[ib][0])
        out1.append((m, a[ia][1]))
        out2.append((m, b[ib][1]))
        a[ia][0] -= m
        b[ib][0] -= m
        if a[ia][0] == 0:
            ia += 1
        if b[ib][0] == 0:
            ib += 1
    return Irreps(out1), Irreps(out2)


class ElementwiseTensorProduct(TensorProduct):
    r"""Channel by channel product (mode ``uuu``, no weights): channel :math:`u` of
    ``irreps_in1`` times channel :math:`u` of ``irreps_in2`` (both must have the same number of
    channels; blocks are split to align, as in e3nn), every :math:`l_3` in ``filter_ir_out``.

    >>> tp = ElementwiseTensorProduct("2x1o", "2x1o", ["0e"])
    >>> tp.irreps_out
    2x0e
    >>> x = torch.tensor([[1.0, 2.0, 0.0, 0.0, 0.0, 3.0]])
    >>> tp(x, x) * 3**0.5  # the two squared norms
    tensor([[5.0000, 9.0000]])
    """

    def __init__(
        self,
        irreps_in1: Irreps | str,
        irreps_in2: Irreps | str,
        filter_ir_out: Iterable[Any] | None = None,
        *,
        irrep_normalization: str = "component",
    ) -> None:
        i1, i2 = _align(Irreps(irreps_in1), Irreps(irreps_in2))
        irreps_out, paths = _product_paths(i1, i2, filter_ir_out, "uuu", "diagonal", sort=False)
        super().__init__(
            i1,
            i2,
            irreps_out,
            paths,
            irrep_normalization=irrep_normalization,
            internal_weights=False,
        )


def _square_paths(irreps_in: Irreps, irreps_out: Irreps, irrep_normalization: str) -> list[Path]:
    """The weighted paths of ``TensorSquare(irreps_in, irreps_out)`` (both simplified): for
    blocks ``a < b`` a ``uvw`` path, for ``a = b`` a ``u<vw`` path (pairs ``u < v``, when
    ``U > 1``) and, for even ``l_out`` (the only ones the symmetric diagonal reaches), a
    ``uuw`` path; the irrep normalization is carried by the paths' ``path_weight``
    (e3nn's constants)."""
    paths = []
    for a, (mul, ir1) in enumerate(irreps_in):
        for b, (_, ir2) in enumerate(irreps_in):
            if b < a:
                continue
            for c, (_, ir3) in enumerate(irreps_out):
                if ir3 not in ir1 * ir2:
                    continue
                lam = {"component": ir3.dim, "norm": ir1.dim * ir2.dim, "none": 1}[
                    irrep_normalization
                ]
                if a < b:
                    paths.append(Path(a, b, c, "uvw", True, float(lam)))
                    continue
                if mul > 1:
                    paths.append(Path(a, a, c, "u<vw", True, float(lam)))
                if ir3.l % 2 == 0:
                    if irrep_normalization == "component":
                        lam = 1 / (ir1.dim + 2) if ir3.l == 0 else ir3.dim / 2
                    elif irrep_normalization == "norm":
                        lam = ir1.dim if ir3.l == 0 else ir1.dim * (ir1.dim + 2) / 2
                    paths.append(Path(a, a, c, "uuw", True, float(lam)))
    return paths


class TensorSquare(TensorProduct):
    r"""The product of an input with itself, :math:`x \otimes x`.

    * ``TensorSquare(irreps_in, irreps_out)`` (e3nn's weighted form): fully connected into
      the given output irreps, each unordered pair of channels once. ``irreps_in`` and
      ``irreps_out`` are simplified; for blocks :math:`a < b` a ``uvw`` path, for
      :math:`a = b` a ``u<vw`` path over the pairs :math:`u < v` and, for even :math:`l_3`,
      a ``uuw`` path over the diagonal :math:`u = v`, with e3nn's normalization constants
      (``irrep_normalization`` as in e3nn) and internal weights by default. With copied
      weights the outputs equal e3nn's.
    * ``TensorSquare(irreps_in, filter_ir_out=...)`` (no weights): for blocks :math:`a \le b`
      and all output irreps :math:`l_3` (in ``filter_ir_out``), a ``uvuv`` path; for
      :math:`a = b` the symmetric-square duplicate pairs are not removed (the output has
      :math:`U^2` channels, as :class:`FullTensorProduct`; e3nn keeps :math:`u < v` and the
      diagonal instead, see ``docs/porting_from_e3nn.md``).

    Called with one argument (and ``weight`` for external weights).

    >>> sq = TensorSquare("1x1o", filter_ir_out=["0e"])
    >>> x = torch.tensor([[1.0, 2.0, 2.0]])
    >>> sq(x) * 3**0.5  # |x|^2
    tensor([[9.0000]])
    >>> sq = TensorSquare("2x0e + 1x1o", "3x0e + 1x2e")
    >>> sq.weight_numel, sq(torch.randn(4, 5)).shape
    (13, torch.Size([4, 8]))
    """

    def __init__(
        self,
        irreps_in: Irreps | str,
        irreps_out: Irreps | str | None = None,
        filter_ir_out: Iterable[Any] | None = None,
        *,
        irrep_normalization: str | None = "component",
        internal_weights: bool | None = None,
        shared_weights: bool | None = None,
    ) -> None:
        irrep_normalization = irrep_normalization or "component"
        if irrep_normalization not in _IRREP_NORMS:
            raise ValueError(
                f"irrep_normalization must be one of {_IRREP_NORMS}, got {irrep_normalization!r}"
            )
        if irreps_out is not None:
            if filter_ir_out is not None:
                raise ValueError(
                    "TensorSquare takes irreps_out (weighted) or filter_ir_out (no weights), "
                    f"not both: got irreps_out={irreps_out!r}, filter_ir_out={filter_ir_out!r}"
                )
            ir = Irreps(irreps_in).simplify()
            out = Irreps(irreps_out).simplify()
            super().__init__(
                ir,
                ir,
                out,
                _square_paths(ir, out, irrep_normalization),
                irrep_normalization="none",
                internal_weights=internal_weights,
                shared_weights=shared_weights,
            )
        else:
            if internal_weights or shared_weights is not None:
                raise ValueError(
                    "TensorSquare without irreps_out has no weights: give irreps_out for the "
                    "weighted (fully connected) square"
                )
            ir = Irreps(irreps_in)
            out, paths = _product_paths(ir, ir, filter_ir_out, "uvuv", "upper")
            super().__init__(
                ir,
                ir,
                out,
                paths,
                irrep_normalization=irrep_normalization,
                internal_weights=False,
            )
        self.irreps_in = ir

    @classmethod
    def _with_paths(
        cls,
        irreps_in: Irreps,
        irreps_out: Irreps,
        paths: Sequence[Path],
        *,
        internal_weights: bool,
        shared_weights: bool | None,
    ) -> TensorSquare:
        """A square with exactly these paths (normalizations ``"none"``: the paths' weights
        carry them), as :func:`~equidyn.o3.from_e3nn` builds from e3nn's instructions."""
        sq = cls.__new__(cls)
        TensorProduct.__init__(
            sq,
            irreps_in,
            irreps_in,
            irreps_out,
            paths,
            irrep_normalization="none",
            path_normalization="none",
            internal_weights=internal_weights,
            shared_weights=shared_weights,
        )
        sq.irreps_in = irreps_in
        return sq

    def forward(self, x: Tensor, weight: Tensor | None = None) -> Tensor:  # type: ignore[override]
        return super().forward(x, x, weight)
