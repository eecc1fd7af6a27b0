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
==========  ============================  ==============================  =============

An unweighted path uses :math:`w \equiv 1`. The weights of all weighted paths are
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
  :math:`\alpha^2 = a` (``"none"``).

So with unit-variance inputs and weights (the initialisation), outputs have unit variance.
These are the formulas of e3nn 0.6, so modules with copied weights give the same numbers.

**Speed.** The kernels contract the second input with the sparse Clebsch–Gordan tensor first
(one small GEMM) to obtain, per sample, an :math:`l_1 \to (l_3, \dots)` matrix for all paths
that share an input block, and apply it to all channels at once with one batched matmul;
channel weights are applied to the result. Fully connected ``uvw`` paths contract the
channels with large GEMMs, each path contracting whichever of its two inputs or its output has
the smallest irrep dimension with the weights first. See ``docs/performance.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from equidyn.o3._native import NativeConv, conv_tp
from equidyn.o3._tp_kernels import (
    ConvFunction,
    ConvGroup,
    ConvPlan,
    ConvRun,
    WeightedOuterContraction,
    _bmm,
    plan_runs,
    weighted_outer_contraction,
)
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

_MODES = ("uvw", "uvu", "uuu", "uvuv")
_IRREP_NORMS = ("component", "norm", "none")
_PATH_NORMS = ("element", "path", "none")


@dataclass(frozen=True)
class Path:
    """One path of a tensor product: block ``in1`` of the first input times block ``in2`` of
    the second, into block ``out`` of the output (indices into the three ``Irreps``).

    ``mode`` is the channel pattern (``"uvw"``, ``"uvu"``, ``"uuu"`` or ``"uvuv"``, see the
    module docstring) and ``weighted`` whether it has learnable weights.

    >>> Path(0, 1, 2, "uvu", True)
    Path(in1=0, in2=1, out=2, mode='uvu', weighted=True)
    """

    in1: int
    in2: int
    out: int
    mode: str = "uvw"
    weighted: bool = True

    def __post_init__(self) -> None:
        for name in ("in1", "in2", "out"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"Path.{name} must be a non-negative int, got {v!r}")
        if self.mode not in _MODES:
            raise ValueError(f"Path.mode must be one of {_MODES}, got {self.mode!r}")
        if not isinstance(self.weighted, bool):
            raise TypeError(f"Path.weighted must be a bool, got {self.weighted!r}")


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


def _full_paths(
    irreps_in1: Irreps, irreps_in2: Irreps, filter_ir_out: Any
) -> tuple[Irreps, list[tuple[int, int, int]]]:
    """All (i1, i2, ir_out) of a full product, outputs sorted (stable), as in e3nn."""
    keep = _filter_set(filter_ir_out)
    outs: list[tuple[int, Irrep]] = []
    triples: list[tuple[int, int, int]] = []
    for i1, (mul1, ir1) in enumerate(irreps_in1):
        for i2, (mul2, ir2) in enumerate(irreps_in2):
            for _, ir3 in ir1 * ir2:
                if keep is not None and ir3 not in keep:
                    continue
                triples.append((i1, i2, len(outs)))
                outs.append((mul1 * mul2, ir3))
    srt = Irreps(outs).sort()
    return srt.irreps, [(a, b, srt.p[c]) for a, b, c in triples]


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
    return _full_paths(Irreps(irreps1), Irreps(irreps2), filter_ir_out)[0]


def _fan_in(mode: str, mul1: int, mul2: int) -> int:
    return {"uvw": mul1 * mul2, "uvu": mul2, "uuu": 1, "uvuv": 1}[mode]


def _weight_shape(mode: str, mul1: int, mul2: int, mul_out: int) -> tuple[int, ...]:
    return {
        "uvw": (mul1, mul2, mul_out),
        "uvu": (mul1, mul2),
        "uuu": (mul1,),
        "uvuv": (mul1, mul2),
    }[mode]


