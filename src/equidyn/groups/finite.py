r"""Finite subgroups of O(2): the cyclic groups :math:`C_N` and the dihedral groups :math:`D_N`.

:math:`C_N = \{r^k\}_{k=0}^{N-1}` are the rotations by multiples of :math:`\theta = 2\pi/N`;
:math:`D_N = \{r^k f^m\}` adds the reflection :math:`f = \mathrm{diag}(1, -1)` (across the x
axis), with :math:`f^2 = 1` and :math:`f r f = r^{-1}`. Hence

.. math::  (r^{k_1} f^{m_1})(r^{k_2} f^{m_2}) = r^{k_1 + (-1)^{m_1} k_2} f^{m_1 + m_2},
           \qquad (r^k f)^{-1} = r^k f, \qquad (r^k)^{-1} = r^{-k}.

An element is an integer index :math:`g = m N + k` in ``range(order)``; index 0 is the identity.
:meth:`FiniteGroup.matrix` gives the 2×2 matrix of the action on the plane,
:meth:`FiniteGroup.regular_representation` the permutation matrices
:math:`\rho_{reg}(g) e_h = e_{gh}`, :meth:`FiniteGroup.irreps` the real irreducible
representations.

>>> from equidyn.groups import Cyclic, Dihedral
>>> D4 = Dihedral(4)
>>> D4.order, D4.element_name(D4.compose(D4.element(1, 0), D4.element(0, 1)))
(8, 'r^1 f')
>>> D4.compose(D4.element(1, 1), D4.element(1, 1))  # a reflection squared is the identity
0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

__all__ = ["FiniteGroup", "Cyclic", "Dihedral", "GroupIrrep"]


def _rotation(angle: float) -> torch.Tensor:
    """2×2 rotation by ``angle``, entries rounded to exact integers for multiples of 90°."""
    c, s = math.cos(angle), math.sin(angle)
    c, s = (round(v) if abs(v - round(v)) < 1e-12 else v for v in (c, s))
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


@dataclass(frozen=True)
class GroupIrrep:
    """A real irreducible representation ``name`` of dimension ``dim`` of ``group``.

    ``irrep(g)`` is the ``(dim, dim)`` float64 matrix of element ``g``.
    """

    group: FiniteGroup
    name: str
    dim: int
    frequency: int  # j of the rotation block R(j k theta); 0 for one-dimensional irreps
    rotation_sign: bool  # one-dimensional: multiply by (-1)^k
    flip_sign: bool  # one-dimensional: multiply by (-1)^m

    def __call__(self, g: int) -> torch.Tensor:
        k, m = self.group.decompose(g)
        if self.dim == 1:
            s = (-1) ** (k * self.rotation_sign + m * self.flip_sign)
            return torch.tensor([[float(s)]], dtype=torch.float64)
        F = torch.tensor([[1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
        return _rotation(self.frequency * k * self.group.angle) @ torch.linalg.matrix_power(F, m)


class FiniteGroup:
    r"""Common base of :class:`Cyclic` and :class:`Dihedral`: elements :math:`r^k f^m`.

    Args:
        n: number of rotations :math:`N \ge 1`.
        flips: whether the reflection :math:`f` is included.
    """

    def __init__(self, n: int, flips: bool) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"the number of rotations must be an integer >= 1, got {n!r}")
        self.n = n
        self.flips = flips

    # --- algebra -------------------------------------------------------------------------
    @property
    def order(self) -> int:
        """Number of elements :math:`|G|` (N or 2N)."""
        return self.n * (2 if self.flips else 1)

    @property
    def angle(self) -> float:
        r"""The rotation angle :math:`\theta = 2\pi/N` of the generator :math:`r`."""
        return 2 * math.pi / self.n

    @property
    def exact_on_grid(self) -> bool:
        """Whether every element maps the square pixel grid onto itself (N divides 4)."""
        return 4 % self.n == 0

    def elements(self) -> list[int]:
        """All element indices, identity first."""
        return list(range(self.order))

    def element(self, k: int, m: int = 0) -> int:
        """Index of :math:`r^k f^m` (``k`` taken modulo N)."""
        if m not in (0, 1) or (m == 1 and not self.flips):
            raise ValueError(f"flip exponent {m!r} is not valid in {self!r}: expected 0 or 1")
        return m * self.n + k % self.n

    def decompose(self, g: int) -> tuple[int, int]:
        """``(k, m)`` with ``g`` = :math:`r^k f^m`."""
        self.check_element(g)
        return g % self.n, g // self.n

    def check_element(self, g: int) -> None:
        """Raise ``ValueError`` unless ``g`` is an element index of this group."""
        if not isinstance(g, int) or isinstance(g, bool) or not 0 <= g < self.order:
            raise ValueError(
                f"{g!r} is not an element of {self!r}: expected an integer in [0, {self.order})"
            )

    def compose(self, a: int, b: int) -> int:
        """The product :math:`ab` (apply ``b`` first, then ``a``)."""
        (k1, m1), (k2, m2) = self.decompose(a), self.decompose(b)
        return self.element(k1 + (-1) ** m1 * k2, (m1 + m2) % 2)

    def inverse(self, g: int) -> int:
        """The inverse :math:`g^{-1}`."""
        k, m = self.decompose(g)
        return g if m == 1 else self.element(-k, 0)

    @cached_property
    def cayley_table(self) -> torch.Tensor:
        """``table[a, b] = compose(a, b)``, shape ``(order, order)``, int64."""
        els = self.elements()
        return torch.tensor([[self.compose(a, b) for b in els] for a in els], dtype=torch.long)

    def element_name(self, g: int) -> str:
        """Readable name: ``'e'``, ``'r^2'``, ``'f'``, ``'r^1 f'``."""
        k, m = self.decompose(g)
        parts = ([f"r^{k}"] if k else []) + (["f"] if m else [])
        return " ".join(parts) or "e"

    # --- representations -----------------------------------------------------------------
    def matrix(self, g: int) -> torch.Tensor:
        r"""The 2×2 matrix :math:`R(k\theta) F^m` of ``g`` acting on points (x, y), float64."""
        k, m = self.decompose(g)
        F = torch.tensor([[1.0, 0.0], [0.0, -1.0 if m else 1.0]], dtype=torch.float64)
        return _rotation(k * self.angle) @ F

    def regular_representation(self, g: int) -> torch.Tensor:
        r"""Permutation matrix :math:`\rho(g)` with :math:`\rho(g)_{gh,h} = 1`, float64."""
        rows = self.cayley_table[g]
        P = torch.zeros(self.order, self.order, dtype=torch.float64)
        P[rows, torch.arange(self.order)] = 1.0
        return P

    def irreps(self) -> list[GroupIrrep]:
        r"""The real irreducible representations.

        One-dimensional: the trivial one; for :math:`D_N` the flip sign :math:`(-1)^m`; for
        even N the rotation sign :math:`(-1)^k` (and, for :math:`D_N`, their product).
        Two-dimensional: :math:`r^k f^m \mapsto R(jk\theta)F^m` for :math:`0 < j < N/2`. For
        :math:`D_N` the squared dimensions sum to :math:`|G|`; for :math:`C_N` each 2-d real
        irrep is a pair of complex conjugate characters.
        """
        one = [(False, False)]
        if self.flips:
            one.append((False, True))
        if self.n % 2 == 0:
            one += [(True, False)] + ([(True, True)] if self.flips else [])
        out = [
            GroupIrrep(self, _one_dim_name(rs, fs), 1, 0, rs, fs) for rs, fs in one
        ]  # fmt: skip
        for j in range(1, (self.n + 1) // 2):
            out.append(GroupIrrep(self, f"rot{j}", 2, j, False, False))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FiniteGroup) and (self.n, self.flips) == (other.n, other.flips)

    def __hash__(self) -> int:
        return hash((self.n, self.flips))


def _one_dim_name(rotation_sign: bool, flip_sign: bool) -> str:
    return {
        (False, False): "trivial",
        (False, True): "flip_sign",
        (True, False): "rotation_sign",
        (True, True): "rotation_flip_sign",
    }[(rotation_sign, flip_sign)]


class Cyclic(FiniteGroup):
    r"""The cyclic group :math:`C_N` of rotations by multiples of :math:`2\pi/N`.

    >>> C4 = Cyclic(4)
    >>> C4.matrix(1)
    tensor([[ 0., -1.],
            [ 1.,  0.]], dtype=torch.float64)
    >>> [C4.inverse(g) for g in C4.elements()]
    [0, 3, 2, 1]
    """

    def __init__(self, n: int) -> None:
        super().__init__(n, flips=False)


class Dihedral(FiniteGroup):
    r"""The dihedral group :math:`D_N` of order 2N: rotations and reflections.

    >>> D4 = Dihedral(4)
    >>> [irrep.dim for irrep in D4.irreps()]
    [1, 1, 1, 1, 2]
    """

    def __init__(self, n: int) -> None:
        super().__init__(n, flips=True)
