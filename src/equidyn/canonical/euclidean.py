r"""Canonicalization of point sets over E(3) = O(3) ⋉ R³ (or SE(3)).

An equivariant network predicts, per point set, vectors :math:`v_1, v_2 (, v_3)` with
:math:`v_k(Qx + s) = Q v_k(x)` and a translation :math:`t(x)` (the centroid). Gram–Schmidt
turns the vectors into an orthonormal frame :math:`R = [e_1\ e_2\ e_3]` (columns), so
:math:`R(Qx + s) = Q R(x)` and the canonical input :math:`R^\top(x - t)` is invariant:

.. math::  e_1 = \frac{v_1}{|v_1|}, \quad
           e_2 = \frac{v_2 - (v_2\cdot e_1)e_1}{|\cdot|}, \quad
           e_3 = \begin{cases} e_1 \times e_2 & \text{SO(3)} \\
                 \frac{v_3 - (v_3\cdot e_1)e_1 - (v_3\cdot e_2)e_2}{|\cdot|} & \text{O(3)}
                 \end{cases}

The cross product is a pseudovector (:math:`Qa \times Qb = \det Q\, Q(a\times b)`), so only
the O(3) variant, with a third predicted vector, is equivariant under reflections.

The vector network (EGNN-like, built on :class:`equidyn.nn.MLP`):
:math:`m_i = \sum_j \phi_m(s_i, s_j, |x_i - x_j|^2)`,
:math:`v_k = \sum_i \sum_a \phi_v(s_i, m_i)_{ka}\, u_{ia}`, where :math:`u_{ia}` are the
vectors attached to point i (its position relative to the centroid and every input vector)
and :math:`s_i` the invariants (the Gram matrix of the :math:`u_{i\cdot}` and the scalar
inputs).

**Degenerate inputs** (collinear or coincident points, zero velocities: :math:`v_1 \approx 0`
or :math:`v_2 \parallel v_1`) have no unique frame. Never NaN: a vector whose norm falls below
``eps`` (relative to the input scale) is replaced, in order, by the next predicted vector,
then by the coordinate axis least aligned with the axes already chosen; with O(3), a vanishing
third axis falls back to :math:`e_1 \times e_2`. Such a fallback is not equivariant (no
frame is, on these inputs); :attr:`EuclideanFrame.degenerate` flags it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from equidyn.canonical.wrapper import Canonicalizer, Frame
from equidyn.nn.mlp import MLP

__all__ = ["EuclideanFrame", "PointCanonicalizer", "gram_schmidt_frame"]

KINDS = ("points", "vectors", "scalars")


@dataclass
class EuclideanFrame(Frame):
    """Rotations ``(B, 3, 3)`` (frame axes as columns), translations ``(B, 3)`` and a
    ``degenerate`` mask ``(B,)`` of frames built by a fallback."""

    rotation: torch.Tensor
    translation: torch.Tensor
    degenerate: torch.Tensor

    def check(self) -> None:
        R = self.rotation.detach()
        eye = torch.eye(3, dtype=R.dtype, device=R.device)
        tol = 1e-3 if R.dtype != torch.float64 else 1e-8
        ok = torch.isfinite(R).all() and torch.isfinite(self.translation).all()
        if not ok or (R.transpose(-1, -2) @ R - eye).abs().max() > tol:
            raise ValueError(
                "the canonicalizer's frame is not an element of O(3) x R^3: expected finite "
                f"orthogonal matrices, got for example {R.reshape(-1, 3, 3)[0].tolist()}"
            )


def _unit(v: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    n = v.norm(dim=-1, keepdim=True)
    return v / n.clamp_min(eps), n[..., 0] < eps


def _orthogonalise(v: torch.Tensor, axes: list[torch.Tensor]) -> torch.Tensor:
    for _ in range(2):  # a second pass restores orthogonality lost to rounding ("twice is enough")
        for e in axes:
            v = v - (v * e).sum(-1, keepdim=True) * e
    return v


def _least_aligned_axis(axes: list[torch.Tensor]) -> torch.Tensor:
    eye = torch.eye(3, dtype=axes[0].dtype, device=axes[0].device)
    align = torch.stack([(a @ eye).abs() for a in axes]).sum(0)  # [B, 3]
    return eye[align.argmin(-1)]  # [B, 3]


def _next_axis(
    candidates: list[torch.Tensor], axes: list[torch.Tensor], eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first candidate whose part orthogonal to ``axes`` exceeds ``eps`` (normalised);
    where none does, the coordinate axis least aligned with ``axes`` (flagged in the mask)."""
    chosen = _unit(_orthogonalise(_least_aligned_axis(axes), axes), eps)[0]
    bad = torch.ones(chosen.shape[:-1], dtype=torch.bool, device=chosen.device)
    for v in reversed(candidates):  # earlier candidates take precedence
        e, small = _unit(_orthogonalise(v, axes), eps)
        chosen, bad = torch.where(small[:, None], chosen, e), bad & small
    return chosen, bad


