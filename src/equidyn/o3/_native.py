r"""Native (C, compiled on first use) CPU kernel of the convolution tensor product.

The hot loop of NequIP, MACE, TFN and SEGNN is a channelwise ``uvu`` tensor product of node
features with the spherical harmonics of each edge, weighted per edge and channel. With the
plan of :mod:`equidyn.o3._tp_plan` (groups of paths per ``x1`` block ``a``, runs of paths
with adjacent outputs), every sample :math:`z` computes, per group,

.. math::
    M_{k i} = \sum_j x^{(2)}_{z j}\, C^{(a)}_{j k i}, \qquad
    Y_{k u} = \sum_i M_{k i}\, x^{(1)}_{z, a, u i}, \qquad
    \mathrm{out}_{z, p, u k'} = w_{z, p, u}\, Y_{k_0(p) + k', u},

and the backward, from :math:`G = \partial L / \partial\,\mathrm{out}` and
:math:`\bar G_{k u} = w_{z,p,u} G_{z,p,u k'}`,

.. math::
    \frac{\partial L}{\partial w_{z p u}} = \sum_{k'} G_{z,p,u k'} Y_{k u}, \quad
    \frac{\partial L}{\partial x^{(1)}_{z a u i}} = \sum_k M_{k i} \bar G_{k u}, \quad
    \frac{\partial L}{\partial x^{(2)}_{z j}} = \sum_{k i} C^{(a)}_{j k i}
        \sum_u \bar G_{k u}\, x^{(1)}_{z a u i}.

Everything of one sample stays in a few kilobytes of scratch (``C`` is stored sparse), so the
kernel streams its inputs and outputs once per pass: no ``[Z, K, U]`` intermediates are
written to memory or saved for the backward (the backward recomputes ``M`` and ``Y``), which
is where the torch-op kernel spends its time and memory. Samples are split over
``torch.get_num_threads()`` POSIX threads; the inner loops over channels ``u`` vectorise.

The C source ships next to this file. It is compiled with the system C compiler (``$CC``,
else ``cc``) into ``<cache>/kernels/`` (``$EQUIDYN_CACHE`` or ``~/.cache/equidyn``), written
atomically, keyed by the source, the flags and the CPU, once per real type. Where there is
no compiler, the compilation fails, the tensors are not CPU float32/float64, or
``EQUIDYN_NATIVE=0`` is set, :func:`available` is false and equidyn uses the torch-op kernel
(same numbers; one warning says why). The kernel is the custom operator :func:`conv_tp`, so
``torch.compile`` keeps it as one call and every derivative order runs native kernels.

>>> import torch
>>> from equidyn import o3
>>> tp = o3.ChannelwiseTensorProduct("8x0e+8x1o", "0e+1o", ["0e", "1o", "1e"])
>>> x1, x2, w = torch.randn(5, 32), torch.randn(5, 4), torch.randn(5, tp.weight_numel)
>>> with use_native(False):
...     ref = tp(x1, x2, w)
>>> bool(torch.allclose(tp(x1, x2, w), ref, atol=1e-5))
True
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from equidyn._cache import default_cache_dir

__all__ = ["NativeConv", "available", "conv_tp", "conv_tp_backward", "use_native"]

_SOURCE = Path(__file__).with_name("_native_conv.c")
_FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-pthread", "-fopenmp-simd"]
_REAL = {torch.float32: "float", torch.float64: "double"}
_lock = threading.Lock()
_libs: dict[torch.dtype, ctypes.CDLL | None] = {}
_failure: str | None = None
_enabled = os.environ.get("EQUIDYN_NATIVE", "1") != "0"

_i64 = ctypes.c_int64
_ptr = ctypes.c_void_p


def _cpu_key() -> str:
    """What ``-march=native`` depends on: the CPU model and its flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [ln for ln in lines if ln.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(keep)))


def _compile(dtype: torch.dtype) -> ctypes.CDLL:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler found (set $CC or install cc)")
    real = _REAL[dtype]
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join([source, " ".join(_FLAGS).encode(), real.encode(), cc.encode()])
        + _cpu_key().encode()
    ).hexdigest()[:16]
    directory = default_cache_dir() / "kernels"
    path = directory / f"conv_tp_{real}_{key}.so"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".conv_tp-", suffix=".so", dir=directory)
        os.close(fd)
        try:
            cmd = [cc, *_FLAGS, f"-DREAL={real}", str(_SOURCE), "-o", tmp]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if res.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr.strip()[-2000:]}")
            os.chmod(tmp, 0o755)
            os.replace(tmp, path)  # atomic: concurrent processes never load a partial file
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    lib = ctypes.CDLL(str(path))
    lib.conv_forward.restype = ctypes.c_int
    lib.conv_forward.argtypes = [_i64] * 7 + [_ptr] * 9 + [ctypes.c_int]
    lib.conv_backward.restype = ctypes.c_int
    lib.conv_backward.argtypes = [_i64] * 6 + [_ptr] * 12 + [ctypes.c_int]
    return lib


