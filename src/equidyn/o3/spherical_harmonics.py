r"""Real spherical harmonics in e3nn's basis, computed by a Cartesian recurrence.

Maths
-----
Work in a frame whose polar axis is e3nn's :math:`y`: :math:`(X, Y, Z) = (z, x, y)` (a cyclic,
hence proper, relabelling of the input). With :math:`w = X + iY` and :math:`r^2 = X^2+Y^2+Z^2`,
the scaled regular solid harmonics

.. math::

    O_l^m = \frac{r^l P_l^m(\cos\theta)\, e^{im\varphi}}{(l+m)!} = C_l^m + i S_l^m,
    \qquad m \ge 0

(:math:`P_l^m` without the Condon–Shortley phase) are homogeneous polynomials of degree
:math:`l` with

.. math::

    O_l^l = \frac{w^l}{2^l\, l!}, \qquad
    (l^2 - m^2)\, O_l^m = (2l-1)\, Z\, O_{l-1}^m - r^2\, O_{l-2}^m \quad (m < l),

(:math:`O_{l-2}^{l-1} = 0`). The real harmonic of order :math:`m` is
:math:`Y_l^m = K_l^m C_l^m` for :math:`m > 0`, :math:`K_l^0 C_l^0` for :math:`m = 0` and
:math:`K_l^{|m|} S_l^{|m|}` for :math:`m < 0`, with
:math:`K_l^m = \sqrt{2 (2l+1) (l-m)! (l+m)!}` (:math:`m>0`), :math:`K_l^0 = \sqrt{2l+1}\, l!`
for ``normalization="component"`` (:math:`\|Y^l(\hat x)\|^2 = 2l+1`); ``"norm"`` divides by
:math:`\sqrt{2l+1}` (:math:`\|Y^l(\hat x)\| = 1`) and ``"integral"`` by :math:`\sqrt{4\pi}`
(:math:`\int_{S^2} (Y_l^m)^2\, d\Omega = 1`). The code runs the recurrence on :math:`Y` itself,
so every intermediate is of order one:

.. math::

    Y_l^{\pm l} = \frac{K_l^l}{2^l\, l!} \{\mathrm{Re}, \mathrm{Im}\}\, w^l, \qquad
    Y_l^m = \frac{K_l^m}{l^2 - m^2} \Big( (2l-1)\, Z\, \frac{Y_{l-1}^m}{K_{l-1}^m}
            - r^2\, \frac{Y_{l-2}^m}{K_{l-2}^m} \Big),

vectorised over all vectors and all :math:`m` of a degree; :math:`w^m` comes from repeated
doubling (:math:`w^{k+j} = w^k w^j`). Only products and sums appear: no square root, arctangent
or division depends on the input, so every axis is regular.

The gradient uses the ladder relations of the solid harmonics
(:math:`\partial = \partial_X - i\partial_Y`, :math:`\bar\partial = \partial_X + i\partial_Y`):

.. math::

    \partial_Z O_l^m = O_{l-1}^m, \qquad \partial O_l^m = O_{l-1}^{m-1}, \qquad
    \bar\partial O_l^m = -O_{l-1}^{m+1},

so :math:`\partial Y_l / \partial (X, Y, Z)` is a fixed sparse linear map of :math:`Y_{l-1}`.
The backward pass is written with differentiable torch operations on the saved output, so second
derivatives (forces inside a loss) work. With ``normalize=True`` the input is first mapped to
:math:`\hat x = x / |x|`, and to :math:`0` at :math:`x = 0`, where :math:`Y^0` keeps its constant
value and :math:`Y^{l \ge 1} = 0`; all derivatives stay finite there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equidyn.o3.irreps import Irreps

__all__ = ["spherical_harmonics", "SphericalHarmonics"]

_NORMALIZATIONS = ("component", "norm", "integral")


# ----------------------------------------------------------------------------- coefficients
def _log_k(l: int, m: int, normalization: str) -> float:
    """log of the scale K_l^m linking the real harmonic to the scaled solid harmonic O_l^|m|."""
    am = abs(m)
    if am > l:
        raise ValueError(f"|m| must be <= l, got l={l}, m={m}")
    value = 0.5 * (math.log(2 * l + 1) + math.lgamma(l - am + 1) + math.lgamma(l + am + 1))
    if am != 0:
        value += 0.5 * math.log(2.0)
    if normalization == "norm":
        value -= 0.5 * math.log(2 * l + 1)
    elif normalization == "integral":
        value -= 0.5 * math.log(4 * math.pi)
    return value


class _Coefficients:
    """All constants of the recurrence and of the ladder relations, float64, packed flat."""

    def __init__(self, lmax: int, normalization: str) -> None:
        self.lmax = lmax
        # Forward: y0, then per l >= 1: edge scale E_l, A_l (2l-1 values), B_l (2l-3 values).
        values: list[float] = [math.exp(_log_k(0, 0, normalization))]
        self.edge: list[int] = [0]
        self.a: list[slice] = [slice(0, 0)]
        self.b: list[slice] = [slice(0, 0)]
        for l in range(1, lmax + 1):
            self.edge.append(len(values))
            values.append(
                math.exp(_log_k(l, l, normalization) - math.lgamma(l + 1) - l * math.log(2.0))
            )
            start = len(values)
            for m in range(-(l - 1), l):
                ratio = math.exp(_log_k(l, m, normalization) - _log_k(l - 1, m, normalization))
                values.append(ratio * (2 * l - 1) / (l * l - m * m))
            self.a.append(slice(start, len(values)))
            start = len(values)
            for m in range(-(l - 2), l - 1):
                ratio = math.exp(_log_k(l, m, normalization) - _log_k(l - 2, m, normalization))
                values.append(ratio / (l * l - m * m))
            self.b.append(slice(start, len(values)))
        self.forward_values = torch.tensor(values, dtype=torch.float64)

        # Backward: per l >= 1 the matrix (2l+1, 3 (2l-1)) of d Y_l / d(X, Y, Z) in terms of
        # Y_{l-1}; columns grouped by direction X, Y, Z.
        self.ladder: list[Tensor] = [torch.zeros(1, 0, dtype=torch.float64)]
        for l in range(1, lmax + 1):
            self.ladder.append(_ladder_matrix(l, normalization))
        self.cache: dict[tuple[torch.dtype, torch.device], tuple[Tensor, list[Tensor]]] = {}

    def on(self, like: Tensor) -> tuple[Tensor, list[Tensor]]:
        key = (like.dtype, like.device)
        if key not in self.cache:
            self.cache[key] = (
                self.forward_values.to(dtype=like.dtype, device=like.device),
                [d.to(dtype=like.dtype, device=like.device) for d in self.ladder],
            )
        return self.cache[key]


def _ladder_matrix(l: int, normalization: str) -> Tensor:
    r"""Matrix M (2l+1, 3(2l-1)) with dY_l^m/dX_c = sum_k M[m + l, c (2l-1) + k] Y_{l-1}^{k-l+1}.

    In terms of C (cosine, m >= 0) and S (sine, m >= 1) parts of O (S_l^0 = 0):
    dC_l^m/dX = (C_{l-1}^{m-1} - C_{l-1}^{m+1}) / 2,  dC_l^0/dX = -C_{l-1}^1,
    dS_l^m/dX = (S_{l-1}^{m-1} - S_{l-1}^{m+1}) / 2,
    dC_l^m/dY = -(S_{l-1}^{m-1} + S_{l-1}^{m+1}) / 2,  dC_l^0/dY = -S_{l-1}^1,
    dS_l^m/dY = (C_{l-1}^{m-1} + C_{l-1}^{m+1}) / 2,
    dC_l^m/dZ = C_{l-1}^m,  dS_l^m/dZ = S_{l-1}^m.
    Signed index: +m is C^m, -m is S^m.
    """
    width = 2 * l - 1
    out = torch.zeros(2 * l + 1, 3 * width, dtype=torch.float64)

    def put(m: int, direction: int, m_prev: int, coefficient: float) -> None:
        # a term coefficient * B_{l-1}^{m_prev} in dB_l^m / dX_direction, B = C or S by sign
        if abs(m_prev) > l - 1 or coefficient == 0.0:
            return
        scale = math.exp(_log_k(l, m, normalization) - _log_k(l - 1, m_prev, normalization))
        out[m + l, direction * width + m_prev + l - 1] += coefficient * scale

    for m in range(0, l + 1):
        # cosine part C_l^m, signed index +m
        if m == 0:
            put(0, 0, 1, -1.0)  # -C^1
            put(0, 1, -1, -1.0)  # -S^1
        else:
            put(m, 0, m - 1, 0.5)  # C^{m-1}
            put(m, 0, m + 1, -0.5)
            if m - 1 >= 1:
                put(m, 1, -(m - 1), -0.5)  # S^{m-1}
            put(m, 1, -(m + 1), -0.5)
        put(m, 2, m, 1.0)
        if m == 0:
            continue
        # sine part S_l^m, signed index -m
        if m - 1 >= 1:
            put(-m, 0, -(m - 1), 0.5)
        put(-m, 0, -(m + 1), -0.5)
        put(-m, 1, m - 1, 0.5)  # C^{m-1} (C^0 when m = 1)
        put(-m, 1, m + 1, 0.5)
        put(-m, 2, -m, 1.0)
    return out


_COEFFICIENTS: dict[tuple[int, str], _Coefficients] = {}


def _coefficients(lmax: int, normalization: str) -> _Coefficients:
    key = (lmax, normalization)
    if key not in _COEFFICIENTS:
        _COEFFICIENTS[key] = _Coefficients(lmax, normalization)
    return _COEFFICIENTS[key]


# ----------------------------------------------------------------------------- kernels
def _forward(u: Tensor, coefficients: _Coefficients) -> Tensor:
    """Y_0..Y_lmax of u (n, 3), in the (X, Y, Z) = (z, x, y) frame; returns (n, (lmax+1)^2)."""
    lmax = coefficients.lmax
    values, _ = coefficients.on(u)
    n = u.shape[0]
    rows = u.t().contiguous()  # [3, n]
    big_y, big_z, big_x = rows[0], rows[1], rows[2]
    out = u.new_empty((lmax + 1) ** 2, n)  # [dim, n], one row per component
    out[0] = values[0]
    if lmax == 0:
        return out.t()
    r2 = (rows * rows).sum(0)  # [n]

    # powers w^m = c_m + i s_m, m = 1..lmax, by doubling
    c = u.new_empty(lmax + 1, n)
    s = u.new_empty(lmax + 1, n)
    c[1] = big_x
    s[1] = big_y
    k = 1
    while k < lmax:
        j = min(k, lmax - k)
        c_lo, s_lo = c[1 : j + 1], s[1 : j + 1]
        torch.mul(c_lo, c[k], out=c[k + 1 : k + j + 1])
        c[k + 1 : k + j + 1].addcmul_(s_lo, s[k], value=-1.0)
        torch.mul(s_lo, c[k], out=s[k + 1 : k + j + 1])
        s[k + 1 : k + j + 1].addcmul_(c_lo, s[k])
        k += j

    for l in range(1, lmax + 1):
        o = l * l
        edge = values[coefficients.edge[l]]
        torch.mul(s[l], edge, out=out[o])
        torch.mul(c[l], edge, out=out[o + 2 * l])
        inner = out[o + 1 : o + 2 * l]
        torch.mul(out[(l - 1) ** 2 : o], big_z, out=inner)
        inner.mul_(values[coefficients.a[l]].unsqueeze(1))
        if l >= 2:
            out[o + 2 : o + 2 * l - 1].addcmul_(
                out[(l - 2) ** 2 : (l - 1) ** 2] * r2,
                values[coefficients.b[l]].unsqueeze(1),
                value=-1.0,
            )
    return out.t()  # [n, dim]


def _backward(grad: Tensor, y: Tensor, coefficients: _Coefficients) -> Tensor:
    """Gradient (n, 3) w.r.t. u given grad (n, dim) w.r.t. y (n, dim); differentiable."""
    _, ladder = coefficients.on(y)
    n = y.shape[0]
    total = y.new_zeros(n, 3)  # columns X, Y, Z
    for l in range(1, coefficients.lmax + 1):
        o = l * l
        pulled = grad[:, o : o + 2 * l + 1] @ ladder[l]  # [n, 3 (2l-1)]
        prev = y[:, (l - 1) ** 2 : o].unsqueeze(1)  # [n, 1, 2l-1]
        total = total + (pulled.view(n, 3, 2 * l - 1) * prev).sum(-1)
    # (X, Y, Z) = (z, x, y)  ->  (x, y, z) = (Y, Z, X)
    return total[:, [1, 2, 0]]


class _SphericalHarmonicsFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: Tensor, lmax: int, normalization: str) -> Tensor:  # type: ignore[override]
        coefficients = _coefficients(lmax, normalization)
        y = _forward(u, coefficients)
        ctx.save_for_backward(y)
        ctx.lmax = lmax
        ctx.normalization = normalization
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        return _backward(grad, y, _coefficients(ctx.lmax, ctx.normalization)), None, None


# ----------------------------------------------------------------------------- public API
def _parse_ls(ls: int | list[int] | tuple[int, ...] | str | Irreps) -> list[int]:
    if isinstance(ls, bool):
        raise TypeError(f"ls must be an int, a list of ints or irreps, got {ls!r}")
    if isinstance(ls, int):
        if ls < 0:
            raise ValueError(f"l must be >= 0, got {ls}")
        return [ls]
    if isinstance(ls, (str, Irreps)):
        irreps = Irreps(ls)
        out: list[int] = []
        for mul, ir in irreps:
            if ir.p != (-1) ** ir.l:
                raise ValueError(
                    f"spherical harmonics have parity (-1)^l, got irrep {ir} in {irreps!r}; "
                    "expected e.g. '1x0e+1x1o+1x2e'"
                )
            out.extend([ir.l] * mul)
        return out
    if isinstance(ls, (list, tuple)):
        out = []
        for l in ls:
            if isinstance(l, bool) or not isinstance(l, int) or l < 0:
                raise ValueError(f"ls must contain integers >= 0, got {l!r} in {ls!r}")
            out.append(l)
        return out
    raise TypeError(f"ls must be an int, a list of ints or irreps, got {type(ls).__name__}")


def _normalize(x: Tensor) -> Tensor:
    """x / |x|, and 0 at x = 0, with finite derivatives of every order everywhere."""
    r2 = (x * x).sum(-1, keepdim=True)
    return x * torch.where(r2 > 0, r2, torch.ones_like(r2)).rsqrt()


def spherical_harmonics(
    ls: int | list[int] | tuple[int, ...] | str | Irreps,
    x: Tensor,
    normalize: bool = True,
    normalization: str = "component",
) -> Tensor:
    r"""Real spherical harmonics :math:`Y^l(x)` for every ``l`` of ``ls``, concatenated.

    See the module docstring for the recurrence. The basis, the order ``m = -l..l`` and the
    values are e3nn 0.6's (``y`` is the polar axis, :math:`Y^1 \propto (x, y, z)`).

    Args:
        ls: an ``l``, a list of them (any order, repeats allowed), or irreps such as
            ``"1x0e+1x1o+1x2e"`` whose parities are all :math:`(-1)^l`.
        x: vectors, shape ``(..., 3)``.
        normalize: evaluate on :math:`x / |x|` (the zero vector gives :math:`Y^{l\ge1} = 0`).
            Without it the result is a homogeneous polynomial of degree ``l`` in ``x``.
        normalization: ``"component"`` (:math:`\|Y^l(\hat x)\|^2 = 2l+1`, the default),
            ``"norm"`` (:math:`\|Y^l(\hat x)\| = 1`) or ``"integral"``
            (:math:`\int (Y_l^m)^2 d\Omega = 1`; e3nn's default).

    Returns:
        Tensor of shape ``(..., sum(2l+1))``.

    >>> import torch
    >>> from equidyn.o3 import spherical_harmonics
    >>> y = spherical_harmonics([0, 1, 2], torch.tensor([[0.0, 0.0, 2.0]]))
    >>> [round(v, 4) for v in y[0].tolist()]
    [1.0, 0.0, 0.0, 1.7321, 0.0, 0.0, -1.118, 0.0, 1.9365]
    >>> spherical_harmonics(2, torch.zeros(3)).tolist()  # zero vector: Y^{l>=1} = 0
    [0.0, 0.0, 0.0, 0.0, 0.0]
    """
    ls_list = _parse_ls(ls)
    if normalization not in _NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (..., 3), got {type(x).__name__}")
    if x.dim() == 0 or x.shape[-1] != 3:
        raise ValueError(f"x must have shape (..., 3), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating point tensor, got dtype {x.dtype}")
    batch = x.shape[:-1]
    if len(ls_list) == 0:
        return x.new_zeros(*batch, 0)
    lmax = max(ls_list)
    u = x.reshape(-1, 3)
    if normalize:
        u = _normalize(u)
    y = _SphericalHarmonicsFunction.apply(u, lmax, normalization)  # [n, (lmax+1)^2]
    if ls_list != list(range(lmax + 1)):
        index = [i for l in ls_list for i in range(l * l, (l + 1) * (l + 1))]
        y = y[:, index]
    return y.reshape(*batch, y.shape[-1])  # [..., sum(2l+1)]


class SphericalHarmonics(nn.Module):
    r"""Module form of :func:`spherical_harmonics`: ``x (..., 3) -> (..., irreps_out.dim)``.

    >>> import torch
    >>> from equidyn.o3 import SphericalHarmonics
    >>> sh = SphericalHarmonics([0, 1, 2])
    >>> sh.irreps_out
    1x0e+1x1o+1x2e
    >>> sh(torch.randn(10, 3)).shape
    torch.Size([10, 9])
    """

    def __init__(
        self,
        ls: int | list[int] | tuple[int, ...] | str | Irreps,
        normalize: bool = True,
        normalization: str = "component",
    ) -> None:
        super().__init__()
        ls_list = _parse_ls(ls)
        if normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {_NORMALIZATIONS}, got {normalization!r}"
            )
        self.ls = ls_list
        self.normalize = normalize
        self.normalization = normalization
        self.irreps_out = Irreps([(1, (l, (-1) ** l)) for l in ls_list])

    def forward(self, x: Tensor) -> Tensor:
        return spherical_harmonics(self.ls, x, self.normalize, self.normalization)

    def extra_repr(self) -> str:
        return (
            f"irreps_out={self.irreps_out}, normalize={self.normalize}, "
            f"normalization={self.normalization!r}"
        )