def gram_schmidt_frame(
    vectors: torch.Tensor, *, proper: bool, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Orthonormal frames ``(B, 3, 3)`` (axes as columns) from predicted vectors ``(B, K, 3)``,
    and the mask ``(B,)`` of frames that needed a fallback. ``proper=True``: :math:`e_3 = e_1
    \times e_2` (det +1, needs K ≥ 2); ``proper=False``: :math:`e_3` from :math:`v_3`
    (det ±1, K ≥ 3). Never NaN (see the module docstring).

    >>> import torch
    >>> v = torch.tensor([[[2.0, 0, 0], [1, 1, 0], [0, 0, -3]]])
    >>> R, degenerate = gram_schmidt_frame(v, proper=False)
    >>> R[0].tolist(), degenerate.tolist()
    ([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, -1.0]], [False])
    """
    need = 2 if proper else 3
    if vectors.dim() != 3 or vectors.shape[-1] != 3 or vectors.shape[1] < need:
        raise ValueError(
            f"expected vectors (batch, >= {need}, 3) for a {'proper' if proper else 'O(3)'} "
            f"frame, got shape {tuple(vectors.shape)}"
        )
    vs = list(vectors.unbind(1))
    e1, bad1 = _unit(vs[0], eps)
    e_x = torch.zeros_like(e1)
    e_x[:, 0] = 1.0
    e1 = torch.where(bad1[:, None], e_x, e1)
    e2, bad2 = _next_axis(vs[1:], [e1], eps)
    cross = torch.linalg.cross(e1, e2)
    if proper:
        e3, bad3 = cross, bad2 & False
    else:
        e3, small = _unit(_orthogonalise(vs[2], [e1, e2]), eps)
        e3, bad3 = torch.where(small[:, None], cross, e3), small
    return torch.stack([e1, e2, e3], dim=-1), bad1 | bad2 | bad3  # [B, 3, 3], [B]


class PointCanonicalizer(Canonicalizer[EuclideanFrame]):
    r"""E(3) (``group="O3"``) or SE(3) (``group="SO3"``) canonicalizer of point sets.

    Args:
        inputs: the kind of each input tensor, ``"points"`` ``(B, n, 3)`` (rotated and
            translated; the first one gives the centroid), ``"vectors"`` ``(B, n, 3)``
            (rotated only) or ``"scalars"`` ``(B, n, d)`` (invariant).
        outputs: the kind of each output of the backbone (same kinds; ``"scalars"`` are
            returned unchanged, of any shape).
        scalar_dims: feature size of each ``"scalars"`` input, in order.
        group: ``"O3"`` (rotations and reflections) or ``"SO3"`` (rotations only).
        hidden: width of the MLPs.
        eps: norm below which a predicted vector is degenerate (times the input scale).

    >>> import torch
    >>> canon = PointCanonicalizer(inputs=["points", "vectors"], outputs=["points"])
    >>> frame = canon.frame(torch.randn(2, 5, 3), torch.randn(2, 5, 3))
    >>> frame.rotation.shape, frame.translation.shape
    (torch.Size([2, 3, 3]), torch.Size([2, 3]))
    """

    def __init__(
        self,
        *,
        inputs: Sequence[str],
        outputs: Sequence[str],
        scalar_dims: Sequence[int] = (),
        group: str = "O3",
        hidden: int = 32,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        for what, kinds in (("inputs", inputs), ("outputs", outputs)):
            bad = [k for k in kinds if k not in KINDS]
            if bad:
                raise ValueError(f"{what} kinds {bad} not understood; expected each in {KINDS}")
        if "points" not in inputs:
            raise ValueError(f"inputs {list(inputs)} need at least one 'points' entry")
        if len(scalar_dims) != list(inputs).count("scalars"):
            raise ValueError(
                f"scalar_dims {list(scalar_dims)} must give one size per 'scalars' input"
            )
        if group not in ("O3", "SO3"):
            raise ValueError(f"group must be 'O3' or 'SO3', got {group!r}")
        self.inputs, self.outputs, self.group, self.eps = list(inputs), list(outputs), group, eps
        n_vec = sum(k != "scalars" for k in inputs)
        n_inv = n_vec * n_vec + sum(scalar_dims)
        self.n_out = 2 if group == "SO3" else 3
        self.message = MLP([2 * n_inv + 1, hidden, hidden], act=torch.nn.functional.silu)
        self.weights = MLP(
            [n_inv + hidden, hidden, self.n_out * n_vec], act=torch.nn.functional.silu
        )

    def _node_features(self, args: Sequence[torch.Tensor], centroid: torch.Tensor):
        vecs = [a - centroid[:, None] if k == "points" else a
                for k, a in zip(self.inputs, args) if k != "scalars"]  # fmt: skip
        u = torch.stack(vecs, dim=2)  # [B, n, A, 3]
        gram = (u[:, :, :, None] * u[:, :, None]).sum(-1).flatten(2)  # [B, n, A²]
        scalars = [a for k, a in zip(self.inputs, args) if k == "scalars"]
        return u, torch.cat([gram, *scalars], dim=-1)  # [B, n, n_inv]

    def frame(self, *args: torch.Tensor) -> EuclideanFrame:
        if len(args) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} inputs {self.inputs}, got {len(args)}")
        pos = args[self.inputs.index("points")]  # [B, n, 3]
        centroid = pos.mean(1)  # [B, 3]
        u, s = self._node_features(args, centroid)
        n = pos.shape[1]
        d2 = ((pos[:, :, None] - pos[:, None]) ** 2).sum(-1, keepdim=True)  # [B, n, n, 1]
        pair = torch.cat(
            [s[:, :, None].expand(-1, -1, n, -1), s[:, None].expand(-1, n, -1, -1), d2], -1
        )
        m = self.message(pair).sum(2)  # [B, n, hidden]
        w = self.weights(torch.cat([s, m], -1)).unflatten(-1, (self.n_out, u.shape[2]))
        v = torch.einsum("bnka,bnax->bkx", w, u)  # [B, n_out, 3]
        scale = u.detach().norm(dim=-1).flatten(1).amax(1).clamp_min(1.0)  # [B], invariant
        R, degenerate = gram_schmidt_frame(
            v / scale[:, None, None], proper=self.group == "SO3", eps=self.eps
        )
        return EuclideanFrame(R, centroid, degenerate)

    def to_canonical(self, frame: EuclideanFrame, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self._transform(frame, k, a, inverse=True) for k, a in zip(self.inputs, args))

    def from_canonical(
        self, frame: EuclideanFrame, *outs: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        if len(outs) != len(self.outputs):
            raise ValueError(f"backbone returned {len(outs)} outputs, expected {self.outputs}")
        return tuple(
            self._transform(frame, k, y, inverse=False) for k, y in zip(self.outputs, outs)
        )

    @staticmethod
    def _transform(
        frame: EuclideanFrame, kind: str, x: torch.Tensor, inverse: bool
    ) -> torch.Tensor:
        if kind == "scalars":
            return x
        R, t = frame.rotation.to(x), frame.translation.to(x)[:, None]  # [B, 3, 3], [B, 1, 3]
        if inverse:
            return ((x - t) if kind == "points" else x) @ R  # components along the axes
        y = x @ R.transpose(-1, -2)
        return y + t if kind == "points" else y
