r"""Cartesian tensors of vectors (``1o`` indices) with index symmetries, as irreps.

``CartesianTensor("ij=ji")`` is the irreps ``1x0e+1x2e`` of a symmetric :math:`3\times3`
tensor (stress, polarizability: trace and traceless part), ``CartesianTensor("ij")`` the
``1x0e+1x1e+1x2e`` of a general one (:math:`3 \otimes 3 = 1 \oplus 3 \oplus 5`: trace,
antisymmetric part as a pseudovector, symmetric traceless part). The conversions are the
change of basis :math:`Q` of :class:`~equidyn.o3.ReducedTensorProducts` with every index
``1o``:

.. math::
    y_w = \sum_{a_1..a_n} Q_{w a_1 .. a_n} T_{a_1 .. a_n} \quad(\text{from\_cartesian}),
    \qquad T = \sum_w y_w Q_{w \dots} \quad(\text{to\_cartesian}).

The rows of :math:`Q` are orthonormal and span the tensors with the formula's symmetries, so
``to_cartesian(from_cartesian(T))`` is the projection of ``T`` on them (``T`` itself when it
has them) and ``from_cartesian(to_cartesian(y)) == y``. Both are equivariant: rotating ``T``
by :math:`R` on every index rotates ``y`` by ``D_from_matrix(R)``. Equal to e3nn's
``io.CartesianTensor``.
"""

from __future__ import annotations

import functools
from typing import Any

from torch import Tensor

from equidyn.o3.irreps import Irreps
from equidyn.o3.reduced_tensor_products import ReducedTensorProducts, parse_formula

__all__ = ["CartesianTensor"]


@functools.cache
def _reduced(formula: str) -> ReducedTensorProducts:
    irreps: dict[str, Any] = {c: "1o" for c in parse_formula(formula)[0]}
    return ReducedTensorProducts(formula, **irreps)


class CartesianTensor(Irreps):
    r"""The irreps of a Cartesian tensor with the symmetries of ``formula`` (maths in the
    module docstring); an :class:`~equidyn.o3.Irreps` with conversions.

    Attributes: ``formula``, ``indices`` (the letters, one per index of size 3).

    >>> CartesianTensor("ij=ji")
    1x0e+1x2e
    >>> CartesianTensor("ij")
    1x0e+1x1e+1x2e
    >>> import torch
    >>> t = torch.tensor([[1.0, 2.0, 0.0], [2.0, 3.0, 0.0], [0.0, 0.0, 5.0]])
    >>> ct = CartesianTensor("ij=ji")
    >>> y = ct.from_cartesian(t)
    >>> y.shape, round(y[0].item() * 3**0.5, 4)  # the trace, over sqrt(3)
    (torch.Size([6]), 9.0)
    >>> torch.allclose(ct.to_cartesian(y), t, atol=1e-6)
    True
    """

    formula: str
    indices: str

    def __new__(cls, formula: str) -> CartesianTensor:
        rtp = _reduced(formula)
        self = tuple.__new__(cls, tuple(rtp.irreps_out))
        self.formula = formula
        self.indices = parse_formula(formula)[0]
        return self

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (CartesianTensor, (self.formula,))

    def reduced_tensor_products(self, data: Tensor | None = None) -> ReducedTensorProducts:
        """The :class:`~equidyn.o3.ReducedTensorProducts` of the formula (``1o`` indices), in
        the dtype and on the device of ``data`` if given."""
        irreps: dict[str, Any] = {c: "1o" for c in self.indices}
        rtp = ReducedTensorProducts(self.formula, **irreps)
        if data is not None:
            rtp = rtp.to(device=data.device, dtype=data.dtype)
        return rtp

    def _Q(self, like: Tensor) -> Tensor:
        """``Q`` flattened, ``[dim, 3 ** n]``, in the dtype and on the device of ``like``."""
        Q = _reduced(self.formula)._exact  # float64
        return Q.flatten(1).to(dtype=like.dtype, device=like.device)

    def from_cartesian(self, data: Tensor, rtp: ReducedTensorProducts | None = None) -> Tensor:
        """Irreps ``(..., dim)`` of the tensors ``data`` ``(..., 3, ..., 3)`` (their part with
        the formula's symmetries)."""
        n = len(self.indices)
        if data.ndim < n or tuple(data.shape[data.ndim - n :]) != (3,) * n:
            raise ValueError(
                f"data has shape {tuple(data.shape)}, expected (..., {', '.join(['3'] * n)}) "
                f"for the formula {self.formula!r}"
            )
        Q = self._Q(data) if rtp is None else rtp.change_of_basis.flatten(1)
        return data.flatten(data.ndim - n) @ Q.T  # [..., dim]

    def to_cartesian(self, data: Tensor, rtp: ReducedTensorProducts | None = None) -> Tensor:
        """The Cartesian tensors ``(..., 3, ..., 3)`` of irreps ``data`` ``(..., dim)``."""
        if data.ndim < 1 or data.shape[-1] != self.dim:
            raise ValueError(
                f"data has shape {tuple(data.shape)}, expected (..., {self.dim}) for {self}"
            )
        Q = self._Q(data) if rtp is None else rtp.change_of_basis.flatten(1)
        n = len(self.indices)
        return (data @ Q).unflatten(-1, (3,) * n)  # [..., 3, ..., 3]

    def from_vectors(self, *xs: Tensor, rtp: ReducedTensorProducts | None = None) -> Tensor:
        """Irreps ``(..., dim)`` of the symmetrised outer product of vectors ``(..., 3)``."""
        if rtp is None:
            rtp = self.reduced_tensor_products(xs[0])
        return rtp(*xs)
