"""The models of the charged N-body experiments, by name, and the inputs each one takes.

:data:`MODELS` maps a name of ``equidyn nbody --model`` to a constructor ``(hidden, layers)``
and a kind of input features; :func:`features` builds those features from positions and
charges, and ``_predict`` / ``_predict_state`` call a model on them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
from torch import nn

from equidyn.dynamics.force_fields import PairForceField
from equidyn.dynamics.neural_ode import NeuralODE
from equidyn.models.egnn import EGNN
from equidyn.models.gnn import GNN
from equidyn.models.linear_dynamics import LinearDynamics
from equidyn.models.radial_field import RadialField

__all__ = ["DEFAULT_SIZES", "MODELS", "build_model", "features"]


def _steerable(module: str, cls: str) -> Callable[[int, int], nn.Module]:
    """Factory of a tensor-product model (SEGNN, TFN, SE(3)-Transformer), imported on use."""

    def make(hidden: int, layers: int) -> nn.Module:
        try:
            model_cls = getattr(importlib.import_module(f"equidyn.models.{module}"), cls)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"model {cls} is not available in this installation ({e})") from e
        return model_cls(hidden, layers, 0, 1)

    return make


#: model name -> (constructor(hidden, layers), kind of input features, see :func:`features`)
MODELS: dict[str, tuple[Callable[[int, int], nn.Module], str]] = {
    "linear": (lambda h, layers: LinearDynamics(node_attr_dim=0, edge_attr_dim=0), "none"),
    "egnn": (lambda h, layers: EGNN(h, layers, 0, 2, velocity=False), "egnn"),
    "egnn_vel": (lambda h, layers: EGNN(h, layers, 0, 2, velocity=True), "egnn"),
    "gnn": (lambda h, layers: GNN(h, layers, node_attr_dim=1, edge_attr_dim=1), "gnn"),
    "radial_field": (lambda h, layers: RadialField(h, layers, 0, 1), "charges"),
    "neural_ode": (
        lambda h, layers: NeuralODE(hidden_dim=h, n_layers=layers, edge_attr_dim=1),
        "charges",
    ),
    "pair_ode": (
        lambda h, layers: NeuralODE(
            PairForceField(h, layers, 0, 1, softening=0.2),
            edge_attr_dim=1,
            field_kind="acceleration",
            method="semi_implicit_euler",
            step_size=1.0 / 500,
            compile=True,
        ),
        "charges",
    ),
    "segnn": (_steerable("segnn", "SEGNN"), "charges"),
    "tfn": (_steerable("tfn", "TFN"), "charges"),
    "se3_transformer": (_steerable("se3_transformer", "SE3Transformer"), "charges"),
}


def features(
    kind: str, pos: torch.Tensor, charges: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(node_attr, edge_attr)`` for a model of feature ``kind``; charges (batch, n, 1).

    >>> q = torch.tensor([[[1.0], [-1.0]]])
    >>> node, edge = features("charges", torch.zeros(1, 2, 3), q)
    >>> node.shape, edge[0, :, :, 0].tolist()
    (torch.Size([1, 2, 0]), [[1.0, -1.0], [-1.0, 1.0]])
    """
    batch, n = pos.shape[:2]
    empty = pos.new_zeros(batch, n, 0)
    qq = charges[:, :, None, :] * charges[:, None, :, :]  # [batch, n, n, 1]
    if kind == "none":
        return empty, None
    if kind == "charges":
        return empty, qq
    if kind == "gnn":
        return charges, qq
    if kind == "egnn":
        diff = pos[:, :, None, :] - pos[:, None, :, :]
        return empty, torch.cat([qq, (diff * diff).sum(-1, keepdim=True)], dim=-1)
    raise ValueError(f"unknown feature kind {kind!r}")


#: (hidden width, layers) of a model when ``--hidden`` / ``--layers`` are not given
DEFAULT_SIZES: dict[str, tuple[int, int]] = {"pair_ode": (32, 2)}


def build_model(
    name: str, hidden_dim: int | None = None, n_layers: int | None = None
) -> tuple[nn.Module, str]:
    """A fresh model by name and its feature kind (see :data:`MODELS`).

    ``hidden_dim`` and ``n_layers`` default to :data:`DEFAULT_SIZES` (64 and 4, the protocol's
    EGNN, for the models not listed there).

    >>> model, kind = build_model("linear")
    >>> type(model).__name__, kind
    ('LinearDynamics', 'none')
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    make, kind = MODELS[name]
    hidden_default, layers_default = DEFAULT_SIZES.get(name, (64, 4))
    hidden_dim = hidden_default if hidden_dim is None else hidden_dim
    n_layers = layers_default if n_layers is None else n_layers
    return make(hidden_dim, n_layers), kind


def _predict(
    model: nn.Module, kind: str, pos: torch.Tensor, vel: torch.Tensor, charges: torch.Tensor
) -> torch.Tensor:
    node_attr, edge_attr = features(kind, pos, charges)
    return model(pos, vel, node_attr, edge_attr)  # [batch, n, 3]


def _predict_state(
    model: nn.Module, kind: str, pos: torch.Tensor, vel: torch.Tensor, charges: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    node_attr, edge_attr = features(kind, pos, charges)
    return model.forward_state(pos, vel, node_attr, edge_attr)
