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
(:math:`\int_{S^2} (Y_l^m)^2\, d\Omega = 1`).

The code runs the recurrence on :math:`V_l^m = Y_l^m / \gamma_l^m`, with the constant
:math:`\gamma_l^m` chosen so that each entry costs one multiply and one multiply-add:

.. math::

    V_l^{l} + i\, V_l^{-l} = w^l = w\, w^{l-1}, \qquad
    V_l^m = Z\, V_{l-1}^m - b_l^m\, r^2\, V_{l-2}^m \quad (|m| < l),

:math:`\gamma_l^{\pm l} = K_l^l / (2^l l!)`,
:math:`\gamma_l^m = \gamma_{l-1}^m K_l^m (2l-1) / (K_{l-1}^m (l^2 - m^2))` and
:math:`b_l^m = \gamma_{l-2}^m K_l^m / (\gamma_l^m K_{l-2}^m (l^2 - m^2))`; one final
multiply by :math:`\gamma` gives :math:`Y`. With ``normalize=True``, :math:`r^2 = 1` (and
:math:`0` at the zero vector). Every step is a product over whole rows of all the vectors at
once, in component-major storage (one contiguous row per :math:`(l, m)`): the result is a
``(..., dim)`` view of that storage (call ``.contiguous()`` for row-major storage). Only
products and sums appear: no square root, arctangent or division depends on the input, so
every axis is regular. :math:`|V| \sim 2^{-l}`: float32 is fine to :math:`l \approx 100`.

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
from equidyn.o3.rotations import _is_compiling as _compiling

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
    """All constants of the recurrence and of the ladder relations, float64, packed flat.

    The forward pass runs on V_l^m = Y_l^m / gamma_l^m, the scale gamma chosen so that the
    recurrence reads V_l^m = Z V_{l-1}^m - b_l^m r^2 V_{l-2}^m (one multiply-add per entry)
    and V_l^{+-l} = (Re, Im) w^l; one final multiply by gamma gives Y.
    """

    def __init__(self, lmax: int, normalization: str) -> None:
        self.lmax = lmax
        dim = (lmax + 1) ** 2
        gamma = [0.0] * dim
        gamma[0] = math.exp(_log_k(0, 0, normalization))
        b_values: list[float] = []
        self.b: list[slice] = [slice(0, 0), slice(0, 0)]
        for l in range(1, lmax + 1):
            edge = math.exp(_log_k(l, l, normalization) - math.lgamma(l + 1) - l * math.log(2.0))
            gamma[l * l] = gamma[l * l + 2 * l] = edge
            for m in range(-(l - 1), l):
                a = math.exp(_log_k(l, m, normalization) - _log_k(l - 1, m, normalization))
                a *= (2 * l - 1) / (l * l - m * m)
                gamma[l * l + l + m] = a * gamma[(l - 1) ** 2 + (l - 1) + m]
            if l >= 2:
                start = len(b_values)
                for m in range(-(l - 2), l - 1):
                    b = math.exp(_log_k(l, m, normalization) - _log_k(l - 2, m, normalization))
                    b /= l * l - m * m
                    b *= gamma[(l - 2) ** 2 + (l - 2) + m] / gamma[l * l + l + m]
                    b_values.append(b)
                self.b.append(slice(start, len(b_values)))
        self.gamma = torch.tensor(gamma, dtype=torch.float64)  # [dim]
        self.b_values = torch.tensor(b_values, dtype=torch.float64).unsqueeze(1)  # [*, 1]

        # Backward: per l, the ladder relations as two small matrices acting on products of
        # three overlapping row windows of grad Y_l with Y_{l-1} (see _ladder).
        self.windows = [_window_coefficients(l, normalization) for l in range(1, lmax + 1)]
        self.reverse = torch.tensor(
            [(l - 1) ** 2 + 2 * l - 2 - j for l in range(1, lmax + 1) for j in range(2 * l - 1)],
            dtype=torch.long,
        )  # reverses each block Y_{l-1}, l = 1..lmax
        self.cache: dict[tuple[torch.dtype, torch.device], tuple] = {}

    def on(self, like: Tensor) -> tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]], Tensor]:
        """(gamma, b, window coefficients, reverse index) on the dtype/device of ``like``.

        Cached per (dtype, device), except while ``torch.compile`` traces: a tensor made
        inside a traced autograd.Function and stored outside it would escape the trace (a
        model compiled before its first eager call failed so), and the traced graph folds
        the conversions into constants anyway."""
        key = (like.dtype, like.device)
        if key not in self.cache:
            dtype, device = like.dtype, like.device
            converted = (
                self.gamma.to(dtype=dtype, device=device),
                self.b_values.to(dtype=dtype, device=device),
                [
                    (c1.to(dtype=dtype, device=device), c2.to(dtype=dtype, device=device))
                    for c1, c2 in self.windows
                ],
                self.reverse.to(device=device),
            )
            if _compiling():
                return converted
            self.cache[key] = converted
        return self.cache[key]


