r"""Exponential moving average (EMA) of model weights.

After every optimiser step the shadow weights are updated as

.. math::  \bar\theta \leftarrow d_t\,\bar\theta + (1 - d_t)\,\theta, \qquad
    d_t = \min\!\Big(d, \frac{1 + t}{10 + t}\Big),

with :math:`t` the number of updates so far (the warm-up keeps early shadows from being
dominated by the random initialisation). Evaluating with :math:`\bar\theta` instead of
:math:`\theta` smooths out the noise of the last steps; interatomic potentials are validated and
saved with the EMA weights.

>>> import torch
>>> lin = torch.nn.Linear(1, 1, bias=False)
>>> with torch.no_grad():
...     _ = lin.weight.fill_(0.0)
>>> ema = ExponentialMovingAverage(lin.parameters(), decay=0.5)
>>> with torch.no_grad():
...     _ = lin.weight.fill_(1.0)
>>> ema.update(lin.parameters())   # d_0 = min(0.5, 1/10) = 0.1: 0.1 * 0 + 0.9 * 1
>>> round(ema.shadow[0].item(), 6)
0.9
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["ExponentialMovingAverage"]


class ExponentialMovingAverage:
    """Shadow copies of parameters, updated by :meth:`update` (see the module docstring).

    Args:
        parameters: the parameters to track (their order must not change).
        decay: :math:`d \\in [0, 1)`; 0.99 averages over roughly the last 100 steps.
    """

    def __init__(self, parameters: Iterable[torch.nn.Parameter], decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow = [p.detach().clone() for p in parameters]
        self._backup: list[torch.Tensor] | None = None

    @torch.no_grad()
    def update(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Move the shadows towards the current parameters."""
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        self.num_updates += 1
        for s, p in zip(self.shadow, parameters, strict=True):
            s.mul_(d).add_(p.detach(), alpha=1.0 - d)

    @torch.no_grad()
    def store_and_swap(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Keep a backup of the parameters and load the shadows into them."""
        params = list(parameters)
        self._backup = [p.detach().clone() for p in params]
        for s, p in zip(self.shadow, params, strict=True):
            p.copy_(s)

    @torch.no_grad()
    def restore(self, parameters: Iterable[torch.nn.Parameter]) -> None:
        """Undo :meth:`store_and_swap`."""
        if self._backup is None:
            raise RuntimeError("restore() called without a preceding store_and_swap()")
        for b, p in zip(self._backup, parameters, strict=True):
            p.copy_(b)
        self._backup = None

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["shadow"]) != len(self.shadow):
            raise ValueError(
                f"EMA state has {len(state['shadow'])} tensors, this model has {len(self.shadow)}"
            )
        self.decay = float(state["decay"])
        self.num_updates = int(state["num_updates"])
        self.shadow = [s.clone().to(t) for s, t in zip(state["shadow"], self.shadow)]
