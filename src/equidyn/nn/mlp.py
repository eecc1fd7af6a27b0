r"""Multi-layer perceptron on scalars, variance preserving at initialisation.

For layer sizes :math:`(d_0, d_1, \dots, d_L)` the map is

.. math::  h^{(0)} = x, \qquad
           h^{(k)} = \tilde\sigma\!\Big(\frac{h^{(k-1)} W^{(k)}}{\sqrt{d_{k-1}}} + b^{(k)}\Big),
           \qquad y = \frac{h^{(L-1)} W^{(L)}}{\sqrt{d_{L-1}}} + b^{(L)},

with weights :math:`W^{(k)}_{ij} \sim \mathcal{N}(0, 1)` at initialisation (the
:math:`1/\sqrt{\text{fan-in}}` factor is applied in the forward pass), biases zero at init (when
enabled), and :math:`\tilde\sigma` the activation rescaled by
:func:`~equidyn.nn.normalize2mom` so that :math:`\mathbb{E}[\tilde\sigma(z)^2] = 1`. Hence for
inputs of unit second moment every pre-activation and the output have unit variance at
initialisation, whatever the depth and widths. No activation after the last layer.

Inputs and outputs are scalars (``0e``): this is the radial network of convolutions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from equidyn.nn.activation import normalize2mom
from equidyn.o3 import Irreps

__all__ = ["MLP"]


class MLP(torch.nn.Module):
    r"""Fully connected network ``dims[0] -> dims[1] -> ... -> dims[-1]`` with normalised
    activations.

    Args:
        dims: layer sizes, at least two entries (input and output), each ``>= 1``.
        act: pointwise activation between layers, rescaled to unit second moment; ``None``
            for a linear network.
        bias: add a learnable bias (zero at init) after each linear map.

    >>> import torch
    >>> mlp = MLP([8, 64, 64, 4], torch.nn.functional.silu)
    >>> mlp.irreps_in, mlp.irreps_out
    (8x0e, 4x0e)
    >>> mlp(torch.randn(10, 8)).shape
    torch.Size([10, 4])
    """

    def __init__(
        self,
        dims: Sequence[int],
        act: Callable[[torch.Tensor], torch.Tensor] | None = None,
        bias: bool = False,
    ) -> None:
        super().__init__()
        dims = list(dims)
        if len(dims) < 2 or any(isinstance(d, bool) or not isinstance(d, int) for d in dims):
            raise ValueError(f"dims must be a list of >= 2 ints (input, ..., output), got {dims!r}")
        if any(d < 1 for d in dims):
            raise ValueError(f"every entry of dims must be >= 1, got {dims!r}")
        self.dims = dims
        self.irreps_in = Irreps(f"{dims[0]}x0e")
        self.irreps_out = Irreps(f"{dims[-1]}x0e")
        self.act = normalize2mom(act) if act is not None else None
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(a, b)) for a, b in zip(dims[:-1], dims[1:])]
        )
        if bias:
            self.biases = torch.nn.ParameterList(
                [torch.nn.Parameter(torch.zeros(b)) for b in dims[1:]]
            )
        else:
            self.biases = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., dims[0])`` → ``(..., dims[-1])``."""
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[-1] != self.dims[0]:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"MLP input has shape {shape}, expected (..., {self.dims[0]}) "
                f"(irreps {self.irreps_in})"
            )
        n = len(self.weights)
        for k, w in enumerate(self.weights):
            x = x @ (w / w.shape[0] ** 0.5)  # [..., dims[k + 1]]
            if self.biases is not None:
                x = x + self.biases[k]
            if k < n - 1 and self.act is not None:
                x = self.act(x)
        return x

    def extra_repr(self) -> str:
        return f"dims={self.dims}"
