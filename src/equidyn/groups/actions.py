r"""Actions of :math:`C_N` / :math:`D_N` on points, images and feature maps over the group.

Pixel ``(i, j)`` (row, column) of an ``H×W`` image sits at the point
:math:`p = (j - c_W,\ c_H - i)` with :math:`c = (\text{size} - 1)/2`: x to the right, y up,
origin at the centre of the image. A group element acts on

* points: :math:`p \mapsto g p` (``act_on_points``, any trailing ``(..., 2)`` tensor);
* images :math:`x: \mathbb{Z}^2 \to \mathbb{R}^C` (``(..., H, W)``):
  :math:`[L_g x](p) = x(g^{-1} p)` (``act_on_image``);
* feature maps over the group, ``(..., |G|, H, W)`` (the regular representation):
  :math:`[L_g x](h, p) = x(g^{-1}h, g^{-1}p)` (``act_on_regular``).

For N dividing 4 the image actions are exact permutations of the pixels of square images
(``torch.rot90`` and ``torch.flip``). Otherwise (e.g. 45° for N = 8) the image is resampled
with bilinear interpolation and zero outside: an **approximation** — corners are cut, lines are
blurred, and :math:`L_g L_h \ne L_{gh}` exactly.

>>> import torch
>>> from equidyn.groups import Cyclic, act_on_image
>>> x = torch.zeros(3, 3); x[0, 2] = 1.0  # top right corner
>>> act_on_image(Cyclic(4), 1, x)  # a quarter turn anticlockwise moves it to the top left
tensor([[1., 0., 0.],
        [0., 0., 0.],
        [0., 0., 0.]])
"""

from __future__ import annotations

import math

import torch

from equidyn.groups.finite import FiniteGroup

__all__ = [
    "act_on_points",
    "act_on_image",
    "act_on_regular",
    "interpolation_matrix",
    "rotate_image",
]


def act_on_points(group: FiniteGroup, g: int, points: torch.Tensor) -> torch.Tensor:
    """Apply ``g`` to points ``(..., 2)`` (x, y): ``points @ matrix(g).T``."""
    if points.shape[-1] != 2:
        raise ValueError(f"points must have last dim 2 (x, y), got shape {tuple(points.shape)}")
    return points @ group.matrix(g).to(points).T


def interpolation_matrix(size: int, matrix: torch.Tensor) -> torch.Tensor:
    r"""The ``(size², size²)`` matrix :math:`S` with :math:`(L x)(p) = \sum_q S_{pq} x_q`,
    :math:`(Lx)(p) = x(M^{-1} p)` by bilinear interpolation (zero outside), float64.

    For a matrix mapping the grid onto itself (quarter turns, flips) :math:`S` is a
    permutation matrix, so the resampling is exact.

    >>> import torch
    >>> S = interpolation_matrix(3, torch.eye(2, dtype=torch.float64))
    >>> torch.equal(S, torch.eye(9, dtype=torch.float64))
    True
    """
    c = (size - 1) / 2
    i, j = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    p = torch.stack([j - c, c - i], dim=-1).reshape(-1, 2).to(torch.float64)  # [size², 2]
    q = p @ torch.linalg.inv(matrix.to(torch.float64)).T
    q = torch.where((q - q.round()).abs() < 1e-9, q.round(), q)  # exact grid points stay exact
    row, col = c - q[:, 1], q[:, 0] + c
    S = torch.zeros(size * size, size * size, dtype=torch.float64)
    r0, c0 = row.floor(), col.floor()
    for dr in (0, 1):
        for dc in (0, 1):
            rr, cc = r0 + dr, c0 + dc
            w = (1 - (row - rr).abs()) * (1 - (col - cc).abs())
            ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size) & (w > 0)
            src = (rr * size + cc).long()
            S[torch.arange(size * size)[ok], src[ok]] += w[ok]
    return S


def _resample(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    H, W = x.shape[-2:]
    if H != W:
        raise ValueError(f"rotating an image needs a square one, got spatial shape {(H, W)}")
    S = interpolation_matrix(H, matrix).to(x)
    return (x.reshape(*x.shape[:-2], H * W) @ S.T).reshape(x.shape)


def rotate_image(x: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate square images ``(..., H, W)`` anticlockwise by ``angle`` radians about their
    centre (bilinear interpolation, zero outside; exact for multiples of 90°)."""
    c, s = math.cos(angle), math.sin(angle)
    M = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return _resample(x, M)


def act_on_image(group: FiniteGroup, g: int, x: torch.Tensor) -> torch.Tensor:
    r""":math:`[L_g x](p) = x(g^{-1}p)` for images ``(..., H, W)``; exact when N divides 4."""
    k, m = group.decompose(g)
    if not group.exact_on_grid:
        return _resample(x, group.matrix(g))
    if k % 2 and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"a quarter turn needs a square image, got spatial shape {x.shape[-2:]}")
    if m:
        x = torch.flip(x, dims=(-2,))
    return torch.rot90(x, k * (4 // group.n), dims=(-2, -1))


def act_on_regular(group: FiniteGroup, g: int, x: torch.Tensor) -> torch.Tensor:
    r""":math:`[L_g x](h, p) = x(g^{-1}h, g^{-1}p)` for feature maps ``(..., |G|, H, W)``."""
    if x.dim() < 3 or x.shape[-3] != group.order:
        raise ValueError(
            f"a feature map over {group!r} must have shape (..., {group.order}, H, W), "
            f"got {tuple(x.shape)}"
        )
    index = group.cayley_table[group.inverse(g)].to(x.device)  # index[h] = g^-1 h
    return act_on_image(group, g, x.index_select(-3, index))
