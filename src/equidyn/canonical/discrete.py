r"""Canonicalization of images over a finite group (:math:`C_4`, :math:`D_4`, ...).

A small G-CNN gives one score per group element, equivariantly:
:math:`s(L_u x)(g) = s(x)(u^{-1}g)`. The frame is :math:`h(x) = \arg\max_g s(x)(g)`, so
:math:`h(L_u x) = u\,h(x)` and the canonical image :math:`L_{h(x)^{-1}} x` is invariant.

The argmax is made differentiable with a straight-through one-hot: the forward pass uses the
hard one-hot :math:`e_{h(x)}` (so the canonical image is exactly a transformed input), the
backward pass the gradient of :math:`\mathrm{softmax}(s/\tau)`:

.. math::  w = e_{h(x)} + \big(\sigma(s/\tau) - \mathrm{sg}[\sigma(s/\tau)]\big), \qquad
           \tilde x = \sum_g w_g\, L_{g^{-1}} x.

Optional prior (Mondal et al., *Equivariant Adaptation of Large Pretrained Models*, NeurIPS
2023): :math:`-\log\sigma(s)_e`, the cross-entropy of the scores towards the identity, so that
upright training images stay upright for a backbone that saw upright data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from equidyn.canonical.wrapper import Canonicalizer, Frame
from equidyn.groups.actions import act_on_image
from equidyn.groups.conv import GroupConv, LiftingConv
from equidyn.groups.finite import FiniteGroup

__all__ = ["DiscreteFrame", "ImageCanonicalizer"]


@dataclass
class DiscreteFrame(Frame):
    """Group elements as straight-through one-hot ``weights`` ``(B, |G|)``, with the
    ``scores`` they came from and the chosen ``index`` ``(B,)``."""

    weights: torch.Tensor
    scores: torch.Tensor
    index: torch.Tensor

    def check(self) -> None:
        w = self.weights.detach()
        if not (torch.isfinite(self.scores).all() and ((w == 0) | (w == 1)).all()):
            raise ValueError(
                "the canonicalizer's frame is not a group element: expected one-hot weights "
                f"from finite scores, got weights {w[:2].tolist()} and scores "
                f"{self.scores.detach()[:2].tolist()} (first rows)"
            )


def _one(tensors: tuple[torch.Tensor, ...], what: str) -> tuple[torch.Tensor]:
    if len(tensors) != 1:
        raise TypeError(f"ImageCanonicalizer.{what} takes one image tensor, got {len(tensors)}")
    return (tensors[0],)


class ImageCanonicalizer(Canonicalizer[DiscreteFrame]):
    r"""Canonicalizer of images ``(B, C, H, W)`` over a finite group with a small G-CNN.

    Args:
        group: the group (exactly equivariant when N divides 4 and the images are square).
        in_channels: channels of the images.
        channels: hidden channels of the G-CNN.
        kernel_size: odd filter size of both convolutions.
        output: ``"invariant"`` (outputs left as they are: classification) or ``"image"``
            (outputs ``(B, C', H, W)`` transformed back by the frame).
        temperature: :math:`\tau` of the softmax used in the backward pass.

    >>> import torch
    >>> from equidyn.groups import Dihedral
    >>> canon = ImageCanonicalizer(Dihedral(4), in_channels=1)
    >>> frame = canon.frame(torch.randn(3, 1, 9, 9))
    >>> frame.weights.shape, frame.weights.sum(-1).tolist()
    (torch.Size([3, 8]), [1.0, 1.0, 1.0])
    """

    def __init__(
        self,
        group: FiniteGroup,
        *,
        in_channels: int,
        channels: int = 8,
        kernel_size: int = 5,
        output: str = "invariant",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if output not in ("invariant", "image"):
            raise ValueError(f"output must be 'invariant' or 'image', got {output!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.group, self.output, self.temperature = group, output, temperature
        self.lift = LiftingConv(group, in_channels, channels, kernel_size)
        self.conv = GroupConv(group, channels, 1, kernel_size)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """One score per group element, ``(B, |G|)``; equivariant under the regular action."""
        h = self.conv(torch.relu(self.lift(x)))  # [B, 1, |G|, H, W]
        return h.mean(dim=(-2, -1))[:, 0]  # [B, |G|]

    def frame(self, *inputs: torch.Tensor) -> DiscreteFrame:
        (x,) = _one(inputs, "frame")
        s = self.scores(x)
        index = s.argmax(-1)
        soft = torch.softmax(s / self.temperature, dim=-1)
        hard = F.one_hot(index, self.group.order).to(s)
        return DiscreteFrame(hard + (soft - soft.detach()), s, index)

    def _mix(self, weights: torch.Tensor, y: torch.Tensor, inverse: bool) -> torch.Tensor:
        els = self.group.elements()
        moved = [act_on_image(self.group, self.group.inverse(g) if inverse else g, y) for g in els]
        stack = torch.stack(moved, dim=1)  # [B, |G|, ...]
        w = weights.reshape(*weights.shape, *([1] * (stack.dim() - 2)))
        return (w * stack).sum(1)

    def to_canonical(self, frame: DiscreteFrame, *inputs: torch.Tensor) -> tuple[torch.Tensor]:
        (x,) = _one(inputs, "to_canonical")
        return (self._mix(frame.weights, x, inverse=True),)  # [B, C, H, W]

    def from_canonical(self, frame: DiscreteFrame, *outputs: torch.Tensor) -> tuple[torch.Tensor]:
        (y,) = _one(outputs, "from_canonical")
        if self.output == "invariant":
            return (y,)
        return (self._mix(frame.weights, y, inverse=False),)

    def prior_loss(self, frame: DiscreteFrame) -> torch.Tensor:
        """Cross-entropy of the scores towards the identity element (index 0)."""
        target = torch.zeros(frame.scores.shape[0], dtype=torch.long, device=frame.scores.device)
        return F.cross_entropy(frame.scores, target)