class TensorProduct(nn.Module):
    r"""The general equivariant tensor product :math:`z = x^{(1)} \otimes_w x^{(2)}`, a sum of
    :class:`Path` contributions (formulas and normalization in the module docstring).

    Args:
        irreps_in1, irreps_in2, irreps_out: the irreps of the inputs and of the output.
        paths: the :class:`Path` list; each checks ``p_out = p1 p2``, the triangle rule and
            the multiplicities of its mode (``uvu``: W = U, ``uuu``: U = V = W, ``uvuv``:
            W = U V). Output blocks that no path reaches are zero.
        irrep_normalization: ``"component"`` (default), ``"norm"`` or ``"none"``.
        path_normalization: ``"element"`` (default), ``"path"`` or ``"none"``.
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
    """

    def __init__(
        self,
        irreps_in1: Irreps | str,
        irreps_in2: Irreps | str,
        irreps_out: Irreps | str,
        paths: Sequence[Path],
        *,
        irrep_normalization: str = "component",
        path_normalization: str = "element",
        internal_weights: bool | None = None,
        shared_weights: bool | None = None,
    ) -> None:
        super().__init__()
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
        self.paths: tuple[Path, ...] = tuple(paths)
        for p in self.paths:
            self._check_path(p)
        if internal_weights is None:
            internal_weights = shared_weights is not False
        if internal_weights and shared_weights is False:
            raise ValueError("internal_weights=True needs shared_weights (not False)")
        self.internal_weights = bool(internal_weights)
        self.shared_weights = True if internal_weights else shared_weights

        # weight layout and normalization coefficients
        self._wshapes: list[tuple[int, ...]] = []
        self._woffsets: list[int] = []
        numel = 0
        for p in self.paths:
            shape = self._path_weight_shape(p)
            self._wshapes.append(shape)
            self._woffsets.append(numel)
            numel += math.prod(shape) if p.weighted else 0
        self.weight_numel = numel
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
        ok = {
            "uvw": True,
            "uvu": m3 == m1,
            "uuu": m1 == m2 == m3,
            "uvuv": m3 == m1 * m2,
        }[p.mode]
        if not ok:
            need = {"uvu": "mul_out == mul1", "uuu": "mul1 == mul2 == mul_out"}.get(
                p.mode, "mul_out == mul1 * mul2"
            )
            raise ValueError(
                f"{p}: mode {p.mode!r} needs {need}, got mul1={m1}, mul2={m2}, mul_out={m3}"
            )

    def _path_weight_shape(self, p: Path) -> tuple[int, ...]:
        return _weight_shape(
            p.mode,
            self.irreps_in1[p.in1].mul,
            self.irreps_in2[p.in2].mul,
            self.irreps_out[p.out].mul,
        )

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
        return math.sqrt(a / x) if x > 0 else math.sqrt(a)

    def _cg(self, p: Path) -> Tensor:
        """alpha * C^{l1 l2 l3} in float64, shape (d1, d2, d3)."""
        l1, l2, l3 = (
            self.irreps_in1[p.in1].ir.l,
            self.irreps_in2[p.in2].ir.l,
            self.irreps_out[p.out].ir.l,
        )
        return wigner_3j(l1, l2, l3, dtype=torch.float64) * self._coeffs[self.paths.index(p)]

    def _build_plan(self) -> None:
        """Static plan of kernel groups; constants kept in float64 (``_exact``) and registered
        as non-persistent buffers that follow ``.to()`` (re-rounded from float64 on every dtype
        change, see ``_apply``)."""
        ir1s, ir2s, outs = self.irreps_in1, self.irreps_in2, self.irreps_out
        live = [
            i
            for i, p in enumerate(self.paths)
            if ir1s[p.in1].mul > 0 and ir2s[p.in2].mul > 0 and outs[p.out].mul > 0
        ]
        self._exact: dict[str, Tensor] = {}
        self._uvu_groups: list[dict[str, Any]] = []
        self._uvw_groups: list[dict[str, Any]] = []
        self._other: list[dict[str, Any]] = []
        n_const = 0

        def const(t: Tensor) -> str:
            nonlocal n_const
            name = f"_c{n_const}"
            n_const += 1
            self._exact[name] = t.contiguous()
            return name

        # uvu: one group per in1 block
        for a in range(len(ir1s)):
            idx = [i for i in live if self.paths[i].mode == "uvu" and self.paths[i].in1 == a]
            if not idx:
                continue
            d1 = ir1s[a].ir.dim
            widths = []
            for i in idx:
                p = self.paths[i]
                widths.append(ir2s[p.in2].mul * outs[p.out].ir.dim)
            single = all(ir2s[self.paths[i].in2].mul == 1 for i in idx)
            g: dict[str, Any] = {"a": a, "paths": idx, "widths": widths, "single": single}
            if single:
                # one GEMM with the whole x2: C_a [dim2, d1 * K]
                K = sum(widths)
                C = torch.zeros(ir2s.dim, d1, K, dtype=torch.float64)
                k0 = 0
                sl2 = ir2s.slices()
                for i, wd in zip(idx, widths):
                    p = self.paths[i]
                    C[sl2[p.in2], :, k0 : k0 + wd] = self._cg(p).transpose(0, 1)
                    k0 += wd
                g["C"] = const(C.reshape(ir2s.dim, d1 * K))
                g["K"] = K
            else:
                g["C"] = [
                    const(
                        self._cg(self.paths[i])
                        .transpose(0, 1)
                        .reshape(-1, d1 * outs[self.paths[i].out].ir.dim)
                    )
                    for i in idx
                ]
            self._uvu_groups.append(g)

        # uvw: the dense weight contraction dominates; its cost is proportional to the
        # dimension of the side contracted with the weights first, so each path picks the
        # smallest of d1, d2, d3. Per (out block, in1 block): the paths with d1 smallest
        # contract x1 with their stacked weights first (one GEMM, "x1"); those with d2 smallest
        # contract x2 first ("x2", one group per path); the others form T[z, k, (v, u)] and
        # contract it with the stacked weights (one GEMM, "out").
        for c in range(len(outs)):
            for a in range(len(ir1s)):
                idx = [
                    i
                    for i in live
                    if self.paths[i].mode == "uvw"
                    and self.paths[i].out == c
                    and self.paths[i].in1 == a
                ]
                if not idx:
                    continue
                d1, d3 = ir1s[a].ir.dim, outs[c].ir.dim
                by_kind: dict[str, list[int]] = {"x1": [], "x2": [], "out": []}
                for i in idx:
                    d2 = ir2s[self.paths[i].in2].ir.dim
                    if d1 < d3 and d1 <= d2:
                        by_kind["x1"].append(i)
                    elif d2 < d3:
                        by_kind["x2"].append(i)
                    else:
                        by_kind["out"].append(i)
                for kind in ("x1", "out"):  # C'_p [d2, d3 * d1] (rows j, columns (k, i))
                    if by_kind[kind]:
                        cs = [
                            const(self._cg(self.paths[i]).permute(1, 2, 0).reshape(-1, d3 * d1))
                            for i in by_kind[kind]
                        ]
                        self._uvw_groups.append(
                            {"kind": kind, "a": a, "c": c, "paths": by_kind[kind], "C": cs}
                        )
                for i in by_kind["x2"]:  # C''_p [d1, d3 * d2] (rows i, columns (k, j))
                    cname = const(self._cg(self.paths[i]).permute(0, 2, 1).reshape(d1, -1))
                    self._uvw_groups.append(
                        {"kind": "x2", "a": a, "c": c, "paths": [i], "C": [cname]}
                    )

        for i in live:
            p = self.paths[i]
            if p.mode in ("uuu", "uvuv"):
                d1 = ir1s[p.in1].ir.dim
                C = self._cg(p)
                self._other.append({"path": i, "C": const(C.reshape(d1, -1))})

        self._conv_plan, self._conv_consts = self._make_conv_plan(live, const)
        self._native: NativeConv | None = None
        if self._conv_plan is not None:
            self._native = NativeConv(
                self._conv_plan, [self._exact[name] for name in self._conv_consts]
            )
        for name, t in self._exact.items():
            self.register_buffer(name, t.to(torch.get_default_dtype()), persistent=False)

    def _make_conv_plan(self, live: list[int], const: Any) -> tuple[ConvPlan | None, list[str]]:
        """Plan of the eager fast kernel, when every path is a weighted ``uvu`` path whose
        second input block has multiplicity 1 (the convolution); else ``None``. Registers one
        constant per group, ``C_a`` ``[dim2, K * d1]`` with columns ``(k, i)`` and the paths'
        rows ``k`` ordered run by run (see :func:`equidyn.o3._tp_kernels.plan_runs`)."""
        if not live or self._uvw_groups or self._other:
            return None, []
        if not all(g["single"] for g in self._uvu_groups):
            return None, []
        if not all(self.paths[i].weighted for g in self._uvu_groups for i in g["paths"]):
            return None, []
        sl1, sl2, slo = self.irreps_in1.slices(), self.irreps_in2.slices(), self.irreps_out.slices()
        written: set[int] = set()
        groups, names = [], []
        for g in self._uvu_groups:
            a = g["a"]
            U, d1 = self.irreps_in1[a].mul, self.irreps_in1[a].ir.dim
            order = sorted(g["paths"], key=lambda i: slo[self.paths[i].out].start)
            info = []
            for i in order:
                p = self.paths[i]
                info.append(
                    (
                        slo[p.out].start,
                        self.irreps_out[p.out].ir.dim,
                        self._woffsets[i],
                        p.out not in written,
                    )
                )
                written.add(p.out)
            heads, members = plan_runs(info, U)
            C = torch.zeros(self.irreps_in2.dim, g["K"], d1, dtype=torch.float64)
            runs, k0 = [], 0
            for (off, d3, w_off, first), mem in zip(heads, members):
                runs.append(ConvRun(k0, len(mem), d3, off, w_off, first))
                for j in mem:
                    p = self.paths[order[j]]
                    # cg [d1, d2, d3] -> rows j of x2, columns (k, i)
                    C[sl2[p.in2], k0 : k0 + d3, :] = self._cg(p).permute(1, 2, 0)
                    k0 += d3
            names.append(const(C.reshape(self.irreps_in2.dim, g["K"] * d1)))
            groups.append(ConvGroup(sl1[a].start, U, d1, g["K"], tuple(runs)))
        covered = all(c in written for c, (m, _) in enumerate(self.irreps_out) if m > 0)
        x1_covered = sum(g.U * g.d1 for g in groups) == self.irreps_in1.dim
        w_covered = sum(g.U * r.Q for g in groups for r in g.runs) == self.weight_numel
        plan = ConvPlan(
            tuple(groups),
            self.irreps_out.dim,
            self.irreps_in1.dim,
            self.irreps_in2.dim,
            self.weight_numel,
            covered,
            x1_covered,
            w_covered,
        )
        return plan, names

    def _apply(self, fn: Any, *args: Any, **kw: Any) -> TensorProduct:
        super()._apply(fn, *args, **kw)
        # keep the constants exactly rounded from float64 whatever dtype sequence was applied
        for name, exact in self._exact.items():
            cur = getattr(self, name)
            setattr(self, name, exact.to(device=cur.device, dtype=cur.dtype))
        return self

    # ------------------------------------------------------------------ forward
    def _weight_views(self, weight: Tensor, shared: bool, Z: int) -> list[Tensor | None]:
        """Per path: weight view of shape (U, V, W)/(U, V)/(U,) (shared) or (Z, ...)."""
        sizes = [math.prod(s) if p.weighted else 0 for p, s in zip(self.paths, self._wshapes)]
        parts = torch.split(weight, sizes, dim=-1) if self.paths else ()
        out: list[Tensor | None] = []
        for p, s, w in zip(self.paths, self._wshapes, parts):
            if not p.weighted:
                out.append(None)
            elif shared:
                out.append(w.reshape(s))
            else:
                out.append(w.reshape((Z, *s)))
        return out

    def forward(self, x1: Tensor, x2: Tensor, weight: Tensor | None = None) -> Tensor:
        d1, d2 = self.irreps_in1.dim, self.irreps_in2.dim
        if x1.ndim < 1 or x1.shape[-1] != d1:
            raise ValueError(
                f"x1 has shape {tuple(x1.shape)}, expected (..., {d1}) "
                f"for irreps_in1 {self.irreps_in1}"
            )
        if x2.ndim < 1 or x2.shape[-1] != d2:
            raise ValueError(
                f"x2 has shape {tuple(x2.shape)}, expected (..., {d2}) "
                f"for irreps_in2 {self.irreps_in2}"
            )
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
        out = self._main(x1, x2, weight, shared, Z)  # [Z, irreps_out.dim]
        return out.reshape(*batch, self.irreps_out.dim)

    def _main(self, x1: Tensor, x2: Tensor, weight: Tensor, shared: bool, Z: int) -> Tensor:
        if self._conv_plan is not None:
            # fast paths (same numbers): the native kernel (equidyn.o3._native; a custom
            # operator, also under torch.compile), else in eager mode the torch-op kernel
            # (equidyn.o3._tp_kernels), else the functional version
            if self._native is not None and self._native.usable(x1, x2, weight):
                return conv_tp(x1, x2, weight, self._native.key)  # [Z, irreps_out.dim]
        if self._conv_plan is not None and not torch.compiler.is_compiling():
            consts = [getattr(self, name) for name in self._conv_consts]
            return ConvFunction.apply(
                self._conv_plan, self._reference, x1, x2, weight, *consts
            )  # [Z, irreps_out.dim]
        return self._functional(x1, x2, weight, shared, Z)

    def _reference(self, x1: Tensor, x2: Tensor, weight: Tensor) -> Tensor:
        return self._functional(x1, x2, weight, weight.ndim == 1, x1.shape[0])

    def _functional(self, x1: Tensor, x2: Tensor, weight: Tensor, shared: bool, Z: int) -> Tensor:
        """All kernels from differentiable torch ops (what torch.compile traces)."""
        ir1s, ir2s, outs = self.irreps_in1, self.irreps_in2, self.irreps_out
        x1b = [
            t.reshape(Z, m, ir.dim)
            for t, (m, ir) in zip(torch.split(x1, [mi.dim for mi in ir1s], dim=1), ir1s)
        ]
        x2b = [
            t.reshape(Z, m, ir.dim)
            for t, (m, ir) in zip(torch.split(x2, [mi.dim for mi in ir2s], dim=1), ir2s)
        ]
        ws = self._weight_views(weight, shared, Z)
        contrib: list[list[Tensor]] = [[] for _ in outs]

        for g in self._uvu_groups:
            xa = x1b[g["a"]]  # [Z, U, d1]
            U, d1 = xa.shape[1], xa.shape[2]
            if g["single"]:
                M = (x2 @ getattr(self, g["C"])).reshape(Z, d1, g["K"])  # [Z, d1, K]
            else:
                Ms = []
                for i, cname in zip(g["paths"], g["C"]):
                    p = self.paths[i]
                    xb = x2b[p.in2]  # [Z, V, d2]
                    V, d3 = xb.shape[1], outs[p.out].ir.dim
                    m = (xb.flatten(0, 1) @ getattr(self, cname)).reshape(Z, V, d1, d3)
                    Ms.append(m.transpose(1, 2).reshape(Z, d1, V * d3))
                M = torch.cat(Ms, dim=2)  # [Z, d1, K]
            y = _bmm(xa, M, inplace=False)  # [Z, U, K] (small: broadcast multiply-adds)
            for i, piece in zip(g["paths"], torch.split(y, g["widths"], dim=2)):
                p = self.paths[i]
                V, d3 = ir2s[p.in2].mul, outs[p.out].ir.dim
                w = ws[i]
                if V == 1:
                    r = piece if w is None else piece * w.reshape(-1, U, 1)  # [Z, U, d3]
                else:
                    piece = piece.reshape(Z, U, V, d3)
                    if w is None:
                        r = piece.sum(2)
                    else:
                        r = (piece * w.reshape(-1, U, V, 1)).sum(2)  # [Z, U, d3]
                contrib[p.out].append(r.reshape(Z, U * d3))

        uvw_acc: dict[int, Tensor] = {}
        for g in self._uvw_groups:
            xa = x1b[g["a"]]  # [Z, U, d1]
            U, d1 = xa.shape[1], xa.shape[2]
            c = g["c"]
            Wo, d3 = outs[c].mul, outs[c].ir.dim
            wts = []
            for i in g["paths"]:
                w = ws[i]
                if w is None:
                    p = self.paths[i]
                    w = xa.new_ones(U, ir2s[p.in2].mul, Wo)
                wts.append(w)  # [(Z,) U, V, Wo]
            if g["kind"] == "x1":
                # A[z, i, (b, v), w] = sum_u x1[z, u, i] w_b[u, v, w]
                Wcat = torch.cat([w.flatten(-2) for w in wts], dim=-1)  # [(Z,) U, sumV * Wo]
                xt = xa.transpose(1, 2)  # [Z, d1, U]
                if Wcat.ndim == 2:
                    A = xt.reshape(Z * d1, U) @ Wcat  # [Z * d1, sumV * Wo]
                else:
                    A = torch.bmm(xt, Wcat)  # [Z, d1, sumV * Wo]
                # B[z, k, i, (b, v)] = sum_j x2_b[z, v, j] C_b[i, j, k]
                Bs = []
                for i, cname in zip(g["paths"], g["C"]):
                    xb = x2b[self.paths[i].in2]  # [Z, V, d2]
                    V = xb.shape[1]
                    m = (xb.flatten(0, 1) @ getattr(self, cname)).reshape(Z, V, d3, d1)
                    Bs.append(m.permute(0, 2, 3, 1))  # [Z, d3, d1, V]
                B = torch.cat(Bs, dim=3) if len(Bs) > 1 else Bs[0].contiguous()
                r = torch.bmm(
                    B.flatten(2), A.reshape(Z, B.shape[2] * B.shape[3], Wo)
                )  # [Z, d3, Wo]
            elif g["kind"] == "x2":
                # A[z, j, u, w] = sum_v x2[z, v, j] w[u, v, w]
                p = self.paths[g["paths"][0]]
                xb = x2b[p.in2]  # [Z, V, d2]
                V, d2 = xb.shape[1], xb.shape[2]
                w = wts[0]
                if w.ndim == 3:
                    wv = w.transpose(0, 1).reshape(V, U * Wo)
                    A = xb.transpose(1, 2).reshape(Z * d2, V) @ wv  # [Z * d2, U * Wo]
                else:
                    A = torch.einsum("zvj,zuvw->zjuw", xb, w)  # [Z, d2, U, Wo]
                # B[z, k, j, u] = sum_i x1[z, u, i] C[i, j, k]
                m = (xa.reshape(Z * U, d1) @ getattr(self, g["C"][0])).reshape(Z, U, d3, d2)
                B = m.permute(0, 2, 3, 1).reshape(Z, d3, d2 * U)
                r = torch.bmm(B, A.reshape(Z, d2 * U, Wo))  # [Z, d3, Wo]
            else:
                Ms, Wm = [], []
                for i, cname, w in zip(g["paths"], g["C"], wts):
                    p = self.paths[i]
                    xb = x2b[p.in2]  # [Z, V, d2]
                    V = xb.shape[1]
                    m = (xb.flatten(0, 1) @ getattr(self, cname)).reshape(Z, V, d3, d1)
                    Ms.append(m.transpose(1, 2))  # [Z, d3, V, d1]
                    # rows ordered (v, u)
                    Wm.append(w.transpose(-3, -2).reshape(*w.shape[:-3], V * U, Wo))
                M = torch.cat(Ms, dim=2) if len(Ms) > 1 else Ms[0].contiguous()
                M = M.flatten(1, 2)  # [Z, d3 * sumV, d1]
                Wcat = torch.cat(Wm, dim=-2) if len(Wm) > 1 else Wm[0]  # [(Z,) sumV * U, Wo]
                # T = M @ x1^T [Z, d3 * sumV, U], then T @ Wcat; T is formed again in the
                # backward instead of being kept (it is the largest intermediate)
                if torch.compiler.is_compiling():
                    r = checkpoint(
                        weighted_outer_contraction, M, xa.transpose(1, 2), Wcat, use_reentrant=False
                    )
                else:
                    r = WeightedOuterContraction.apply(M, xa.transpose(1, 2), Wcat)  # [Z, d3, Wo]
            uvw_acc[c] = r if c not in uvw_acc else uvw_acc[c] + r
        for c, r in uvw_acc.items():
            contrib[c].append(r.transpose(1, 2).flatten(1))

        for g in self._other:
            i = g["path"]
            p = self.paths[i]
            xa, xb = x1b[p.in1], x2b[p.in2]  # [Z, U, d1], [Z, V, d2]
            U, V = xa.shape[1], xb.shape[1]
            d2, d3 = xb.shape[2], outs[p.out].ir.dim
            t = (xa.flatten(0, 1) @ getattr(self, g["C"])).reshape(Z, U, d2, d3)
            w = ws[i]
            if p.mode == "uuu":
                r = (t * xb.unsqueeze(-1)).sum(2)  # [Z, U, d3]
                if w is not None:
                    r = r * w.reshape(-1, U, 1)
            else:  # uvuv
                r = torch.einsum("zujk,zvj->zuvk", t, xb)  # [Z, U, V, d3]
                if w is not None:
                    r = r * w.reshape(-1, U, V, 1)
            contrib[p.out].append(r.flatten(1))

        blocks = []
        for c, (mul, ir) in enumerate(outs):
            parts = contrib[c]
            if not parts:
                blocks.append(x1.new_zeros(Z, mul * ir.dim))
            else:
                b = parts[0]
                for extra in parts[1:]:
                    b = b + extra
                blocks.append(b)
        if not blocks:
            return x1.new_zeros(Z, 0)
        return torch.cat(blocks, dim=1) if len(blocks) > 1 else blocks[0]

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
        irreps_out, triples = _full_paths(i1, i2, filter_ir_out)
        super().__init__(
            i1,
            i2,
            irreps_out,
            [Path(a, b, c, "uvuv", False) for a, b, c in triples],
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
        keep = _filter_set(filter_ir_out)
        outs: list[tuple[int, Irrep]] = []
        triples = []
        for a, (mul1, ir1) in enumerate(i1):
            for b, (_, ir2) in enumerate(i2):
                for _, ir3 in ir1 * ir2:
                    if keep is None or ir3 in keep:
                        triples.append((a, b, len(outs)))
                        outs.append((mul1, ir3))
        srt = Irreps(outs).sort()
        super().__init__(
            i1,
            i2,
            srt.irreps,
            [Path(a, b, srt.p[c], "uvu", True) for a, b, c in triples],
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
        keep = _filter_set(filter_ir_out)
        outs: list[tuple[int, Irrep]] = []
        paths = []
        for k, ((mul, ir1), (_, ir2)) in enumerate(zip(i1, i2)):
            for _, ir3 in ir1 * ir2:
                if keep is None or ir3 in keep:
                    paths.append(Path(k, k, len(outs), "uuu", False))
                    outs.append((mul, ir3))
        super().__init__(
            i1,
            i2,
            Irreps(outs),
            paths,
            irrep_normalization=irrep_normalization,
            internal_weights=False,
        )


class TensorSquare(TensorProduct):
    r"""The product of an input with itself, :math:`x \otimes x`, keeping each unordered pair
    of channels once: for blocks :math:`a \le b` and all output irreps :math:`l_3` (in
    ``filter_ir_out``), a ``uvuv`` path; for :math:`a = b` the symmetric-square duplicate
    pairs are not removed (the output has :math:`U^2` channels, as :class:`FullTensorProduct`).
    Called with one argument.

    >>> sq = TensorSquare("1x1o", filter_ir_out=["0e"])
    >>> x = torch.tensor([[1.0, 2.0, 2.0]])
    >>> sq(x) * 3**0.5  # |x|^2
    tensor([[9.0000]])
    """

    def __init__(
        self,
        irreps_in: Irreps | str,
        filter_ir_out: Iterable[Any] | None = None,
        *,
        irrep_normalization: str = "component",
    ) -> None:
        ir = Irreps(irreps_in)
        keep = _filter_set(filter_ir_out)
        outs: list[tuple[int, Irrep]] = []
        triples = []
        for a, (m1, ir1) in enumerate(ir):
            for b, (m2, ir2) in enumerate(ir):
                if b < a:
                    continue
                for _, ir3 in ir1 * ir2:
                    if keep is None or ir3 in keep:
                        triples.append((a, b, len(outs)))
                        outs.append((m1 * m2, ir3))
        srt = Irreps(outs).sort()
        super().__init__(
            ir,
            ir,
            srt.irreps,
            [Path(a, b, srt.p[c], "uvuv", False) for a, b, c in triples],
            irrep_normalization=irrep_normalization,
            internal_weights=False,
        )
        self.irreps_in = ir

    def forward(self, x: Tensor, weight: Tensor | None = None) -> Tensor:  # type: ignore[override]
        return super().forward(x, x, weight)
