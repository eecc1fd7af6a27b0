r"""Symmetric contraction: equivariant polynomials of one feature with itself (MACE's product).

For a feature :math:`x \in V = \bigoplus_a V_{l_a, p_a}` (one channel, dimension :math:`d`)
and an output irrep :math:`(L, P)`, the equivariant homogeneous polynomials of degree
:math:`\nu` are the linear maps :math:`\mathrm{Sym}^\nu V \to V_{L,P}`, written with a tensor
:math:`U^{(\nu)} \in \mathbb{R}^{d^\nu \times (2L+1) \times K_\nu}`

.. math::  P^{(\nu)}_{kM}(x) = \sum_{i_1 \ldots i_\nu} U^{(\nu)}_{i_1 \ldots i_\nu M k}\,
           x_{i_1} \cdots x_{i_\nu}, \qquad k = 1 \ldots K_\nu ,

where :math:`K_\nu = \dim \mathrm{Hom}_{O(3)}(\mathrm{Sym}^\nu V, V_{L,P})`. The columns of
:math:`U` are built by successive Clebsch–Gordan coupling
:math:`((l_{a_1} \otimes l_{a_2})_{L_{12}} \otimes l_{a_3})_{L}` of every multiset of input irreps
and every intermediate :math:`L_{12}, L_{123}, \ldots` with matching parity, symmetrized over the
:math:`\nu!` permutations of the factors, and reduced to a basis by Gram–Schmidt in float64
(linearly dependent candidates, e.g. recouplings of the same multiset, are dropped). The inner
product is the one of the polynomials under a standard Gaussian input,
:math:`\langle P, Q\rangle = \mathbb{E}_{x \sim N(0, I)} \frac{1}{2L+1}\sum_M P_M(x) Q_M(x)`
(computed exactly from Gaussian moments), so the basis polynomials are uncorrelated with unit
variance: a layer whose weights are :math:`N(0, 1)` divided by
:math:`\sqrt{K_\nu \cdot n_\nu}` has unit-variance outputs for unit Gaussian inputs.

:class:`SymmetricContraction` applies this channel-wise with one weight vector per species,
channel and degree (MACE's :math:`B`-features, body order :math:`\nu + 1`):

.. math::  B_{c, LM}(x, z) = \sum_{\nu=1}^{\nu_{\max}} \sum_{k} w^{(\nu)}_{z k c}\,
           P^{(\nu)}_{kM}(x_{c})

It evaluates the polynomials on the :math:`\binom{d+\nu-1}{\nu}` distinct monomials
:math:`x_{i_1} \cdots x_{i_\nu}`, :math:`i_1 \le \ldots \le i_\nu` (built in place from the
lower degree, no gathers) and contracts them with the weight-folded tensor in one batched
matrix product, which costs :math:`\nu!` times less than contracting the full :math:`d^\nu`
tensor.

>>> import torch
>>> from equidyn.o3 import Irreps
>>> from equidyn.o3.symmetric_contraction import symmetric_power_basis
>>> symmetric_power_basis(Irreps("1x1o"), "0e", 2).shape  # |x|^2 is the one invariant
torch.Size([3, 3, 1, 1])
>>> sc = SymmetricContraction("8x0e + 8x1o", "8x0e + 8x1o", correlation=3, num_species=2)
>>> x = torch.randn(5, sc.irreps_in.dim)
>>> sc(x, torch.tensor([0, 1, 1, 0, 1])).shape  # [n_nodes, irreps_out.dim]
torch.Size([5, 32])
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from equidyn.o3.irreps import Irrep, Irreps

__all__ = [
    "SymmetricContraction",
    "symmetric_power_basis",
    "symmetric_power_count",
    "monomial_exponents",
]


# --------------------------------------------------------------------------- monomials
def _sorted_tuples(d: int, degree: int) -> list[tuple[int, ...]]:
    """Non-decreasing index tuples in the order :func:`_monomials` builds them: by the last
    index, then recursively (so tuples whose indices are all ``< n`` come first)."""
    if degree == 1:
        return [(i,) for i in range(d)]
    lower = _sorted_tuples(d, degree - 1)
    out = []
    for k in range(d):
        out.extend(t + (k,) for t in lower if t[-1] <= k)
    return out


def monomial_exponents(d: int, degree: int) -> np.ndarray:
    """Exponent vectors ``[n_monomials, d]`` of the monomials of ``degree`` in ``d`` variables,
    in the order used by :class:`SymmetricContraction` (``C(d + degree - 1, degree)`` rows).

    >>> monomial_exponents(2, 2).tolist()  # x0^2, x0 x1, x1^2
    [[2, 0], [1, 1], [0, 2]]
    """
    tuples = _sorted_tuples(d, degree)
    alpha = np.zeros((len(tuples), d), dtype=np.int64)
    for r, t in enumerate(tuples):
        for i in t:
            alpha[r, i] += 1
    return alpha


def _monomials(x: Tensor, degree: int) -> list[Tensor]:
    """``[x, x^2, ..., x^degree]`` as the distinct monomials along the last axis:
    entry ``nu - 1`` has ``C(d + nu - 1, nu)`` columns ordered as :func:`monomial_exponents`."""
    d = x.shape[-1]
    out = [x]
    # prefix[n] = number of sorted tuples of the previous degree whose indices are all < n
    prefix = list(range(d + 1))
    for nu in range(2, degree + 1):
        prev = out[-1]
        parts = [prev[..., : prefix[k + 1]] * x[..., k : k + 1] for k in range(d)]
        out.append(torch.cat(parts, dim=-1))
        prefix = [math.comb(n + nu - 1, nu) for n in range(d + 1)]
    return out


def _gaussian_gram(alpha: np.ndarray) -> np.ndarray:
    r""":math:`G_{st} = \mathbb{E}[x^{\alpha_s} x^{\alpha_t}]` for :math:`x \sim N(0, I)`."""
    top = int(2 * alpha.max()) + 1
    moment = np.zeros(top + 1)
    for n in range(0, top + 1, 2):
        moment[n] = float(np.prod(np.arange(n - 1, 0, -2))) if n > 0 else 1.0  # (n-1)!!
    n = alpha.shape[0]
    gram = np.zeros((n, n))
    for lo in range(0, n, 128):
        s = alpha[lo : lo + 128, None, :] + alpha[None, :, :]  # [b, n, d]
        gram[lo : lo + 128] = moment[s].prod(axis=-1)
    return gram


# --------------------------------------------------------------------------- the basis
def _flat_irreps(irreps: Irreps) -> list[tuple[int, int, int]]:
    """``(l, p, offset)`` of every copy of every irrep."""
    out = []
    offset = 0
    for mul, ir in irreps:
        for _ in range(mul):
            out.append((ir.l, ir.p, offset))
            offset += ir.dim
    return out


@functools.cache
def _w3j(l1: int, l2: int, l3: int) -> Tensor:
    from equidyn.o3.wigner import wigner_3j

    return wigner_3j(l1, l2, l3, dtype=torch.float64)


def _coupling_chains(ls: tuple[int, ...], L: int) -> list[Tensor]:
    """All successive couplings ``((l1 x l2)_L12 x l3)_L123 ... -> L`` as tensors
    ``[2l1+1, ..., 2lnu+1, 2L+1]`` (float64)."""
    states = [(torch.eye(2 * ls[0] + 1, dtype=torch.float64), ls[0])]
    for k in range(1, len(ls)):
        rest = sum(ls[k + 1 :])
        new_states = []
        for t, lc in states:
            for ln in range(abs(lc - ls[k]), lc + ls[k] + 1):
                if ln > L + rest or L > ln + rest:  # L out of reach of what is left
                    continue
                c = _w3j(lc, ls[k], ln)  # [2lc+1, 2lk+1, 2ln+1]
                t_new = (t.reshape(-1, c.shape[0]) @ c.reshape(c.shape[0], -1)).reshape(
                    *t.shape[:-1], c.shape[1], c.shape[2]
                )  # [2l1+1, ..., 2lk+1, 2ln+1]
                new_states.append((t_new, ln))
        states = new_states
    return [t for t, lc in states if lc == L]


@functools.lru_cache(maxsize=16)
def _monomial_data(
    d: int, degree: int
) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray, np.ndarray]:
    """Sorted index tuples, their index array ``[n_mono, degree]``, multinomial multiplicities
    and the upper Cholesky factor of the Gaussian Gram matrix of the monomials."""
    tuples = _sorted_tuples(d, degree)
    index = np.array(tuples, dtype=np.int64)
    alpha = monomial_exponents(d, degree)
    mult = np.array(
        [math.factorial(degree) / math.prod(math.factorial(int(a)) for a in row) for row in alpha]
    )
    chol = np.linalg.cholesky(_gaussian_gram(alpha)).T  # <P, Q> = (R p) . (R q)
    return tuples, index, mult, chol


@functools.lru_cache(maxsize=128)
def _basis_monomial(irreps_str: str, ir_out_str: str, degree: int) -> np.ndarray:
    """Basis in monomial coordinates ``[n_monomials, 2L+1, K]`` (float64), orthonormal for the
    Gaussian inner product of the module docstring."""
    irreps = Irreps(irreps_str)
    ir_out = Irrep(ir_out_str)
    L, P = ir_out.l, ir_out.p
    d = irreps.dim
    flat = _flat_irreps(irreps)
    tuples, index, mult, chol = _monomial_data(d, degree)
    perms = list(itertools.permutations(range(degree)))
    scale = (mult / math.factorial(degree))[:, None]

    basis = np.zeros((0, len(tuples) * (2 * L + 1)))  # rows orthonormal, Cholesky coordinates
    for combo in itertools.combinations_with_replacement(range(len(flat)), degree):
        ls = tuple(flat[a][0] for a in combo)
        if math.prod(flat[a][1] for a in combo) != P:
            continue
        sl = tuple(slice(flat[a][2], flat[a][2] + 2 * flat[a][0] + 1) for a in combo)
        for chain in _coupling_chains(ls, L):
            full = torch.zeros((d,) * degree + (2 * L + 1,), dtype=torch.float64)
            full[sl] = chain
            sym = sum(full.permute(*p, degree) for p in perms)  # sum over the nu! orderings
            coef = sym.numpy()[tuple(index.T)] * scale  # [n_mono, 2L+1] monomial coefficients
            v = (chol @ coef).reshape(-1) / math.sqrt(2 * L + 1)
            for _ in range(2):  # Gram-Schmidt, twice for stability
                v = v - basis.T @ (basis @ v)
            nv = float(np.linalg.norm(v))
            # candidates are O(1) (unit-norm Clebsch-Gordan chains); a residual at rounding
            # level means "zero after symmetrization" or "dependent on the previous ones"
            if nv < 1e-9:
                continue
            basis = np.concatenate([basis, (v / nv)[None]], axis=0)
    if basis.shape[0] == 0:
        return np.zeros((len(tuples), 2 * L + 1, 0))
    coords = basis.reshape(-1, len(tuples), 2 * L + 1) * math.sqrt(2 * L + 1)  # [K, n_mono, M]
    rhs = torch.from_numpy(coords.transpose(1, 0, 2).reshape(len(tuples), -1))
    coef = torch.linalg.solve_triangular(torch.from_numpy(chol), rhs, upper=True).numpy()
    return coef.reshape(len(tuples), -1, 2 * L + 1).transpose(0, 2, 1).copy()  # [n_mono, M, K]


def _check_degree(degree: int, what: str = "degree") -> None:
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
        raise ValueError(f"{what} must be an int >= 1, got {degree!r}")


def symmetric_power_basis(irreps: Irreps | str, ir_out: Irrep | str, degree: int) -> Tensor:
    r"""The tensor :math:`U^{(\nu)}` ``[d, ..., d, 2L+1, K]`` (``degree`` axes of size ``d``,
    float64) of the equivariant polynomials :math:`\mathrm{Sym}^\nu V \to V_{L,P}`.

    ``U`` is symmetric under any permutation of its first ``degree`` axes, and
    :math:`x \mapsto U \cdot x^{\otimes \nu}` is equivariant. Columns are orthonormal in the
    Gaussian inner product of the module docstring (not in the Frobenius norm).

    >>> U = symmetric_power_basis("1x1o", "1e", 2)  # x cross x = 0: no pseudovector
    >>> U.shape
    torch.Size([3, 3, 3, 0])
    >>> symmetric_power_basis("1x0e + 1x1o", "1o", 2).shape[-1]  # s*v
    1
    """
    irreps = Irreps(irreps)
    ir_out = Irrep(ir_out)
    _check_degree(degree)
    mono = torch.from_numpy(_basis_monomial(str(irreps), str(ir_out), degree))
    d = irreps.dim
    alpha = monomial_exponents(d, degree)
    mult = torch.tensor(
        [math.factorial(degree) / math.prod(math.factorial(int(a)) for a in row) for row in alpha],
        dtype=torch.float64,
    )
    full = torch.zeros((d,) * degree + mono.shape[1:], dtype=torch.float64)
    values = mono / mult[:, None, None]  # a monomial's coefficient is shared by its orderings
    for row, t in enumerate(_sorted_tuples(d, degree)):
        for p in set(itertools.permutations(t)):
            full[p] = values[row]
    return full


def symmetric_power_count(irreps: Irreps | str, ir_out: Irrep | str, degree: int) -> int:
    r""":math:`K_\nu`, the number of independent equivariant polynomials
    :math:`\mathrm{Sym}^\nu V \to V_{L,P}` (the number of paths of that degree).

    >>> symmetric_power_count("1x0e + 1x1o + 1x2e + 1x3o", "0e", 2)  # one |x_l|^2 per l
    4
    """
    irreps = Irreps(irreps)
    _check_degree(degree)
    return int(_basis_monomial(str(irreps), str(Irrep(ir_out)), degree).shape[-1])


# --------------------------------------------------------------------------- the layer
def _monomial_gathers(d: int, correlation: int) -> dict[int, tuple[Tensor, Tensor]]:
    """For every degree ``nu`` in ``2..correlation``: the indices ``(a, b)`` such that monomial
    ``r`` of degree ``nu`` is (monomial ``a[r]`` of degree ``nu - 1``) times ``x[b[r]]``."""
    gather: dict[int, tuple[Tensor, Tensor]] = {}
    for nu in range(2, correlation + 1):
        prev = {t: r for r, t in enumerate(_sorted_tuples(d, nu - 1))}
        tuples = _sorted_tuples(d, nu)
        a = torch.tensor([prev[t[:-1]] for t in tuples], dtype=torch.long)
        b = torch.tensor([t[-1] for t in tuples], dtype=torch.long)
        gather[nu] = (a, b)
    return gather


class SymmetricContraction(nn.Module):
    r"""Channel-wise equivariant polynomial of degree ``1..correlation`` with per-species
    weights (MACE's product basis, see the module docstring).

    Args:
        irreps_in: input features; every irrep must have the same multiplicity ``C`` (the
            channels), e.g. ``"64x0e + 64x1o + 64x2e + 64x3o"``.
        irreps_out: output features with the same multiplicity ``C``, e.g. ``"64x0e + 64x1o"``.
        correlation: the highest degree :math:`\nu_{\max}` (body order :math:`\nu_{\max}+1`).
        num_species: number of weight sets; ``forward`` selects one per node.

    Weights: ``weight_{nu}_{i}`` of shape ``[num_species, K, C]`` for degree ``nu`` and output
    irrep ``i``, initialised :math:`N(0,1)`; the normalisation lives in the fixed basis.

    ``forward(x, species)``: ``x`` ``[n, irreps_in.dim]``, ``species`` ``[n]`` int64
    in ``0..num_species-1``; returns ``[n, irreps_out.dim]``.
    """

    def __init__(
        self,
        irreps_in: Irreps | str,
        irreps_out: Irreps | str,
        correlation: int,
        num_species: int,
    ) -> None:
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        _check_degree(correlation, "correlation")
        _check_degree(num_species, "num_species")
        muls = {mul for mul, _ in self.irreps_in} | {mul for mul, _ in self.irreps_out}
        if len(muls) != 1 or len(self.irreps_in) == 0 or len(self.irreps_out) == 0:
            raise ValueError(
                f"irreps_in ({self.irreps_in}) and irreps_out ({self.irreps_out}) must be "
                "non-empty with one common multiplicity (the channels), e.g. '16x0e + 16x1o'"
            )
        self.num_channels = muls.pop()
        self.correlation = correlation
        self.num_species = num_species
        per_channel = Irreps([(1, ir) for _, ir in self.irreps_in])
        self._per_channel_in = per_channel
        self.d = per_channel.dim
        self.out_dims = [ir.dim for _, ir in self.irreps_out]
        self.m_out = sum(self.out_dims)

        self.n_mono = [math.comb(self.d + nu - 1, nu) for nu in range(1, correlation + 1)]
        gather = _monomial_gathers(self.d, correlation)
        for nu, (a, b) in gather.items():
            if nu < correlation:  # the top degree is never built (see forward)
                self.register_buffer(f"mono_a_{nu}", a, persistent=False)
                self.register_buffer(f"mono_b_{nu}", b, persistent=False)
        self._register_bases(per_channel, gather)

    def _register_bases(
        self, per_channel: Irreps, gather: dict[int, tuple[Tensor, Tensor]]
    ) -> None:
        """The fixed bases ``basis_{nu}_{i}`` (float64 masters kept for exact ``.to()``) and
        the weights ``weight_{nu}_{i}`` ``[num_species, K, C]`` of every degree and output
        irrep that has polynomials."""
        correlation = self.correlation
        self.weight_names: list[tuple[int, int, str]] = []  # (degree, out index, name)
        self._masters: dict[str, Tensor] = {}
        counts = {}
        for nu in range(1, correlation + 1):
            for i, (_, ir) in enumerate(self.irreps_out):
                u = _basis_monomial(str(per_channel), str(ir), nu)  # [n_mono, 2L+1, K]
                k = u.shape[-1]
                counts[(nu, i)] = k
                if k == 0:
                    continue
                master = torch.from_numpy(u / math.sqrt(k * correlation))  # float64
                if nu == correlation and nu > 1:
                    # top degree as a bilinear form in (monomial of degree nu-1, x):
                    # [n_mono_{nu-1}, d, 2L+1, K], each monomial's coefficient put at the
                    # (lower monomial, last index) pair that builds it
                    a, b = gather[nu]
                    full = torch.zeros(self.n_mono[nu - 2], self.d, *master.shape[1:],
                                       dtype=torch.float64)  # fmt: skip
                    full[a, b] = master
                    master = full
                self._masters[f"basis_{nu}_{i}"] = master  # kept for exact .to(float64)
                self.register_buffer(
                    f"basis_{nu}_{i}", master.to(torch.get_default_dtype()), persistent=False
                )
                name = f"weight_{nu}_{i}"
                self.register_parameter(
                    name, nn.Parameter(torch.randn(self.num_species, k, self.num_channels))
                )
                self.weight_names.append((nu, i, name))
        self.path_counts = counts
        if not self.weight_names:
            raise ValueError(
                f"no equivariant polynomial of degree <= {correlation} maps {per_channel} to "
                f"any irrep of {self.irreps_out}"
            )

    def _apply(self, fn: Any, recurse: bool = True) -> SymmetricContraction:
        # .to()/.double()/.cuda(): re-derive the fixed bases from their float64 masters, so a
        # module built in float32 and moved to float64 is exact to float64 precision
        out = super()._apply(fn, recurse)
        for name, master in self._masters.items():
            old = getattr(self, name)
            setattr(self, name, master.to(dtype=old.dtype, device=old.device))
        return out

    @property
    def weight_numel(self) -> int:
        """Number of learned weights."""
        return sum(getattr(self, name).numel() for _, _, name in self.weight_names)

    def folded_weight(self, degree: int) -> Tensor:
        """The basis of ``degree`` contracted with its weights: ``[C, S, m_out, n_mono]``
        (``[C, S, m_out, n_mono_{degree-1}, d]`` for the top degree ``correlation > 1``)."""
        shape = (
            (self.n_mono[degree - 2], self.d)
            if degree == self.correlation and degree > 1
            else (self.n_mono[degree - 1],)
        )
        any_w = getattr(self, self.weight_names[0][2])
        blocks = []
        for i, dim in enumerate(self.out_dims):
            if self.path_counts[(degree, i)] == 0:  # no path of this degree to this irrep
                blocks.append(any_w.new_zeros(self.num_channels, self.num_species, dim, *shape))
                continue
            u = getattr(self, f"basis_{degree}_{i}")  # [*shape, 2L+1, K]
            w = getattr(self, f"weight_{degree}_{i}")  # [S, K, C]
            f = torch.einsum("pmk,skc->csmp", u.reshape(-1, *u.shape[-2:]), w)
            blocks.append(f.reshape(*f.shape[:3], *shape))  # [C, S, 2L+1, *shape]
        return torch.cat(blocks, dim=2)

    def forward(self, x: Tensor, species: Tensor) -> Tensor:
        r"""Horner-like evaluation without building the top-degree monomials:

        .. math::  B = \sum_{t} x^{t} \Big( w^{(\nu-1)}_t + \sum_k F^{(\nu)}_{t k}\, x_k \Big)
                   + \sum_{j < \nu - 1} \sum_t w^{(j)}_t x^t

        (:math:`t` runs over the monomials of degree :math:`\nu - 1`), as two batched matrix
        products over the channels.
        """
        if x.shape[-1] != self.irreps_in.dim or x.dim() != 2:
            raise ValueError(
                f"x must have shape [n, {self.irreps_in.dim}] (irreps {self.irreps_in}), "
                f"got {tuple(x.shape)}"
            )
        n, c, s, m = x.shape[0], self.num_channels, self.num_species, self.m_out
        # mul_ir blocks -> component-major [d, C, n]: monomials are then row gathers
        blocks = []
        offset = 0
        for _, ir in self.irreps_in:
            size = c * ir.dim
            blocks.append(x[:, offset : offset + size].reshape(n, c, ir.dim).permute(2, 1, 0))
            offset += size
        xt = torch.cat(blocks, dim=0)  # [d, C, n]
        monos = [xt]  # degrees 1 .. correlation-1, each [n_mono, C, n]
        for nu in range(2, self.correlation):
            a = getattr(self, f"mono_a_{nu}")
            b = getattr(self, f"mono_b_{nu}")
            monos.append(monos[-1].index_select(0, a) * xt.index_select(0, b))
        x_cnd = xt.permute(1, 2, 0)  # [C, n, d]
        top = self.correlation
        if top == 1:
            w1 = self.folded_weight(1).reshape(c, s * m, self.d)
            out = torch.bmm(x_cnd, w1.transpose(1, 2))  # [C, n, S*m]
        else:
            t_prev = self.n_mono[top - 2]
            f_top = self.folded_weight(top).reshape(c, s * m * t_prev, self.d)
            w_prev = self.folded_weight(top - 1).reshape(c, 1, s * m * t_prev)
            inner = torch.bmm(x_cnd, f_top.transpose(1, 2)) + w_prev  # [C, n, S*m*t_prev]
            m_prev = monos[top - 2].permute(1, 2, 0).reshape(c, n, 1, t_prev)
            out = (inner.reshape(c, n, s * m, t_prev) * m_prev).sum(-1)  # [C, n, S*m]
            for j in range(1, top - 1):  # the remaining lower degrees
                wj = self.folded_weight(j).reshape(c, s * m, self.n_mono[j - 1])
                out = out + torch.bmm(monos[j - 1].permute(1, 2, 0), wj.transpose(1, 2))
        if s == 1:
            out = out.reshape(c, n, m)
        else:
            onehot = nn.functional.one_hot(species, s).to(out.dtype)  # [n, S]
            out = (out.reshape(c, n, s, m) * onehot[None, :, :, None]).sum(2)  # [C, n, m]
        pieces = []
        offset = 0
        for dim in self.out_dims:
            pieces.append(out[:, :, offset : offset + dim].permute(1, 0, 2).reshape(n, c * dim))
            offset += dim
        return torch.cat(pieces, dim=-1)  # [n, irreps_out.dim]

    def extra_repr(self) -> str:
        return (
            f"{self.irreps_in} -> {self.irreps_out}, correlation={self.correlation}, "
            f"num_species={self.num_species}, paths={self.path_counts}"
        )
