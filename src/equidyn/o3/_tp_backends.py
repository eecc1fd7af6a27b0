"""The backends that compute a tensor product, and the one rule that picks one.

Every backend declares, for a :class:`Bound` plan and the inputs of one call, whether it
``supports`` them, and ``run``\\ s them. :func:`select` returns the first of :data:`BACKENDS`
that supports the call:

1. ``native``: the C kernel of :mod:`equidyn.o3._native` for the convolution (every path a
   weighted ``uvu`` path with ``V = 1``) on CPU float32/float64 with per-sample weights; a
   custom operator, so also under ``torch.compile``.
2. ``torch-op``: the eager :class:`~equidyn.o3._tp_kernels.ConvFunction` for the convolution
   on any device (CUDA included), outside ``torch.compile``.
3. ``functional``: :mod:`equidyn.o3._tp_functional`, every plan, device and dtype.

A new backend (a GPU or an SO(2) kernel) is one more entry in that list. All of them compute
the same numbers (to rounding).

>>> from equidyn import o3
>>> tp = o3.FullyConnectedTensorProduct("2x0e", "1x0e", "2x0e")
>>> x = torch.randn(3, 2)
>>> select(tp._bound(), x, x[:, :1], tp.weight).name
'functional'
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from equidyn.o3 import _tp_functional
from equidyn.o3._native import NativeConv, conv_tp
from equidyn.o3._tp_kernels import ConvFunction
from equidyn.o3._tp_plan import TensorProductPlan

__all__ = ["BACKENDS", "Backend", "Bound", "select"]


class Bound(NamedTuple):
    """A plan with what one call needs: its constants (``plan.constants`` in the module's
    dtype and device) and the native kernel's handle (``None`` if the plan is no
    convolution)."""

    plan: TensorProductPlan
    constants: tuple[Tensor, ...]
    native: NativeConv | None


class Backend(Protocol):
    name: str

    def supports(self, bound: Bound, x1: Tensor, x2: Tensor, w: Tensor) -> bool:
        """Whether this backend computes the call (inputs ``[Z, dim]``, w ``[(Z,) numel]``)."""

    def run(self, bound: Bound, x1: Tensor, x2: Tensor, w: Tensor) -> Tensor:
        """``out`` ``[Z, irreps_out.dim]``."""


class NativeBackend:
    name = "native"

    def supports(self, bound: Bound, x1: Tensor, x2: Tensor, w: Tensor) -> bool:
        return bound.native is not None and bound.native.usable(x1, x2, w)

    def run(self, bound: Bound, x1: Tensor, x2: Tensor, w: Tensor) -> Tensor:
        assert bound.native is not None  # supports() checked it
        return conv_tp(x1, x2, w, bound.native.key)  # [Z, irreps_out.dim]


class TorchOpBackend:
    name = "torch-op"

    def supports(self, bound: Bound, x1: Tensor, x2: Tensor, w: Tensor) -> bool:
        return bound.plan.convolution and not torch.compiler.is_compiling()

    def run(self, bound: Bound, x1: Tensor, x2: Tensor, w: Tensor) -> Tensor:
        plan, consts = bound.plan, bound.constants
        reference = partial(_tp_functional.forward, plan, consts)  # for double backward
        Cs = [consts[g.const] for g in plan.uvu.groups]
        return ConvFunction.apply(plan.uvu, reference, x1, x2, w, *Cs)  # [Z, irreps_out.dim]


class FunctionalBackend:
    name = "functional"

    def supports(self, bound: Bound, x1: Tensor, x2: Tensor, w: Tensor) -> bool:
        return True

    def run(self, bound: Bound, x1: Tensor, x2: Tensor, w: Tensor) -> Tensor:
        return _tp_functional.forward(bound.plan, bound.constants, x1, x2, w)


#: the backends in order of preference; the last one supports every call
BACKENDS: tuple[Backend, ...] = (NativeBackend(), TorchOpBackend(), FunctionalBackend())


def select(bound: Bound, x1: Tensor, x2: Tensor, w: Tensor) -> Backend:
    """The first backend of :data:`BACKENDS` that supports this call."""
    for backend in BACKENDS:
        if backend.supports(bound, x1, x2, w):
            return backend
    raise RuntimeError("no tensor-product backend supports this call")  # the last supports all
