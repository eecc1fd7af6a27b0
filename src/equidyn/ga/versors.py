r"""The Pin(3,0,1) action on multivectors: the (twisted) sandwich product of a versor.

A versor ``u`` (a product of invertible vectors, i.e. of planes) acts by

.. math::  \rho_u(x) = u\,x\,u^{-1} \ (u \text{ even}), \qquad
           \rho_u(x) = u\,\hat x\,u^{-1} \ (u \text{ odd}),

with :math:`\hat x` the grade involution and :math:`u^{-1} = \tilde u / \langle u\tilde u\rangle_0`.
Planes act as reflections, their even products as rotations, translations and screw motions.
The action is an algebra automorphism that preserves grades, so the geometric product, the
outer product and the grade projections commute with it.

>>> import torch
>>> from equidyn.ga.embedding import embed_point, embed_translation, extract_point
>>> t = torch.tensor([1.0, 2.0, 3.0])
>>> extract_point(sandwich(embed_translation(t), embed_point(torch.zeros(3))))
tensor([1., 2., 3.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from equidyn.ga.blades import GRADES
from equidyn.ga.products import check_multivector, geometric_product, grade_involution, reverse

__all__ = ["sandwich", "versor_inverse", "versor_matrix"]

_EVEN = torch.tensor([g % 2 == 0 for g in GRADES])


def versor_inverse(u: Tensor) -> Tensor:
    """``u^{-1} = ũ / <u ũ>_0`` for a versor ``u`` ``(..., 16)``.

    Raises ``ValueError`` (eagerly) when ``<u ũ>_0`` vanishes (a null, non-invertible element).
    """
    check_multivector(u, "u")
    rev = reverse(u)
    norm2 = geometric_product(u, rev)[..., :1]  # [..., 1]
    if not torch.compiler.is_compiling() and bool((norm2.abs() < 1e-12).any()):
        raise ValueError("u is not invertible: <u ũ>_0 = 0 (is it a null multivector?)")
    return rev / norm2


def sandwich(u: Tensor, x: Tensor) -> Tensor:
    """``ρ_u(x)``: the twisted sandwich ``(u_even x + u_odd x̂) u^{-1}`` (broadcasting).

    For a versor exactly one of ``u_even``, ``u_odd`` is nonzero, so this is the formula of
    the module docstring without a branch on the parity.
    """
    check_multivector(x, "x")
    even = _EVEN.to(u.device)
    zero = torch.zeros((), dtype=u.dtype, device=u.device)
    u_even, u_odd = torch.where(even, u, zero), torch.where(even, zero, u)
    left = geometric_product(u_even, x) + geometric_product(u_odd, grade_involution(x))
    return geometric_product(left, versor_inverse(u))


def versor_matrix(u: Tensor) -> Tensor:
    """The matrix ``(..., 16, 16)`` of ``ρ_u``: ``ρ_u(x) = versor_matrix(u) @ x``."""
    check_multivector(u, "u")
    basis = torch.eye(16, dtype=u.dtype, device=u.device)  # [16 (blade), 16]
    cols = sandwich(u.unsqueeze(-2), basis)  # [..., 16 (input blade), 16 (output)]
    return cols.transpose(-1, -2).contiguous()
