"""Complete architectures, one file each.

Interatomic potentials (``NequIP``, ``MACE``) take an :class:`equidyn.graph.AtomicGraph` through
:class:`Potential`, which adds forces and stress by autograd. Particle models (``EGNN``,
``SEGNN``, ``TFN``, ``SE3Transformer``, ``GATr``, ``GNN``, ``RadialField``, ``LinearDynamics``
and the non-equivariant baseline ``Transformer``) are :class:`ParticleModel` s:
``model(pos, vel, node_attr, edge_attr) -> positions`` on a dense particle
graph, or ``model.predict(ParticleSystem(pos, vel, charges))``. Forecast models (``ESTAG`` and
its baselines ``LastFrameEGNN``, ``StackedFramesEGNN``, ``LinearExtrapolation``) are
:class:`ForecastModel` s: ``model(pos_window, node_attr, edge_attr) -> positions`` ahead.
Their shared layers are in :mod:`equidyn.models.blocks`; every model is registered by name
(:mod:`equidyn.models.registry`), which is how the trainer, model files and the CLI build them.

>>> import torch
>>> from equidyn.models import EGNN
>>> model = EGNN(num_features=16, num_layers=2, node_attr_dim=0, edge_attr_dim=1)
>>> pos, vel = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
>>> model(pos, vel, torch.zeros(2, 5, 0), torch.randn(2, 5, 5, 1)).shape
torch.Size([2, 5, 3])
"""

from equidyn.models.allegro import Allegro
from equidyn.models.blocks import (
    EdgeEmbedding,
    RadialWeightedConvolution,
    gate_irreps,
    set_edge_chunk,
)
from equidyn.models.egnn import EGNN, EGNNLayer
from equidyn.models.escn import ESCN
from equidyn.models.estag import ESTAG
from equidyn.models.forecasting import (
    ForecastModel,
    LastFrameEGNN,
    LinearExtrapolation,
    StackedFramesEGNN,
)
from equidyn.models.gatr import GATr
from equidyn.models.gnn import GNN
from equidyn.models.linear_dynamics import LinearDynamics
from equidyn.models.mace import MACE
from equidyn.models.nequip import NequIP
from equidyn.models.particles import ParticleModel, ParticleSystem
from equidyn.models.potential import Potential, load_model, save_model
from equidyn.models.radial_field import RadialField
from equidyn.models.registry import (
    build_model,
    model_config,
    register_model,
    registered_models,
    resolve_model,
)
from equidyn.models.se3_transformer import SE3Transformer
from equidyn.models.segnn import SEGNN
from equidyn.models.tfn import TFN
from equidyn.models.transformer import Transformer

__all__ = [
    "Allegro",
    "ESCN",
    "EGNN",
    "EGNNLayer",
    "ESTAG",
    "ForecastModel",
    "LastFrameEGNN",
    "LinearExtrapolation",
    "StackedFramesEGNN",
    "EdgeEmbedding",
    "GATr",
    "GNN",
    "LinearDynamics",
    "MACE",
    "NequIP",
    "ParticleModel",
    "ParticleSystem",
    "Potential",
    "RadialField",
    "RadialWeightedConvolution",
    "SE3Transformer",
    "SEGNN",
    "TFN",
    "Transformer",
    "build_model",
    "gate_irreps",
    "set_edge_chunk",
    "load_model",
    "model_config",
    "register_model",
    "registered_models",
    "resolve_model",
    "save_model",
]
