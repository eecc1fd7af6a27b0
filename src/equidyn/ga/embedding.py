r"""Embeddings of geometric objects into :math:`G(3,0,1)` multivectors ``(..., 16)`` and back.

=============  ==========================================================  ===========
object         multivector                                                  grades
=============  ==========================================================  ===========
scalar ``s``   :math:`s`                                                    0
plane          :math:`n_1 e_1 + n_2 e_2 + n_3 e_3 - \delta e_0`
               (the plane :math:`n \cdot y = \delta`)                       1
translation    :math:`1 - \tfrac12 (t_1 e_{01} + t_2 e_{02} + t_3 e_{03})`   0, 2
rotation       :math:`w - x e_{23} + y e_{13} - z e_{12}` (unit quaternion)   0, 2
point ``p``    :math:`e_{123} - p_1 e_{023} + p_2 e_{013} - p_3 e_{012}`      3
direction      the point without :math:`e_{123}` (a point at infinity)       3
=============  ==========================================================  ===========

so that, with :func:`equidyn.ga.versors.sandwich`, the translation versor moves points by
``+t``, the rotation versor of a quaternion ``q`` rotates points by
``equidyn.o3.quaternion_to_matrix(q)``, and a unit plane reflects points in that plane.
Extracting a point divides by the :math:`e_{123}` component, so any nonzero multiple of a
point (reflections return :math:`-P`) gives back the same position.

>>> import torch
>>> embed_point(torch.tensor([1.0, 2.0, 3.0]))[11:15]
tensor([-3.,  2., -1.,  1.])
"""

from __future__ import annotations

import torch
from torch import Tensor

from equidyn.ga.products import check_multivector

__all__ = [
    "embed_direction",
    "embed_plane",
    "embed_point",
    "embed_rotation",
    "embed_scalar",
    "embed_translation",
    "extract_direction",
    "extract_plane",
    "extract_point",
    "extract_rotation",
    "extract_scalar",
    "extract_translation",
]

# trivector slots of the ideal part (x, y, z) and their signs
_TRI_IDX = (13, 12, 11)
_TRI_SIGN = (-1.0, 1.0, -1.0)


def _check_last(x: Tensor, dim: int, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0 or x.shape[-1] != dim:
        raise ValueError(f"{name} must have shape (..., {dim}), got {tuple(x.shape)}")


def _place(values: Tensor, index: tuple[int, ...], signs: tuple[float, ...]) -> Tensor:
    """A multivector with ``signs[i] · values[..., i]`` at blade ``index[i]``."""
    mv = values.new_zeros(values.shape[:-1] + (16,))
    s = torch.tensor(signs, dtype=values.dtype, device=values.device)
    return mv.index_copy(-1, torch.tensor(index, device=values.device), values * s)


def _take(mv: Tensor, index: tuple[int, ...], signs: tuple[float, ...]) -> Tensor:
    check_multivector(mv, "mv")
    s = torch.tensor(signs, dtype=mv.dtype, device=mv.device)
    return mv[..., list(index)] * s


def embed_scalar(s: Tensor) -> Tensor:
    """Scalars ``(..., 1)`` -> multivectors ``(..., 16)``."""
    _check_last(s, 1, "s")
    return _place(s, (0,), (1.0,))


def extract_scalar(mv: Tensor) -> Tensor:
    """The scalar component ``(..., 1)``."""
    return _take(mv, (0,), (1.0,))


def embed_point(p: Tensor) -> Tensor:
    """Points ``(..., 3)`` -> trivectors ``(..., 16)`` with unit ``e123`` weight."""
    _check_last(p, 3, "p")
    w = torch.ones_like(p[..., :1])
    return _place(torch.cat([p, w], -1), _TRI_IDX + (14,), _TRI_SIGN + (1.0,))


def extract_point(mv: Tensor, eps: float = 1e-12) -> Tensor:
    """Position ``(..., 3)`` of the trivector part: ideal part divided by the ``e123`` weight.

    Raises ``ValueError`` (eagerly) when a weight is below ``eps`` (a point at infinity).
    """
    w = _take(mv, (14,), (1.0,))
    if not torch.compiler.is_compiling() and bool((w.abs() < eps).any()):
        raise ValueError(f"point at infinity: |e123 weight| < {eps}; use extract_direction")
    return _take(mv, _TRI_IDX, _TRI_SIGN) / w


def embed_direction(v: Tensor) -> Tensor:
    """Directions ``(..., 3)`` -> ideal points (trivectors without ``e123``), invariant under
    translations."""
    _check_last(v, 3, "v")
    return _place(v, _TRI_IDX, _TRI_SIGN)


def extract_direction(mv: Tensor) -> Tensor:
    """The ideal part ``(..., 3)`` of the trivector part (no division)."""
    return _take(mv, _TRI_IDX, _TRI_SIGN)


def embed_plane(normal: Tensor, offset: Tensor) -> Tensor:
    """The plane ``normal · y = offset``: normals ``(..., 3)``, offsets ``(..., 1)``."""
    _check_last(normal, 3, "normal")
    _check_last(offset, 1, "offset")
    return _place(torch.cat([normal, offset], -1), (2, 3, 4, 1), (1.0, 1.0, 1.0, -1.0))


def extract_plane(mv: Tensor) -> tuple[Tensor, Tensor]:
    """``(normal (..., 3), offset (..., 1))`` of the grade-1 part."""
    return _take(mv, (2, 3, 4), (1.0, 1.0, 1.0)), _take(mv, (1,), (-1.0,))


def embed_translation(t: Tensor) -> Tensor:
    """The translation versor by ``t`` ``(..., 3)``."""
    _check_last(t, 3, "t")
    one = torch.ones_like(t[..., :1])
    return _place(torch.cat([one, t], -1), (0, 5, 6, 7), (1.0, -0.5, -0.5, -0.5))


def extract_translation(mv: Tensor) -> Tensor:
    """The translation ``(..., 3)`` of a translation versor (normalised by its scalar part)."""
    return _take(mv, (5, 6, 7), (-2.0, -2.0, -2.0)) / mv[..., :1]


def embed_rotation(q: Tensor) -> Tensor:
    """The rotation versor of unit quaternions ``q = (w, x, y, z)`` ``(..., 4)``."""
    _check_last(q, 4, "q")
    return _place(q, (0, 10, 9, 8), (1.0, -1.0, 1.0, -1.0))


def extract_rotation(mv: Tensor) -> Tensor:
    """The quaternion ``(w, x, y, z)`` ``(..., 4)`` of a rotation versor."""
    return _take(mv, (0, 10, 9, 8), (1.0, -1.0, 1.0, -1.0))
