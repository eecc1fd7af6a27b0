r"""Products and involutions of :math:`G(3,0,1)` multivectors ``(..., 16)``.

* geometric product :math:`xy`, outer (wedge) :math:`x \wedge y`, symmetric inner product
  :math:`x \cdot y = \sum_{a,b} \langle \langle x\rangle_a \langle y\rangle_b \rangle_{|a-b|}`;
* reverse :math:`\tilde x` (sign :math:`(-1)^{k(k-1)/2}` on grade k), grade involution
  :math:`\hat x` (sign :math:`(-1)^k`), grade projection :math:`\langle x\rangle_k`;
* dual :math:`x^*`, the right complement (:math:`e_A \wedge e_A^* = e_{0123}`), and the join
  (regressive product) :math:`x \vee y = (x^* \wedge y^*)^{-*}`;
* the equivariant join :math:`\mathrm{join}(x, y; z) = z_{0123}\,(x \vee y)`: the dual is
  equivariant only up to the sign of a reflection, which the pseudoscalar component of a
  reference multivector ``z`` (for instance the mean of the data) carries back;
* the invariant inner product :math:`\langle x, y\rangle = \langle \tilde x y\rangle_0`
  restricted to the blades without :math:`e_0`, i.e. :math:`\sum_{A \not\ni 0} x_A y_A`.

Each product is a precomputed sparse bilinear map (:mod:`equidyn.ga.blades`), evaluated as the
outer product of the operands times its ``(256, 16)`` matrix: one multiply and one matrix
product (forward and backward), no gathers, ``torch.compile(fullgraph=True)``-clean.

>>> import torch
>>> e1, e2 = torch.eye(16)[2], torch.eye(16)[3]
>>> geometric_product(e1, e2).nonzero().item(), geometric_product(e1, e2)[8].item()
(8, 1.0)
"""

from __future__ import annotations

import torch
from torch import Tensor

from equidyn.ga import blades
from equidyn.ga.blades import ProductTable

__all__ = [
    "check_multivector",
    "dual",
    "equi_join",
    "geometric_product",
    "grade_involution",
    "grade_project",
    "inner_product",
    "invariant_inner",
    "join",
    "outer_product",
    "reverse",
    "undual",
]


def check_multivector(x: Tensor, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x`` is a floating tensor ``(..., 16)``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0 or x.shape[-1] != 16:
        raise ValueError(f"{name} must be a multivector of shape (..., 16), got {tuple(x.shape)}")


def _bilinear(table: ProductTable, x: Tensor, y: Tensor) -> Tensor:
    check_multivector(x, "x")
    check_multivector(y, "y")
    x, y = torch.broadcast_tensors(x, y)
    matrix = table.matrix.to(device=x.device, dtype=x.dtype)  # [256 (left, right), 16 (out)]
    pairs = (x.unsqueeze(-1) * y.unsqueeze(-2)).flatten(-2)  # [..., 256]
    return pairs @ matrix  # [..., 16]


def geometric_product(x: Tensor, y: Tensor) -> Tensor:
    """Geometric product ``xy`` of multivectors ``(..., 16)`` (broadcasting)."""
    return _bilinear(blades.GEOMETRIC, x, y)


def outer_product(x: Tensor, y: Tensor) -> Tensor:
    """Outer (wedge) product ``x ∧ y``: the grade ``a + b`` part of each blade product."""
    return _bilinear(blades.OUTER, x, y)


def inner_product(x: Tensor, y: Tensor) -> Tensor:
    """Symmetric inner product: the grade ``|a − b|`` part of each blade product."""
    return _bilinear(blades.INNER, x, y)


def join(x: Tensor, y: Tensor) -> Tensor:
    """Join (regressive product) ``x ∨ y = undual(dual(x) ∧ dual(y))``.

    >>> import torch
    >>> e1, e2 = torch.eye(16)[2], torch.eye(16)[3]   # the planes x = 0 and y = 0
    >>> line = outer_product(e1, e2)                    # their meet: the z axis
    >>> origin, z_dir = torch.eye(16)[14], torch.eye(16)[11]
    >>> bool(torch.equal(join(origin, z_dir).abs(), line.abs()))
    True
    """
    return _bilinear(blades.JOIN, x, y)


def equi_join(x: Tensor, y: Tensor, reference: Tensor) -> Tensor:
    """Pin(3,0,1)-equivariant join ``reference_{0123} (x ∨ y)``."""
    check_multivector(reference, "reference")
    return reference[..., 15:16] * join(x, y)


def _signed(x: Tensor, sign: Tensor) -> Tensor:
    check_multivector(x)
    return x * sign.to(device=x.device, dtype=x.dtype)


def reverse(x: Tensor) -> Tensor:
    """Reverse ``x̃``: grade ``k`` times ``(−1)^{k(k−1)/2}``."""
    return _signed(x, blades.REVERSE_SIGN)


def grade_involution(x: Tensor) -> Tensor:
    """Grade involution ``x̂``: grade ``k`` times ``(−1)^k``."""
    return _signed(x, blades.INVOLUTION_SIGN)


def dual(x: Tensor) -> Tensor:
    """Right-complement dual: ``dual(e_A) = s_A e_{A^c}`` with ``e_A ∧ s_A e_{A^c} = e_0123``."""
    check_multivector(x)
    src = blades.DUAL_SOURCE.to(x.device)
    return x[..., src] * blades.DUAL_SIGN.to(device=x.device, dtype=x.dtype)


def undual(x: Tensor) -> Tensor:
    """Inverse of :func:`dual`."""
    check_multivector(x)
    src = blades.DUAL_SOURCE.to(x.device)
    return (x * blades.DUAL_SIGN.to(device=x.device, dtype=x.dtype))[..., src]


def grade_project(x: Tensor, grade: int) -> Tensor:
    """``<x>_grade``: zero every blade of another grade (``grade`` in 0..4)."""
    check_multivector(x)
    if grade not in range(5):
        raise ValueError(f"grade must be one of 0, 1, 2, 3, 4, got {grade!r}")
    mask = torch.tensor([g == grade for g in blades.GRADES], device=x.device)
    return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))


def invariant_inner(x: Tensor, y: Tensor) -> Tensor:
    """``Σ_{A ∌ 0} x_A y_A`` ``(...)``: the inner product that ignores ``e0`` components,
    invariant under rotations, reflections and translations."""
    check_multivector(x, "x")
    check_multivector(y, "y")
    idx = blades.EUCLIDEAN_BLADES.to(x.device)
    return (x[..., idx] * y[..., idx]).sum(-1)
