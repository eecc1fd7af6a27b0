r"""Learned canonicalization (Kaba et al., *Equivariance with Learned Canonicalization
Functions*, ICML 2023): any network made equivariant by a small equivariant one.

A canonicalizer :math:`h` maps an input to a group element with :math:`h(g x) = g\,h(x)`. For
any backbone :math:`p` (not equivariant at all),

.. math::  f(x) = \rho_{out}(h(x))\; p\big(\rho_{in}(h(x))^{-1} x\big)

is equivariant: :math:`f(gx) = \rho_{out}(g h(x))\, p(\rho_{in}(h(x))^{-1} g^{-1} g x)
= \rho_{out}(g) f(x)`. With a trivial :math:`\rho_{out}` it is invariant.

A canonicalizer is a :class:`Canonicalizer`: ``frame(*inputs)`` returns the group element
(a :class:`Frame`), ``to_canonical`` applies its inverse to the inputs and ``from_canonical``
its representation to the outputs of the backbone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

import torch

__all__ = ["Frame", "FrameT", "Canonicalizer", "Canonicalized"]


class Frame(ABC):
    """A batch of group elements produced by a canonicalizer (see the subclasses)."""

    @abstractmethod
    def check(self) -> None:
        """Raise ``ValueError`` unless every entry is a valid group element."""


FrameT = TypeVar("FrameT", bound=Frame)


class Canonicalizer(torch.nn.Module, ABC, Generic[FrameT]):
    """Base class: a network that predicts a group element (a ``FrameT``) per input."""

    @abstractmethod
    def frame(self, *inputs: torch.Tensor) -> FrameT:
        """The group element :math:`h(x)` of each input of the batch."""

    @abstractmethod
    def to_canonical(self, frame: FrameT, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        r""":math:`\rho_{in}(h)^{-1} x` for every input."""

    @abstractmethod
    def from_canonical(self, frame: FrameT, *outputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        r""":math:`\rho_{out}(h)\, y` for every output of the backbone."""

    def prior_loss(self, frame: FrameT) -> torch.Tensor:
        """Regulariser pulling the frames towards the identity (zero if not defined)."""
        return torch.zeros(())


class Canonicalized(torch.nn.Module):
    r"""``Canonicalized(canonicalizer, backbone)``: :math:`f(x) = \rho(h(x))\,p(\rho(h(x))^{-1}x)`.

    Args:
        canonicalizer: a :class:`Canonicalizer` (e.g. :class:`~equidyn.canonical.ImageCanonicalizer`
            or :class:`~equidyn.canonical.PointCanonicalizer`).
        backbone: any ``torch.nn.Module`` taking the canonicalized inputs.
        check_frames: check that every frame is a group element (``ValueError`` otherwise).

    >>> import torch
    >>> from equidyn.canonical import Canonicalized, ImageCanonicalizer
    >>> from equidyn.groups import Cyclic, act_on_image
    >>> C4 = Cyclic(4)
    >>> backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(49, 3))  # not invariant
    >>> model = Canonicalized(ImageCanonicalizer(C4, in_channels=1), backbone).double()
    >>> x = torch.randn(2, 1, 7, 7, dtype=torch.float64)
    >>> torch.allclose(model(act_on_image(C4, 1, x)), model(x), atol=1e-12)
    True
    """

    def __init__(
        self, canonicalizer: Canonicalizer, backbone: torch.nn.Module, *, check_frames: bool = True
    ) -> None:
        super().__init__()
        if not isinstance(canonicalizer, Canonicalizer):
            raise TypeError(
                f"canonicalizer must be an equidyn.canonical.Canonicalizer, "
                f"got {type(canonicalizer).__name__}"
            )
        if not isinstance(backbone, torch.nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(backbone).__name__}")
        self.canonicalizer = canonicalizer
        self.backbone = backbone
        self.check_frames = check_frames

    def forward_with_frame(self, *inputs: torch.Tensor) -> tuple[Any, Frame]:
        """The outputs and the frame (for :meth:`Canonicalizer.prior_loss` or inspection)."""
        frame = self.canonicalizer.frame(*inputs)
        if self.check_frames:
            frame.check()
        canonical = self.canonicalizer.to_canonical(frame, *inputs)
        out = self.backbone(*canonical)
        single = not isinstance(out, (tuple, list))
        res = self.canonicalizer.from_canonical(frame, *((out,) if single else out))
        return (res[0] if single else res), frame

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.forward_with_frame(*inputs)[0]