def _window_coefficients(l: int, normalization: str) -> tuple[Tensor, Tensor]:
    """Coefficients of the backward pass of block l, read off the ladder matrix M_l.

    With w = 2l - 1 and j = 0..w-1 indexing Y_{l-1}: rows j, j+1, j+2 of grad Y_l (windows
    k = 0, 1, 2) meet Y_{l-1}[j] in d/dX (k = 0, 2) and d/dZ (k = 1); rows j, j+2 meet the
    reversed Y_{l-1}[w-1-j] in d/dY. Returns c1 (3, w*3), columns (j, k), for the products
    with Y_{l-1}, and c2 (3, 2*w), columns (k', j) with k' = 0, 2, for the reversed ones.
    """
    m = _ladder_matrix(l, normalization)  # [2l+1][3w]
    w = 2 * l - 1
    c1 = [[[0.0] * 3 for _ in range(w)] for _ in range(3)]  # [3][w][3]
    c2 = [[[0.0] * w for _ in range(2)] for _ in range(3)]  # [3][2][w]
    for j in range(w):
        c1[0][j][0], c1[0][j][2] = m[j][j], m[j + 2][j]
        c1[2][j][1] = m[j + 1][2 * w + j]
        c2[1][0][j], c2[1][1][j] = m[j][2 * w - 1 - j], m[j + 2][2 * w - 1 - j]
    used = sum(abs(v) for a in c1 + c2 for b in a for v in b)
    whole = sum(abs(v) for row in m for v in row)
    if abs(used - whole) > 1e-9 * whole:
        raise RuntimeError(f"internal error: ladder structure of l={l} not captured")
    return (
        torch.tensor(c1, dtype=torch.float64).reshape(3, w * 3),
        torch.tensor(c2, dtype=torch.float64).reshape(3, 2 * w),
    )


def _ladder_matrix(l: int, normalization: str) -> list[list[float]]:
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
    out = [[0.0] * (3 * width) for _ in range(2 * l + 1)]  # plain Python: no tracing

    def put(m: int, direction: int, m_prev: int, coefficient: float) -> None:
        # a term coefficient * B_{l-1}^{m_prev} in dB_l^m / dX_direction, B = C or S by sign
        if abs(m_prev) > l - 1 or coefficient == 0.0:
            return
        scale = math.exp(_log_k(l, m, normalization) - _log_k(l - 1, m_prev, normalization))
        out[m + l][direction * width + m_prev + l - 1] += coefficient * scale

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
def _forward(x: Tensor, coefficients: _Coefficients, normalize: bool) -> Tensor:
    """Y_0..Y_lmax of x (n, 3) in the (X, Y, Z) = (z, x, y) frame, as a (dim, n) tensor.

    Component-major: every step of the recurrence is a multiply or multiply-add over whole
    contiguous rows of n values.
    """
    lmax = coefficients.lmax
    gamma, b, _, _ = coefficients.on(x)
    n = x.shape[0]
    rows = x.t().clone(memory_format=torch.contiguous_format)  # [3, n], never a view of x
    r2 = (rows * rows).sum(0)  # [n]
    if normalize:
        nonzero = r2 > 0
        rows.mul_(torch.where(nonzero, r2, 1.0).rsqrt_())  # the zero vector stays zero
        r2 = nonzero.to(x.dtype)  # |x / |x||^2: 1, or 0 for the zero vector
    big_y, big_z, big_x = rows[0], rows[1], rows[2]
    v = x.new_empty((lmax + 1) ** 2, n)  # [dim, n], V = Y / gamma
    v[0] = 1.0
    if lmax >= 1:
        v[1] = big_y  # Im w
        torch.mul(v[0], big_z, out=v[2])
        v[3] = big_x  # Re w
    for l in range(2, lmax + 1):
        o, p = l * l, (l - 1) * (l - 1)
        s_prev, c_prev = v[p], v[o - 1]
        # w^l = w w^(l-1): Im = X s + Y c, Re = X c - Y s
        torch.mul(s_prev, big_x, out=v[o]).addcmul_(c_prev, big_y)
        torch.mul(c_prev, big_x, out=v[o + 2 * l]).addcmul_(s_prev, big_y, value=-1.0)
        # |m| < l: V_l = Z V_{l-1} - b r^2 V_{l-2}
        torch.mul(v[p:o], big_z, out=v[o + 1 : o + 2 * l])
        if normalize:
            # r^2 = 1, except at the zero vector, where only V_0 is nonzero
            prev2 = r2.unsqueeze(0) if l == 2 else v[(l - 2) ** 2 : p]
        else:
            prev2 = v[(l - 2) ** 2 : p] * r2
        v[o + 2 : o + 2 * l - 1].addcmul_(prev2, b[coefficients.b[l]], value=-1.0)
    return v.mul_(gamma.unsqueeze(1))  # [dim, n]


