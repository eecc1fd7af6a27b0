r"""Irreducible representations of O(3) as data types.

Every irreducible representation of O(3) is labelled by a degree :math:`l \in \{0, 1, 2, \dots\}`
and a parity :math:`p \in \{+1, -1\}`. Writing an element of O(3) as :math:`R = (-1)^k R'`
with :math:`R'` a proper rotation, the irrep :math:`(l, p)` acts as

.. math::  \rho_{l,p}(R) = p^k \, D^l(R'),

with :math:`D^l` the real Wigner D matrix of size :math:`2l+1` (e3nn's basis, so
:math:`D^1(R') = R'`).
``Irrep("1o")`` is a vector, ``Irrep("1e")`` a pseudovector, ``Irrep("0o")`` a pseudoscalar.

An :class:`Irreps` is a direct sum written ``"16x0e + 8x1o"``: it says how a feature vector of
``irreps.dim`` numbers transforms. Features are laid out ``(..., irreps.dim)``, blocks in order,
each block ``mul x (2l+1)`` with the multiplicity outer.

>>> irreps = Irreps("16x0e + 8x1o + 4x2e")
>>> irreps.dim, irreps.num_irreps, irreps.lmax
(60, 28, 2)
>>> Irrep("1o") * Irrep("1o")
1x0e+1x1e+1x2e
>>> (Irreps("1o") + Irreps("2x1o")).simplify()
3x1o
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, Union

import torch

__all__ = ["Irrep", "Irreps", "MulIr"]

_IRREP_RE = re.compile(r"^(\d+)([eoy])$")
_MULIR_RE = re.compile(r"^(?:(-?\d+)\s*x\s*)?(.+)$")


class Irrep(tuple):
    r"""An irreducible representation :math:`(l, p)` of O(3).

    Args:
        l: the degree, an int :math:`\geq 0`, or a string ``"1e"``, ``"2o"`` (``"ly"`` means the
            parity :math:`(-1)^l` of spherical harmonics), or an existing ``Irrep``.
        p: the parity, ``+1`` (``e``) or ``-1`` (``o``), when ``l`` is an int.

    >>> Irrep("1o"), Irrep(2, 1), Irrep("3y")
    (1o, 2e, 3o)
    >>> Irrep("1o").dim
    3
    """

    def __new__(cls, l: int | str | Irrep | tuple[int, int], p: int | None = None) -> Irrep:
        if isinstance(l, Irrep) and p is None:
            return l
        if isinstance(l, str) and p is None:
            m = _IRREP_RE.match(l.strip())
            if m is None:
                raise ValueError(
                    f"invalid irrep {l!r}: expected '<l><p>' with l a non-negative integer and "
                    "p one of 'e' (even), 'o' (odd), 'y' (parity (-1)^l), e.g. '1o'"
                )
            deg = int(m.group(1))
            par = {"e": 1, "o": -1, "y": (-1) ** deg}[m.group(2)]
            return super().__new__(cls, (deg, par))
        if isinstance(l, tuple) and p is None:
            if len(l) != 2:
                raise ValueError(f"invalid irrep {l!r}: expected a pair (l, p)")
            l, p = l
        if p is None:
            raise ValueError(f"invalid irrep {l!r}: a parity p = +1 or -1 is required")
        if isinstance(l, bool) or not isinstance(l, int) or l < 0:
            raise ValueError(f"invalid irrep degree l={l!r}: expected an integer >= 0")
        if p not in (1, -1):
            raise ValueError(f"invalid irrep parity p={p!r}: expected +1 (even) or -1 (odd)")
        return super().__new__(cls, (int(l), int(p)))

    @property
    def l(self) -> int:  # noqa: E743
        """The degree."""
        return self[0]

    @property
    def p(self) -> int:
        """The parity, +1 or -1."""
        return self[1]

    @property
    def dim(self) -> int:
        """The dimension :math:`2l + 1`."""
        return 2 * self[0] + 1

    def is_scalar(self) -> bool:
        """True for ``0e``."""
        return self == (0, 1)

    def __repr__(self) -> str:
        return f"{self.l}{'e' if self.p == 1 else 'o'}"

    def __mul__(self, other: object) -> Irreps:  # type: ignore[override]
        r"""The irreps of the tensor product: :math:`|l_1-l_2| \oplus \dots \oplus (l_1+l_2)`,
        parity :math:`p_1 p_2`."""
        if not isinstance(other, Irrep):
            if isinstance(other, (str, tuple)):
                other = Irrep(other)
            else:
                return NotImplemented
        p = self.p * other.p
        return Irreps([(1, (l, p)) for l in range(abs(self.l - other.l), self.l + other.l + 1)])

    def __rmul__(self, mul: object) -> Irreps:  # type: ignore[override]
        if isinstance(mul, bool) or not isinstance(mul, int):
            return NotImplemented
        return Irreps([(mul, self)])

    def __add__(self, other: object) -> Irreps:  # type: ignore[override]
        return Irreps(self) + Irreps(other)  # type: ignore[arg-type]

    def __radd__(self, other: object) -> Irreps:
        return Irreps(other) + Irreps(self)  # type: ignore[arg-type]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = Irrep(other)
            except ValueError:
                return False
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return tuple.__hash__(self)

    def __getnewargs__(self) -> tuple[int, int]:
        return (self.l, self.p)

    @staticmethod
    def iterator(lmax: int) -> Iterator[Irrep]:
        """All irreps with ``l <= lmax``: 0e, 0o, 1o, 1e, 2e, 2o, ... (natural parity first)."""
        for l in range(lmax + 1):
            yield Irrep(l, (-1) ** l)
            yield Irrep(l, -((-1) ** l))

    def D_from_matrix(self, R: torch.Tensor) -> torch.Tensor:
        r"""The representation matrix :math:`p^k D^l(R')` of ``R = (-1)^k R'`` (det ±1).

        Args:
            R: ``(..., 3, 3)`` orthogonal matrices.

        Returns:
            ``(..., 2l+1, 2l+1)``

        >>> R = -torch.eye(3)
        >>> Irrep("1o").D_from_matrix(R)[0, 0].item(), Irrep("1e").D_from_matrix(R)[0, 0].item()
        (-1.0, 1.0)
        """
        from equidyn.o3.rotations import check_rotation

        det = check_rotation(R, allow_improper=True)  # (...)
        return _irrep_D(self, R, det)

    def D_from_angles(
        self,
        alpha: torch.Tensor,
        beta: torch.Tensor,
        gamma: torch.Tensor,
        k: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        r"""The representation matrix :math:`p^k D^l(\alpha, \beta, \gamma)` of the element
        :math:`(-1)^k Y(\alpha) X(\beta) Y(\gamma)` (e3nn's signature).

        Args:
            alpha, beta, gamma: ``(...)`` Euler angles (broadcast; numbers accepted).
            k: ``(...)`` how many times the inversion :math:`-I` is applied (integer
                valued; only its parity matters); ``None`` means 0.

        Returns:
            ``(..., 2l+1, 2l+1)``

        >>> a, b, c = torch.tensor(0.1), torch.tensor(0.2), torch.tensor(0.3)
        >>> D = Irrep("1e").D_from_angles(a, b, c, k=torch.tensor(1))
        >>> from equidyn.o3 import angles_to_matrix
        >>> torch.allclose(D, angles_to_matrix(a, b, c), atol=1e-6)  # pseudovector: no sign
        True
        """
        return _irrep_D_angles(self, alpha, beta, gamma, k)

    def D_from_quaternion(
        self, q: torch.Tensor, k: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        r""":meth:`D_from_angles` of the rotation of unit quaternion ``q`` ``(..., 4)``
        (``(w, x, y, z)``, as :func:`~equidyn.o3.quaternion_to_matrix`), times :math:`p^k`.

        >>> Irrep("2e").D_from_quaternion(torch.tensor([1.0, 0, 0, 0])).diagonal()
        tensor([1., 1., 1., 1., 1.])
        """
        from equidyn.o3.rotations import quaternion_to_angles

        return self.D_from_angles(*quaternion_to_angles(q), k)

    def D_from_axis_angle(self, axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        r""":meth:`D_from_angles` of the rotation by ``angle`` ``(...)`` about ``axis``
        ``(..., 3)`` (a proper rotation: no parity factor, as in e3nn).

        >>> axis, angle = torch.tensor([0.0, 0.0, 1.0]), torch.tensor(1.0)
        >>> from equidyn.o3 import axis_angle_to_matrix
        >>> D = Irrep("1o").D_from_axis_angle(axis, angle)
        >>> torch.allclose(D, axis_angle_to_matrix(axis, angle), atol=1e-6)
        True
        """
        from equidyn.o3.rotations import axis_angle_to_angles

        return self.D_from_angles(*axis_angle_to_angles(axis, angle))


def _angles_and_k(
    alpha: Any, beta: Any, gamma: Any, k: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The angles and ``k`` as broadcast tensors (numbers are converted)."""
    like = next((t for t in (alpha, beta, gamma) if isinstance(t, torch.Tensor)), None)
    dtype = like.dtype if like is not None else torch.get_default_dtype()
    device = like.device if like is not None else None
    angles = []
    for name, t in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not isinstance(t, torch.Tensor):
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                raise TypeError(f"{name} must be a tensor or a number, got {type(t).__name__}")
            t = torch.tensor(float(t), dtype=dtype, device=device)
        angles.append(t)
    if k is None:
        k = torch.zeros((), dtype=dtype, device=device)
    elif not isinstance(k, torch.Tensor):
        if isinstance(k, bool) or not isinstance(k, (int, float)):
            raise TypeError(f"k must be a tensor, an int or None, got {type(k).__name__}")
        k = torch.tensor(k, device=device)
    a, b, c, k = torch.broadcast_tensors(*angles, k)
    return a, b, c, k


def _irrep_D_angles(ir: Irrep, alpha: Any, beta: Any, gamma: Any, k: Any) -> torch.Tensor:
    from equidyn.o3.wigner import wigner_D_from_angles

    a, b, c, k = _angles_and_k(alpha, beta, gamma, k)
    D = wigner_D_from_angles(ir.l, a, b, c)  # (..., 2l+1, 2l+1)
    if ir.p == -1:
        odd = torch.remainder(torch.round(k), 2) != 0  # (...)
        D = torch.where(odd[..., None, None], -D, D)
    return D


def _irrep_D(ir: Irrep, R: torch.Tensor, det: torch.Tensor) -> torch.Tensor:
    """``p^k D^l(R')`` given ``det = (-1)^k``, no validation."""
    from equidyn.o3.wigner import _wigner_D

    R_proper = R * det[..., None, None]
    D = _wigner_D(ir.l, R_proper)  # (..., 2l+1, 2l+1)
    if ir.p == -1:
        D = D * det[..., None, None]
    return D


class MulIr(NamedTuple):
    """A multiplicity and an irrep, ``mul x ir``; unpacks as ``(mul, ir)``."""

    mul: int
    ir: Irrep

    @property
    def dim(self) -> int:
        """``mul * (2l + 1)``."""
        return self.mul * self.ir.dim

    def __repr__(self) -> str:
        return f"{self.mul}x{self.ir}"


IrrepsLike = Union["Irreps", str, Irrep, Iterable[Any], None]


class _SortResult(NamedTuple):
    irreps: Irreps
    p: tuple[int, ...]
    inv: tuple[int, ...]


class Irreps(tuple):
    r"""A direct sum of irreps with multiplicities, e.g. ``Irreps("16x0e + 8x1o")``.

    Accepts a string (``"16x0e+8x1o"``, ``"1e"``, ``""`` for the empty sum), an :class:`Irrep`,
    another ``Irreps``, or an iterable of ``(mul, ir)`` pairs / irreps / strings. Immutable and
    hashable; iterating yields :class:`MulIr` ``(mul, ir)`` pairs.

    >>> irreps = Irreps("2x0e + 1x1o")
    >>> [(mul, ir.l, ir.p) for mul, ir in irreps]
    [(2, 0, 1), (1, 1, -1)]
    >>> irreps.slices()
    [slice(0, 2, None), slice(2, 5, None)]
    >>> 2 * irreps
    2x0e+1x1o+2x0e+1x1o
    """

    def __new__(cls, irreps: IrrepsLike = None) -> Irreps:
        if isinstance(irreps, Irreps):
            return irreps
        out: list[MulIr] = []
        if irreps is None:
            pass
        elif isinstance(irreps, Irrep):
            out.append(MulIr(1, irreps))
        elif isinstance(irreps, str):
            text = irreps.strip()
            if text:
                for term in text.split("+"):
                    out.append(_parse_term(term, irreps))
        else:
            try:
                items = list(irreps)
            except TypeError:
                raise TypeError(
                    f"cannot build Irreps from {irreps!r} of type {type(irreps).__name__}: "
                    "expected a string like '16x0e+8x1o', an Irrep, or (mul, irrep) pairs"
                ) from None
            for item in items:
                out.append(_parse_item(item))
        return super().__new__(cls, out)

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        """Total dimension :math:`\\sum_i mul_i (2 l_i + 1)`."""
        return sum(mul * ir.dim for mul, ir in self)

    @property
    def num_irreps(self) -> int:
        """Total number of irreps :math:`\\sum_i mul_i`."""
        return sum(mul for mul, _ in self)

    @property
    def ls(self) -> list[int]:
        """The degree of every irrep, repeated by multiplicity."""
        return [ir.l for mul, ir in self for _ in range(mul)]

    @property
    def lmax(self) -> int:
        """The largest degree; ValueError for the empty Irreps."""
        if len(self) == 0:
            raise ValueError("lmax of the empty Irreps is undefined")
        return max(ir.l for _, ir in self)

    def is_scalar(self) -> bool:
        """True if every irrep is ``0e``."""
        return all(ir.is_scalar() for _, ir in self)

    # ------------------------------------------------------------------ structure
    def slices(self) -> list[slice]:
        """The slice of each block in a feature vector."""
        out, start = [], 0
        for mul, ir in self:
            out.append(slice(start, start + mul * ir.dim))
            start += mul * ir.dim
        return out

    def count(self, ir: Irrep | str | tuple[int, int]) -> int:
        """Total multiplicity of ``ir``."""
        ir = Irrep(ir)
        return sum(mul for mul, other in self if other == ir)

    def index(self, ir: Any, *args: Any) -> int:  # type: ignore[override]
        """Index of the first block holding ``ir`` (an irrep) or equal to ``(mul, ir)``."""
        if isinstance(ir, (Irrep, str)):
            target = Irrep(ir)
            for i, (_, other) in enumerate(self):
                if other == target:
                    return i
            raise ValueError(f"{target} is not in {self}")
        return super().index(_parse_item(ir), *args)

    def __contains__(self, ir: object) -> bool:
        if isinstance(ir, (Irrep, str)):
            target = Irrep(ir)
            return any(other == target for _, other in self)
        return super().__contains__(ir)

    def simplify(self) -> Irreps:
        """Merge consecutive blocks of the same irrep and drop zero multiplicities.

        >>> Irreps("1e + 1e + 0x2o + 1o + 1e").simplify()
        2x1e+1x1o+1x1e
        """
        out: list[tuple[int, Irrep]] = []
        for mul, ir in self:
            if mul == 0:
                continue
            if out and out[-1][1] == ir:
                out[-1] = (out[-1][0] + mul, ir)
            else:
                out.append((mul, ir))
        return Irreps(out)

    def remove_zero_multiplicities(self) -> Irreps:
        """Drop blocks of multiplicity zero."""
        return Irreps([(mul, ir) for mul, ir in self if mul > 0])

    def sort(self) -> _SortResult:
        """Sort blocks by (l, p), so odd before even for equal l, as e3nn does (stable).

        Returns ``(irreps, p, inv)``: block ``i`` of the input goes to position ``p[i]``, and
        block ``j`` of the output came from ``inv[j]``.

        >>> Irreps("1o + 0e + 1e").sort()
        _SortResult(irreps=1x0e+1x1o+1x1e, p=(1, 0, 2), inv=(1, 0, 2))
        """
        keyed = sorted(range(len(self)), key=lambda i: tuple(self[i].ir))
        inv = tuple(keyed)
        p = [0] * len(self)
        for j, i in enumerate(inv):
            p[i] = j
        return _SortResult(Irreps([self[i] for i in inv]), tuple(p), inv)

    def regroup(self) -> Irreps:
        """``sort().irreps.simplify()``: one block per distinct irrep."""
        return self.sort().irreps.simplify()

    def filter(
        self,
        keep: IrrepsLike | Iterable[Any] | None = None,
        drop: IrrepsLike | Iterable[Any] | None = None,
        lmax: int | None = None,
    ) -> Irreps:
        """Keep only the blocks whose irrep is in ``keep`` (if given), not in ``drop``, and
        with ``l <= lmax`` (if given).

        >>> Irreps("2x0e + 1x1o + 1x2e").filter(keep=["0e", "1o"])
        2x0e+1x1o
        >>> Irreps("2x0e + 1x1o + 1x2e").filter(lmax=1)
        2x0e+1x1o
        """
        keep_set = None if keep is None else _irrep_set(keep)
        drop_set = set() if drop is None else _irrep_set(drop)
        return Irreps(
            [
                (mul, ir)
                for mul, ir in self
                if (keep_set is None or ir in keep_set)
                and ir not in drop_set
                and (lmax is None or ir.l <= lmax)
            ]
        )

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: object) -> Irreps:  # type: ignore[override]
        return Irreps(tuple(self) + tuple(Irreps(other)))  # type: ignore[arg-type]

    def __radd__(self, other: object) -> Irreps:
        return Irreps(tuple(Irreps(other)) + tuple(self))  # type: ignore[arg-type]

    def __mul__(self, n: object) -> Irreps:  # type: ignore[override]
        """``irreps * n`` repeats the whole sum ``n`` times (as for tuples)."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(
                f"Irreps can only be multiplied by an int, got {n!r}; for tensor products "
                "use o3.tensor_product_irreps"
            )
        if n < 0:
            raise ValueError(f"cannot repeat Irreps a negative number of times ({n})")
        return Irreps(tuple(self) * n)

    __rmul__ = __mul__

    def __getitem__(self, i: Any) -> Any:
        out = super().__getitem__(i)
        if isinstance(i, slice):
            return Irreps(out)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Irreps):
            try:
                other = Irreps(other)  # type: ignore[arg-type]
            except (ValueError, TypeError):
                return False
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return tuple.__hash__(self)

    def __repr__(self) -> str:
        return "+".join(f"{mul}x{ir}" for mul, ir in self)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (Irreps, (repr(self),))

    # ------------------------------------------------------------------ constructors
    @staticmethod
    def spherical_harmonics(lmax: int, p: int = -1) -> Irreps:
        """Irreps of spherical harmonics up to ``lmax``: ``1x0e+1x1o+1x2e+...`` (``p=-1``),
        parity :math:`p^l`.

        >>> Irreps.spherical_harmonics(3)
        1x0e+1x1o+1x2e+1x3o
        """
        if isinstance(lmax, bool) or not isinstance(lmax, int) or lmax < 0:
            raise ValueError(f"lmax must be an integer >= 0, got {lmax!r}")
        if p not in (1, -1):
            raise ValueError(f"p must be +1 or -1, got {p!r}")
        return Irreps([(1, (l, p**l)) for l in range(lmax + 1)])

    # ------------------------------------------------------------------ tensors
    def randn(
        self,
        *size: int,
        normalization: str = "component",
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        requires_grad: bool = False,
    ) -> torch.Tensor:
        """Random features; one entry of ``size`` must be ``-1`` (it becomes ``self.dim``).

        ``normalization="component"``: every component is N(0, 1);
        ``"norm"``: every irrep has unit norm on average.

        >>> Irreps("2x0e + 1x1o").randn(10, -1).shape
        torch.Size([10, 5])
        """
        if size.count(-1) != 1:
            raise ValueError(f"size {size} must contain exactly one -1 (the irreps dimension)")
        di = size.index(-1)
        shape = size[:di] + (self.dim,) + size[di + 1 :]
        x = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        if normalization == "norm":
            scale = torch.cat(
                [
                    torch.full((mul * ir.dim,), ir.dim**-0.5, dtype=x.dtype, device=x.device)
                    for mul, ir in self
                ]
                or [torch.zeros(0, dtype=x.dtype, device=x.device)]
            )
            x = x * scale.reshape((-1,) + (1,) * (len(size) - di - 1))
        elif normalization != "component":
            raise ValueError(f"normalization={normalization!r}: expected 'component' or 'norm'")
        return x.requires_grad_(requires_grad)

    def D_from_matrix(self, R: torch.Tensor) -> torch.Tensor:
        r"""Block-diagonal representation matrix of ``R`` (det ±1) on these irreps.

        Args:
            R: ``(..., 3, 3)`` orthogonal matrices.

        Returns:
            ``(..., dim, dim)``

        >>> from equidyn.o3 import rand_matrix
        >>> R = rand_matrix(4, dtype=torch.float64)
        >>> D = Irreps("2x0e + 1x1o").D_from_matrix(-R)
        >>> D.shape, torch.allclose(D[:, 2:, 2:], -R)
        (torch.Size([4, 5, 5]), True)
        """
        from equidyn.o3.rotations import check_rotation

        det = check_rotation(R, allow_improper=True)  # (...)
        return _block_diag(
            [_irrep_D(ir, R, det) for mul, ir in self for _ in range(mul)],
            R.shape[:-2],
            R.dtype,
            R.device,
        )

    def D_from_angles(
        self,
        alpha: torch.Tensor,
        beta: torch.Tensor,
        gamma: torch.Tensor,
        k: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        r"""Block-diagonal :math:`\bigoplus p_i^k D^{l_i}(\alpha, \beta, \gamma)`, shape
        ``(..., dim, dim)``; see :meth:`Irrep.D_from_angles`.

        >>> a = torch.tensor(0.3)
        >>> Irreps("2x0e + 1x1o").D_from_angles(a, a, a, k=1).shape
        torch.Size([5, 5])
        """
        a, b, c, kk = _angles_and_k(alpha, beta, gamma, k)
        blocks = [_irrep_D_angles(ir, a, b, c, kk) for mul, ir in self for _ in range(mul)]
        return _block_diag(blocks, a.shape, a.dtype, a.device)

    def D_from_quaternion(
        self, q: torch.Tensor, k: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        """:meth:`D_from_angles` of the rotation of unit quaternion ``q`` ``(..., 4)``.

        >>> Irreps("1x1o").D_from_quaternion(torch.tensor([1.0, 0, 0, 0]))
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
        """
        from equidyn.o3.rotations import quaternion_to_angles

        return self.D_from_angles(*quaternion_to_angles(q), k)

    def D_from_axis_angle(self, axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        """:meth:`D_from_angles` of the rotation by ``angle`` about ``axis`` ``(..., 3)``.

        >>> Irreps("1x0e + 1x1o").D_from_axis_angle(torch.tensor([0.0, 1, 0]), 0.0).shape
        torch.Size([4, 4])
        """
        from equidyn.o3.rotations import axis_angle_to_angles

        return self.D_from_angles(*axis_angle_to_angles(axis, angle))


def _block_diag(
    blocks: list[torch.Tensor], batch: torch.Size, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    dim = sum(b.shape[-1] for b in blocks)
    out = torch.zeros(*batch, dim, dim, dtype=dtype, device=device)
    i = 0
    for b in blocks:
        d = b.shape[-1]
        out[..., i : i + d, i : i + d] = b
        i += d
    return out


def _parse_term(term: str, whole: str) -> MulIr:
    term = term.strip()
    m = _MULIR_RE.match(term)
    if m is None or not term:
        raise ValueError(
            f"invalid irreps {whole!r}: empty term; expected terms like '16x0e' joined by '+'"
        )
    mul = 1 if m.group(1) is None else int(m.group(1))
    if mul < 0:
        raise ValueError(f"invalid irreps {whole!r}: multiplicity {mul} in {term!r} must be >= 0")
    try:
        ir = Irrep(m.group(2))
    except ValueError as e:
        raise ValueError(f"invalid irreps {whole!r}: {e}") from None
    return MulIr(mul, ir)


def _parse_item(item: Any) -> MulIr:
    if isinstance(item, MulIr):
        return item
    if isinstance(item, Irrep):
        return MulIr(1, item)
    if isinstance(item, str):
        return _parse_term(item, item)
    if isinstance(item, tuple) and len(item) == 2:
        mul, ir = item
        if isinstance(mul, bool) or not isinstance(mul, int):
            raise ValueError(f"invalid multiplicity {mul!r} in {item!r}: expected an int >= 0")
        if mul < 0:
            raise ValueError(f"invalid multiplicity {mul} in {item!r}: expected an int >= 0")
        if isinstance(ir, int):  # (l, p) pair given as a 2-tuple of ints
            return MulIr(1, Irrep(mul, ir))
        return MulIr(mul, Irrep(ir))
    raise ValueError(f"invalid irreps item {item!r}: expected (mul, irrep), an Irrep or a string")


def _irrep_set(irs: Any) -> set[Irrep]:
    if isinstance(irs, (Irrep, str)):
        irs = Irreps(irs) if isinstance(irs, str) and "x" in irs else [irs]
    if isinstance(irs, Irreps):
        return {ir for _, ir in irs}
    return {Irrep(ir) if not isinstance(ir, MulIr) else ir.ir for ir in irs}
