"""The models of the charged N-body experiments, by name.

:data:`MODELS` maps a name of ``equidyn nbody --model`` to a constructor
``(width, layers, **options)``. Every model builds its own inputs from the raw system
(:meth:`~equidyn.models.particles.ParticleModel.inputs` of a
:class:`~equidyn.models.particles.ParticleSystem`), so no feature switch lives here;
``_predict`` / ``_predict_state`` call a model on positions, velocities and charges.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

from equidyn._deprecation import renamed_arguments
from equidyn.dynamics.force_fields import PairForceField
from equidyn.dynamics.neural_ode import NeuralODE
from equidyn.models.egnn import EGNN
from equidyn.models.gnn import GNN
from equidyn.models.linear_dynamics import LinearDynamics
from equidyn.models.particles import ParticleModel, ParticleSystem
from equidyn.models.radial_field import RadialField
from equidyn.models.se3_transformer import SE3Transformer
from equidyn.models.segnn import SEGNN
from equidyn.models.tfn import TFN

__all__ = ["DEFAULT_SIZES", "MODELS", "build_model"]


#: model name -> constructor ``(width, layers, **options)``; every model builds its own inputs
#: from the raw system (:meth:`~equidyn.models.particles.ParticleModel.inputs`): EGNN the
#: paper's edges ``[q_i q_j, |x_i − x_j|²]``, GNN the charges and ``q_i q_j``, the others
#: ``q_i q_j``, the linear baseline nothing. ``options`` (``predict_velocity``) go to the class.
MODELS: dict[str, Callable[..., ParticleModel]] = {
    "linear": lambda h, layers, **o: LinearDynamics(node_attr_dim=0, edge_attr_dim=0, **o),
    "egnn": lambda h, layers, **o: EGNN(h, layers, 0, 2, velocity=False, **o),
    "egnn_vel": lambda h, layers, **o: EGNN(h, layers, 0, 2, velocity=True, **o),
    "gnn": lambda h, layers, **o: GNN(h, layers, node_attr_dim=1, edge_attr_dim=1, **o),
    "radial_field": lambda h, layers, **o: RadialField(h, layers, 0, 1, **o),
    "neural_ode": lambda h, layers, **o: NeuralODE(
        num_features=h, num_layers=layers, edge_attr_dim=1, **o
    ),
    "pair_ode": lambda h, layers, **o: NeuralODE(
        PairForceField(h, layers, 0, 1, softening=0.2),
        edge_attr_dim=1,
        method="semi_implicit_euler",
        step_size=1.0 / 500,
        compile=True,
        **o,
    ),
    "segnn": lambda h, layers, **o: SEGNN(h, layers, 0, 1, **o),
    "tfn": lambda h, layers, **o: TFN(h, layers, 0, 1, **o),
    "se3_transformer": lambda h, layers, **o: SE3Transformer(h, layers, 0, 1, **o),
}


#: (hidden width, layers) of a model when ``--hidden`` / ``--layers`` are not given
DEFAULT_SIZES: dict[str, tuple[int, int]] = {"pair_ode": (32, 2)}


@renamed_arguments(hidden_dim="num_features", n_layers="num_layers")
def build_model(
    name: str, num_features: int | None = None, num_layers: int | None = None, **options: Any
) -> ParticleModel:
    """A fresh model by name (see :data:`MODELS`); ``options`` go to its class.

    ``num_features`` and ``num_layers`` default to :data:`DEFAULT_SIZES` (64 and 4, the
    protocol's EGNN, for the models not listed there).

    >>> type(build_model("linear")).__name__
    'LinearDynamics'
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    width, layers = DEFAULT_SIZES.get(name, (64, 4))
    width = width if num_features is None else num_features
    layers = layers if num_layers is None else num_layers
    return MODELS[name](width, layers, **options)


def _predict(model: ParticleModel, pos: Tensor, vel: Tensor, charges: Tensor) -> Tensor:
    return model.predict(ParticleSystem(pos, vel, charges))  # [batch, n, 3]


def _predict_state(
    model: ParticleModel, pos: Tensor, vel: Tensor, charges: Tensor
) -> tuple[Tensor, Tensor]:
    return model.predict_state(ParticleSystem(pos, vel, charges))  # [batch, n, 3] each