def _library(dtype: torch.dtype) -> ctypes.CDLL | None:
    """The compiled kernel for ``dtype``, or ``None`` (after one warning) if it cannot be built."""
    global _failure
    if dtype not in _REAL:
        return None
    with _lock:
        if dtype not in _libs:
            if _failure is not None:
                _libs[dtype] = None
            else:
                try:
                    _libs[dtype] = _compile(dtype)
                except Exception as e:  # no compiler, failed build, unloadable library
                    _failure = f"{type(e).__name__}: {e}"
                    _libs[dtype] = None
                    warnings.warn(
                        "equidyn: the native tensor-product kernel is unavailable, using the "
                        f"slower torch-op kernel instead ({_failure})",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        return _libs[dtype]


def _built(dtype: torch.dtype) -> bool:
    """Whether the kernel for ``dtype`` is loaded; under ``torch.compile`` only what was
    built before tracing counts (building takes a lock and a subprocess)."""
    if torch.compiler.is_compiling():
        return _libs.get(dtype) is not None
    return _library(dtype) is not None


def available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether the native kernel is enabled and builds for ``dtype`` on this machine.

    >>> isinstance(available(), bool)
    True
    """
    return _enabled and _library(dtype) is not None


@contextlib.contextmanager
def use_native(enabled: bool) -> Iterator[None]:
    """Turn the native kernel on or off inside a ``with`` block (for comparisons and tests).

    >>> with use_native(False):
    ...     available()
    False
    """
    global _enabled
    before = _enabled
    _enabled = enabled
    try:
        yield
    finally:
        _enabled = before


def _p(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class NativeConv:
    """The plan of one convolution in the arrays the C kernel reads.

    ``groups`` ``[G, 8]``: ``x1_off, U, d1, K, nz_begin, nz_end, run_begin, run_end``;
    ``runs`` ``[R, 6]``: ``k0, Q, d3, out_off, w_off, first`` (see
    :class:`equidyn.o3._tp_plan.UvuRun`); the nonzero entries of every group's
    ``C_a`` ``[dim2, K, d1]`` as rows ``nz_j``, flat columns ``nz_ki = k d1 + i`` and values
    (float64, rounded once per dtype).
    """

    def __init__(self, plan: Any, constants: list[Tensor]) -> None:
        self._args = (plan, constants)
        groups, runs, js, kis, vals = [], [], [], [], []
        nz = 0
        for g, C in zip(plan.groups, constants):
            j, ki = torch.nonzero(C, as_tuple=True)  # C [dim2, K * d1], float64
            js.append(j)
            kis.append(ki)
            vals.append(C[j, ki])
            r0 = len(runs)
            runs.extend([r.k0, r.Q, r.d3, r.out_off, r.w_off, int(r.first)] for r in g.runs)
            groups.append([g.x1_off, g.U, g.d1, g.K, nz, nz + j.numel(), r0, len(runs)])
            nz += j.numel()
        self.plan = plan
        self.groups = torch.tensor(groups, dtype=torch.int64).reshape(-1, 8)
        self.runs = torch.tensor(runs, dtype=torch.int64).reshape(-1, 6)
        self.nz_j = torch.cat(js).to(torch.int64) if js else torch.zeros(0, dtype=torch.int64)
        self.nz_ki = torch.cat(kis).to(torch.int64) if kis else torch.zeros(0, dtype=torch.int64)
        self._values = torch.cat(vals) if vals else torch.zeros(0, dtype=torch.float64)
        self._by_dtype: dict[torch.dtype, Tensor] = {}
        self.key = next(_keys)  # how conv_tp finds this plan
        _PLANS[self.key] = self
        if _enabled:  # build (or load) the kernels now: torch.compile cannot do it
            for dtype in _REAL:
                _library(dtype)

    def __reduce__(self) -> tuple[Any, ...]:
        # a copy (pickle, deepcopy) is built anew, so that it registers a key of its own
        return (NativeConv, self._args)

    def _values_as(self, dtype: torch.dtype) -> Tensor:
        if dtype not in self._by_dtype:
            self._by_dtype[dtype] = self._values.to(dtype)
        return self._by_dtype[dtype]

    def _head(self, Z: int) -> list[Any]:
        p = self.plan
        return [Z, p.dim1, p.dim2, p.dim_out, p.numel, len(p.groups)]

    def _tail(self, dtype: torch.dtype) -> list[Any]:
        return [_p(self.groups), _p(self.runs), _p(self.nz_j), _p(self.nz_ki)] + [
            _p(self._values_as(dtype))
        ]

    def usable(self, x1: Tensor, x2: Tensor, w: Tensor) -> bool:
        """Whether these inputs can take the native kernel (CPU, float32/64, per-sample w)."""
        return (
            _enabled
            and x1.device.type == "cpu"
            and x1.dtype in _REAL
            and x2.dtype == x1.dtype
            and w.dtype == x1.dtype
            and x2.device.type == "cpu"
            and w.device.type == "cpu"
            and w.ndim == 2
            and _built(x1.dtype)
        )

    def forward(self, x1: Tensor, x2: Tensor, w: Tensor) -> Tensor:
        """``out`` ``[Z, dim_out]`` from x1 ``[Z, dim1]``, x2 ``[Z, dim2]``, w ``[Z, numel]``."""
        x1, x2, w = x1.contiguous(), x2.contiguous(), w.contiguous()
        Z = x1.shape[0]
        out = x1.new_empty(Z, self.plan.dim_out)
        if Z == 0:
            return out
        lib = _library(x1.dtype)
        assert lib is not None
        status = lib.conv_forward(
            *self._head(Z),
            int(self.plan.covered),
            *self._tail(x1.dtype),
            _p(x1),
            _p(x2),
            _p(w),
            _p(out),
            torch.get_num_threads(),
        )
        if status != 0:
            raise MemoryError("native tensor-product kernel: out of memory for its scratch")
        return out  # [Z, dim_out]

    def backward(
        self, g: Tensor, x1: Tensor, x2: Tensor, w: Tensor, need: tuple[bool, bool, bool]
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """Gradients of x1, x2, w (``None`` where ``need`` is false) from ``g`` ``[Z, dim_out]``."""
        g, x1, x2, w = g.contiguous(), x1.contiguous(), x2.contiguous(), w.contiguous()
        plan = self.plan
        gx1 = gx2 = gw = None
        if need[0]:
            gx1 = torch.empty_like(x1) if plan.x1_covered else torch.zeros_like(x1)
        if need[1]:
            gx2 = torch.empty_like(x2)
        if need[2]:
            gw = torch.empty_like(w) if plan.w_covered else torch.zeros_like(w)
        Z = x1.shape[0]
        if Z == 0 or not any(need):
            return gx1, gx2, gw
        lib = _library(x1.dtype)
        assert lib is not None
        status = lib.conv_backward(
            *self._head(Z),
            *self._tail(x1.dtype),
            _p(x1),
            _p(x2),
            _p(w),
            _p(g),
            _p(gx1),
            _p(gx2),
            _p(gw),
            torch.get_num_threads(),
        )
        if status != 0:
            raise MemoryError("native tensor-product kernel: out of memory for its scratch")
        return gx1, gx2, gw


#: live plans by key (weak: a plan lives as long as its module)
_PLANS: weakref.WeakValueDictionary[int, NativeConv] = weakref.WeakValueDictionary()
_keys = itertools.count()


@torch.library.custom_op("equidyn::conv_tp", mutates_args=())
def conv_tp(x1: Tensor, x2: Tensor, w: Tensor, plan: int) -> Tensor:
    """``out`` ``[Z, dim_out]`` of the convolution ``plan`` (a :attr:`NativeConv.key`) by the
    native kernel. A custom operator: ``torch.compile`` keeps it as one opaque call, and its
    derivatives of every order are again calls of the native kernels (see
    :func:`_conv_tp_double_backward`)."""
    return _PLANS[plan].forward(x1, x2, w)


@conv_tp.register_fake
def _(x1: Tensor, x2: Tensor, w: Tensor, plan: int) -> Tensor:
    return x1.new_empty(x1.shape[0], _PLANS[plan].plan.dim_out)


@torch.library.custom_op("equidyn::conv_tp_backward", mutates_args=())
def conv_tp_backward(
    g: Tensor, x1: Tensor, x2: Tensor, w: Tensor, plan: int, need: int = 7
) -> tuple[Tensor, Tensor, Tensor]:
    """The gradients of ``<g, conv_tp(x1, x2, w)>`` with respect to x1, x2 and w. ``need``
    is a bit mask (1: x1, 2: x2, 4: w): a gradient whose bit is clear is not computed, and an
    empty tensor of shape ``[0]`` stands in its place."""
    gx1, gx2, gw = _PLANS[plan].backward(g, x1, x2, w, _bits(need))
    return tuple(t if t is not None else x1.new_empty(0) for t in (gx1, gx2, gw))  # type: ignore[return-value]


@conv_tp_backward.register_fake
def _(
    g: Tensor, x1: Tensor, x2: Tensor, w: Tensor, plan: int, need: int = 7
) -> tuple[Tensor, Tensor, Tensor]:
    # the kernel returns contiguous gradients whatever the inputs' strides (the spherical
    # harmonics are stored component-major): empty_like would promise the inputs' strides
    return tuple(
        t.new_empty(t.shape) if b else t.new_empty(0) for t, b in zip((x1, x2, w), _bits(need))
    )  # type: ignore[return-value]


def _bits(need: int) -> tuple[bool, bool, bool]:
    return bool(need & 1), bool(need & 2), bool(need & 4)


def _mask(n1: bool, n2: bool, nw: bool) -> int:
    return int(n1) | 2 * int(n2) | 4 * int(nw)


def _save_conv(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    x1, x2, w, plan = inputs
    ctx.save_for_backward(x1, x2, w)
    ctx.plan = plan


def _save_conv_backward(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
    g, x1, x2, w, plan, need = inputs  # torch fills in the default of need
    ctx.save_for_backward(g, x1, x2, w)
    ctx.plan = plan
    ctx.need = need


def _conv_tp_backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
    x1, x2, w = ctx.saved_tensors
    need = ctx.needs_input_grad[:3]
    if not any(need):
        return None, None, None, None
    grads = conv_tp_backward(g, x1, x2, w, ctx.plan, _mask(*need))
    return (*(t if n else None for t, n in zip(grads, need)), None)


def _add(a: Tensor | None, b: Tensor) -> Tensor:
    return b if a is None else a + b


def _conv_tp_double_backward(
    ctx: Any, a1: Tensor | None, a2: Tensor | None, aw: Tensor | None
) -> tuple[Tensor | None, ...]:
    r"""Derivatives of :func:`conv_tp_backward`, from multilinearity alone.

    With :math:`F(g, x_1, x_2, w) = \langle g, T(x_1, x_2, w)\rangle` linear in each argument,
    the backward returns :math:`(\partial_{x_1} F, \partial_{x_2} F, \partial_w F)`, and the
    cotangents :math:`(a_1, a_2, a_w)` of those make the scalar
    :math:`S = F(g, a_1, x_2, w) + F(g, x_1, a_2, w) + F(g, x_1, x_2, a_w)`, whose gradients
    are forwards (for :math:`g`) and backwards (for :math:`x_1, x_2, w`) of the same kernel.
    Each backward computes only the gradients that are asked for and that its term has (the
    term of :math:`a_1` has none for :math:`x_1`).
    """
    g, *xs = ctx.saved_tensors  # x1, x2, w
    n_g, *need = ctx.needs_input_grad[:4]
    dg: Tensor | None = None
    dxs: list[Tensor | None] = [None, None, None]
    # term s puts its cotangent in the place of input s; a cotangent of an output that was
    # not computed (its bit clear) is ignored
    for s, (a, computed) in enumerate(zip((a1, a2, aw), _bits(ctx.need))):
        if a is None or not computed:
            continue
        args = [a if i == s else x for i, x in enumerate(xs)]
        if n_g:
            dg = _add(dg, conv_tp(*args, ctx.plan))
        want = [bool(n) and i != s for i, n in enumerate(need)]
        if any(want):
            grads = conv_tp_backward(g, *args, ctx.plan, _mask(*want))
            dxs = [_add(d, t) if wi else d for d, t, wi in zip(dxs, grads, want)]
    return dg, *dxs, None, None


conv_tp.register_autograd(_conv_tp_backward, setup_context=_save_conv)
conv_tp_backward.register_autograd(_conv_tp_double_backward, setup_context=_save_conv_backward)