def _ladder(grad: Tensor, y: Tensor, coefficients: _Coefficients) -> Tensor:
    """sum_j grad_j dY_j/du as (3, n), rows X, Y, Z, from grad and Y(u), both (dim, n).

    Per l: three overlapping row windows of grad Y_l (a view) times Y_{l-1}, two of them times
    the reversed Y_{l-1}, reduced by two small matrix products. Only differentiable
    operations, so this serves double backward too.
    """
    _, _, windows, reverse = coefficients.on(y)
    n = y.shape[1]
    if not grad.is_contiguous():
        grad = grad.contiguous()  # component-major rows
    y_rev = y.index_select(0, reverse)  # [dim of l < lmax, n]
    total = y.new_zeros(3, n)
    for l in range(1, coefficients.lmax + 1):
        o, p, w = l * l, (l - 1) ** 2, 2 * l - 1
        c1, c2 = windows[l - 1]
        g = grad[o : o + 2 * l + 1].unfold(0, w, 1).permute(2, 0, 1)  # [w, 3, n] windows
        with_y = (g * y[p:o].unsqueeze(1)).reshape(w * 3, n)
        with_r = (g[:, 0::2].transpose(0, 1) * y_rev[p:o]).reshape(2 * w, n)
        total = torch.addmm(torch.addmm(total, c1, with_y), c2, with_r)
    return total


def _normalize(x: Tensor) -> tuple[Tensor, Tensor]:
    """(x / |x|, 1 / |x|), with (0, 1) at x = 0; finite derivatives of every order."""
    r2 = (x * x).sum(-1, keepdim=True)
    inv = torch.where(r2 > 0, r2, torch.ones_like(r2)).rsqrt()
    return x * inv, inv


class _SphericalHarmonicsFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x: Tensor, lmax: int, normalize: bool, normalization: str
    ) -> Tensor:
        y = _forward(x, _coefficients(lmax, normalization), normalize).t()  # [n, dim]
        ctx.save_for_backward(x, y)
        ctx.lmax = lmax
        ctx.normalize = normalize
        ctx.normalization = normalization
        return y

    @staticmethod
    def backward(  # type: ignore[override]
        ctx, grad: Tensor
    ) -> tuple[Tensor | None, None, None, None]:
        x, y = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        coefficients = _coefficients(ctx.lmax, ctx.normalization)
        grad_u = _ladder(grad.t(), y.t(), coefficients)  # [3, n], rows X, Y, Z
        grad_u = grad_u[[1, 2, 0]].t()  # [n, 3], columns x, y, z
        if not ctx.normalize:
            return grad_u, None, None, None
        # u = x / |x|: du/dx = (1 - u u^T) / |x|  (identity at x = 0, where u = x)
        u, inv = _normalize(x)
        grad_x = inv * (grad_u - u * (u * grad_u).sum(-1, keepdim=True))
        return grad_x, None, None, None


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


