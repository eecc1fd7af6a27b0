r"""``FullyConnectedNet``: e3nn's scalar network, same arguments and parameter names.

For sizes :math:`(h_0, \dots, h_L)`, input variance :math:`v_0` and output variance
:math:`v_L`, layer :math:`k` maps

.. math::  x \mapsto \sqrt{v_k}\;\tilde\sigma\!\Big(\frac{x\,W^{(k)}}{\sqrt{h_{k-1} v_{k-1}}}\Big)
           \quad (k < L), \qquad
           x \mapsto \frac{x\,W^{(L)}}{\sqrt{h_{L-1} v_{L-1} / v_L}} \quad (\text{last}),

with :math:`W^{(k)}_{ij} \sim \mathcal N(0, 1)`, :math:`v_k = 1` inside, and
:math:`\tilde\sigma` the activation rescaled to unit second moment (:func:`normalize2mom`).
``out_act=True`` applies the activation after the last layer too. No biases (as in e3nn).

This is the class e3nn users know (``e3nn.nn.FullyConnectedNet``): the parameters are
``layer0.weight``, ``layer1.weight``, ... of shape ``[h_in, h_out]``, so an e3nn state dict
loads as it is. One documented difference: e3nn estimates the activation's normalisation
constant by Monte Carlo (10⁶ samples), equidyn integrates it, so outputs agree to about
1e-3 relative, not bit for bit. :class:`~equidyn.nn.MLP` is the same network with optional
biases and a ``dims`` argument.

>>> import torch
>>> net = FullyConnectedNet([8, 32, 2], torch.nn.functional.silu)
>>> [name for name, _ in net.named_parameters()]
['layer0.weight', 'layer1.weight']
>>> net(torch.randn(5, 8)).shape
torch.Size([5, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from equidyn.nn.activation import normalize2mom

__all__ = ["FullyConnectedNet"]


class _Layer(torch.nn.Module):
    """One layer of :class:`FullyConnectedNet` (weights ``[h_in, h_out]``)."""

    def __init__(
        self,
        h_in: int,
        h_out: int,
        act: Callable[[torch.Tensor], torch.Tensor] | None,
        var_in: float,
        var_out: float,
    ) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(h_in, h_out))
        self.act = act
        self.h_in, self.h_out = h_in, h_out
        self.var_in, self.var_out = float(var_in), float(var_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act is None:
            return x @ (self.weight / (self.h_in * self.var_in / self.var_out) ** 0.5)
        x = x @ (self.weight / (self.h_in * self.var_in) ** 0.5)
        return self.act(x) * self.var_out**0.5  # [..., h_out]

    def extra_repr(self) -> str:
        act = getattr(self.act, "act", self.act)
        return f"{self.h_in}->{self.h_out}, act={getattr(act, '__name__', act)}"


def _check_sizes(hs: Sequence[int]) -> list[int]:
    sizes = list(hs) if isinstance(hs, (list, tuple)) else None
    if (
        sizes is None
        or len(sizes) < 2
        or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in sizes)
    ):
        raise ValueError(
            f"hs must be a list of >= 2 positive ints (input, ..., output), got {hs!r}"
        )
    return sizes


class FullyConnectedNet(torch.nn.Sequential):
    """Scalar network ``hs[0] -> ... -> hs[-1]`` (see the module docstring for the maths).

    Args:
        hs: input, hidden and output sizes.
        act: activation between layers (normalised to unit second moment); ``None`` for a
            linear network.
        variance_in: variance of the inputs the first layer is scaled for.
        variance_out: variance of the outputs at initialisation.
        out_act: apply the activation after the last layer too.
    """

    def __init__(
        self,
        hs: Sequence[int],
        act: Callable[[torch.Tensor], torch.Tensor] | None = None,
        variance_in: float = 1.0,
        variance_out: float = 1.0,
        out_act: bool = False,
    ) -> None:
        super().__init__()
        self.hs = _check_sizes(hs)
        for name, v in (("variance_in", variance_in), ("variance_out", variance_out)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        act = normalize2mom(act) if act is not None else None
        var_in = float(variance_in)
        n_layers = len(self.hs) - 1
        for k, (h1, h2) in enumerate(zip(self.hs[:-1], self.hs[1:])):
            last = k == n_layers - 1
            var_out = float(variance_out) if last else 1.0
            layer_act = act if (out_act or not last) else None
            self.add_module(f"layer{k}", _Layer(h1, h2, layer_act, var_in, var_out))
            var_in = var_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., hs[0])`` → ``(..., hs[-1])``."""
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[-1] != self.hs[0]:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"FullyConnectedNet input has shape {shape}, expected (..., {self.hs[0]})"
            )
        return super().forward(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self.hs}"
