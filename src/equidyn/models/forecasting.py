r"""The forecasting contract: a window of past frames → the positions some time ahead.

A forecast model maps the last ``K`` frames of ``n`` particles to their positions ``H``
frames after the last one (the samples of :class:`equidyn.data.TrajectoryWindows`)::

    model(pos_window, node_attr, edge_attr=None) -> positions        # [batch, n, 3]

``pos_window``: (batch, K, n, 3), oldest frame first; ``node_attr``: (batch, n, node_attr_dim);
``edge_attr``: (batch, n, n, edge_attr_dim) or ``None`` when ``edge_attr_dim == 0``. An
E(3)-equivariant forecaster satisfies
:math:`f(\{R x^{(t)} + t_0\}, \cdot) = R f(\{x^{(t)}\}, \cdot) + t_0` for every
:math:`R \in O(3)`, and permuting the particles permutes its output.

This module holds the base class :class:`ForecastModel` (one input check for all) and the
baselines ESTAG (:class:`~equidyn.models.ESTAG`) is compared with:

- :class:`LinearExtrapolation`: :math:`x^{(T)} + \frac{H}{\Delta}(x^{(T)} - x^{(T-1)})`,
  no parameters;
- :class:`LastFrameEGNN`: EGNN on the last frame, with the finite-difference velocity
  :math:`x^{(T)} - x^{(T-1)}`;
- :class:`StackedFramesEGNN`: the same EGNN, with the invariants of every frame of the window
  stacked into its inputs (distances :math:`|x_i^{(t)} - x_j^{(t)}|` per pair and
  displacements :math:`|x_i^{(t)} - x_i^{(T)}|` per particle).

>>> import torch
>>> model = LastFrameEGNN(window=4, num_features=8, num_layers=1, node_attr_dim=1)
>>> model(torch.randn(2, 4, 5, 3), torch.ones(2, 5, 1)).shape
torch.Size([2, 5, 3])
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from equidyn.models.egnn import EGNN
from equidyn.models.particles import check_particle_inputs, check_sizes
from equidyn.models.registry import register_model

__all__ = [
    "ForecastModel",
    "LastFrameEGNN",
    "LinearExtrapolation",
    "StackedFramesEGNN",
    "check_forecast_inputs",
]


def check_forecast_inputs(
    pos_window: Tensor,
    node_attr: Tensor,
    edge_attr: Tensor | None,
    window: int,
    node_attr_dim: int,
    edge_attr_dim: int,
) -> None:
    """Raise ``ValueError`` unless the inputs follow the forecasting interface.

    >>> check_forecast_inputs(torch.zeros(2, 3, 5, 3), torch.zeros(2, 5, 0), None, 4, 0, 0)
    Traceback (most recent call last):
    ...
    ValueError: pos_window must have shape (batch, window=4, n, 3), got (2, 3, 5, 3)
    """
    if pos_window.dim() != 4 or pos_window.shape[1] != window or pos_window.shape[-1] != 3:
        raise ValueError(
            f"pos_window must have shape (batch, window={window}, n, 3), "
            f"got {tuple(pos_window.shape)}"
        )
    if not pos_window.is_meta and not bool(torch.isfinite(pos_window).all()):  # meta: no data
        where = tuple(int(k) for k in (~torch.isfinite(pos_window.detach())).nonzero()[0])
        raise ValueError(f"pos_window contains NaN or infinite values at {where}")
    last, prev = pos_window[:, -1], pos_window[:, -2]
    # shapes of the attributes, finiteness and magnitudes: the particle-model check
    check_particle_inputs(last, last - prev, node_attr, edge_attr, node_attr_dim, edge_attr_dim)


class ForecastModel(nn.Module, ABC):
    """Base class of the forecast models: checks the inputs once, then :meth:`_forecast`.

    Args:
        window: ``K``, the frames per input window (``>= 2``).
        node_attr_dim: per-particle scalars.
        edge_attr_dim: scalars per ordered pair (0: ``edge_attr`` is ``None``).
    """

    def __init__(self, window: int, node_attr_dim: int = 0, edge_attr_dim: int = 0) -> None:
        super().__init__()
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ValueError(f"window must be an integer >= 2, got {window!r}")
        if node_attr_dim < 0 or edge_attr_dim < 0:
            raise ValueError(
                f"attribute sizes must be >= 0, got node_attr_dim={node_attr_dim}, "
                f"edge_attr_dim={edge_attr_dim}"
            )
        self.window, self.node_attr_dim, self.edge_attr_dim = window, node_attr_dim, edge_attr_dim

    @abstractmethod
    def _forecast(self, pos_window: Tensor, node_attr: Tensor, edge_attr: Tensor | None) -> Tensor:
        """The prediction (batch, n, 3) of checked inputs."""

    def forward(
        self, pos_window: Tensor, node_attr: Tensor, edge_attr: Tensor | None = None
    ) -> Tensor:
        check_forecast_inputs(
            pos_window, node_attr, edge_attr, self.window, self.node_attr_dim, self.edge_attr_dim
        )
        if self.edge_attr_dim == 0:
            edge_attr = None
        return self._forecast(pos_window, node_attr, edge_attr)  # [batch, n, 3]


@register_model(kind="forecast")
class LinearExtrapolation(ForecastModel):
    r"""Constant-velocity extrapolation :math:`x^{(T)} + s\,(x^{(T)} - x^{(T-1)})` with
    ``steps_ahead`` :math:`s = H / \Delta` (horizon over window spacing); no parameters.

    >>> x = torch.arange(3.0).reshape(1, 3, 1, 1).expand(1, 3, 2, 3)  # moving by 1 per frame
    >>> LinearExtrapolation(window=3, steps_ahead=2.0)(x, torch.zeros(1, 2, 0))[0, 0].tolist()
    [4.0, 4.0, 4.0]
    """

    def __init__(
        self,
        window: int = 2,
        steps_ahead: float = 1.0,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 0,
    ) -> None:
        super().__init__(window, node_attr_dim, edge_attr_dim)
        self.steps_ahead = float(steps_ahead)

    def _forecast(self, pos_window: Tensor, node_attr: Tensor, edge_attr: Tensor | None) -> Tensor:
        last = pos_window[:, -1]
        return last + self.steps_ahead * (last - pos_window[:, -2])


@register_model(kind="forecast")
class LastFrameEGNN(ForecastModel):
    """EGNN (velocity variant) on the last frame with velocity ``x^(T) − x^(T−1)``; the rest
    of the window is ignored. Arguments as :class:`~equidyn.models.EGNN`."""

    def __init__(
        self,
        window: int = 2,
        num_features: int = 64,
        num_layers: int = 4,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 0,
    ) -> None:
        super().__init__(window, node_attr_dim, edge_attr_dim)
        check_sizes(num_features=num_features, num_layers=num_layers)
        extra_node, extra_edge = self._window_invariants(window)
        self.egnn = EGNN(
            num_features, num_layers, node_attr_dim + extra_node, edge_attr_dim + extra_edge
        )

    @staticmethod
    def _window_invariants(window: int) -> tuple[int, int]:
        """Node and pair inputs the model adds to the attributes from the window: none."""
        return 0, 0

    def _forecast(self, pos_window: Tensor, node_attr: Tensor, edge_attr: Tensor | None) -> Tensor:
        last = pos_window[:, -1]
        return self.egnn(last, last - pos_window[:, -2], node_attr, edge_attr)


@register_model(kind="forecast")
class StackedFramesEGNN(LastFrameEGNN):
    r"""EGNN on the last frame whose invariant inputs stack the whole window: node attributes
    ``[a_i, |x_i^(t) − x_i^(T)| for t < T]`` and pair attributes
    ``[a_ij, |x_i^(t) − x_j^(t)| for every t]``; velocity ``x^(T) − x^(T−1)``. Arguments as
    :class:`LastFrameEGNN`.

    >>> model = StackedFramesEGNN(window=3, num_features=8, num_layers=1)
    >>> model(torch.randn(2, 3, 4, 3), torch.zeros(2, 4, 0)).shape
    torch.Size([2, 4, 3])
    """

    @staticmethod
    def _window_invariants(window: int) -> tuple[int, int]:
        """``K − 1`` displacements per particle, ``K`` distances per pair."""
        return window - 1, window

    def _forecast(self, pos_window: Tensor, node_attr: Tensor, edge_attr: Tensor | None) -> Tensor:
        last = pos_window[:, -1]  # [batch, n, 3]
        step = pos_window[:, :-1] - last[:, None]
        travel = ((step * step).sum(-1) + 1e-12).sqrt()  # [batch, K - 1, n]
        rel = pos_window[:, :, :, None] - pos_window[:, :, None, :]  # [batch, K, n, n, 3]
        # a smooth norm: the diagonal (i = j) is zero and its gradient must stay finite
        dist = ((rel * rel).sum(-1) + 1e-12).sqrt().permute(0, 2, 3, 1)  # [batch, n, n, K]
        nodes = torch.cat([node_attr, travel.transpose(1, 2)], dim=-1)
        edges = dist if edge_attr is None else torch.cat([edge_attr, dist], dim=-1)
        return self.egnn(last, last - pos_window[:, -2], nodes, edges)