def _check_finite(x: Tensor) -> None:
    """``ValueError`` naming the first non-finite vector of ``x`` (skipped under compile and
    for data-less ``meta`` tensors)."""
    if _compiling() or x.numel() == 0 or x.is_meta:
        return
    bad = ~torch.isfinite(x).all(dim=-1)  # [...]
    if bool(bad.any()):
        first = bad.nonzero()[0].tolist()
        raise ValueError(
            f"x must be finite: vector at index {first} is {x[tuple(first)].tolist()} "
            "(the direction of a NaN or infinite vector is undefined)"
        )


def spherical_harmonics(
    ls: int | list[int] | tuple[int, ...] | str | Irreps,
    x: Tensor,
    normalize: bool,
    normalization: str = "integral",
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
            Required, as in e3nn.
        normalization: ``"integral"`` (:math:`\int (Y_l^m)^2 d\Omega = 1`, the default, as
            in e3nn), ``"component"`` (:math:`\|Y^l(\hat x)\|^2 = 2l+1`, what equidyn's
            models use) or ``"norm"`` (:math:`\|Y^l(\hat x)\| = 1`).

    Returns:
        Tensor of shape ``(..., sum(2l+1))`` (``[..., irreps.dim]``), in the dtype and on the
        device of ``x``. Its storage is component-major (each component contiguous over the
        vectors, as it is computed); ``.contiguous()`` gives row-major storage.

    >>> import torch
    >>> from equidyn.o3 import spherical_harmonics
    >>> y = spherical_harmonics([0, 1, 2], torch.tensor([[0.0, 0.0, 2.0]]), True, "component")
    >>> [round(v, 4) for v in y[0].tolist()]
    [1.0, 0.0, 0.0, 1.7321, 0.0, 0.0, -1.118, 0.0, 1.9365]
    >>> round(spherical_harmonics(0, torch.ones(3), normalize=True).item(), 4)  # 1/sqrt(4 pi)
    0.2821
    >>> spherical_harmonics(2, torch.zeros(3), normalize=True).tolist()  # Y^{l>=1}(0) = 0
    [0.0, 0.0, 0.0, 0.0, 0.0]

    Non-finite vectors (NaN or inf) raise ``ValueError`` naming the first one: their
    direction, and so every :math:`Y^l`, is undefined.
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
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    _check_finite(x)
    batch = x.shape[:-1]
    if len(ls_list) == 0:
        return x.new_zeros(*batch, 0)
    lmax = max(ls_list)
    # the constants are built (once) here, outside the autograd.Function: built inside it
    # while torch.compile traces, they would escape the Function's subgraph into the cache
    _coefficients(lmax, normalization)
    y = _SphericalHarmonicsFunction.apply(x.reshape(-1, 3), lmax, normalize, normalization)
    # y: [n, (lmax+1)^2]
    if ls_list != list(range(lmax + 1)):
        index = [i for l in ls_list for i in range(l * l, (l + 1) * (l + 1))]
        y = y.t()[index].t()  # rows of the component-major storage
    return y.reshape(*batch, y.shape[-1])  # [..., sum(2l+1)]


class SphericalHarmonics(nn.Module):
    r"""Module form of :func:`spherical_harmonics`: ``x (..., 3) -> (..., irreps_out.dim)``.

    >>> import torch
    >>> from equidyn.o3 import SphericalHarmonics
    >>> sh = SphericalHarmonics([0, 1, 2], normalize=True, normalization="component")
    >>> sh.irreps_out
    1x0e+1x1o+1x2e
    >>> sh(torch.randn(10, 3)).shape
    torch.Size([10, 9])
    """

    def __init__(
        self,
        ls: int | list[int] | tuple[int, ...] | str | Irreps,
        normalize: bool,
        normalization: str = "integral",
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
        if ls_list:
            _coefficients(max(ls_list), normalization)  # build the constants outside any trace

    def forward(self, x: Tensor) -> Tensor:
        return spherical_harmonics(self.ls, x, self.normalize, self.normalization)

    def extra_repr(self) -> str:
        return (
            f"irreps_out={self.irreps_out}, normalize={self.normalize}, "
            f"normalization={self.normalization!r}"
        )
