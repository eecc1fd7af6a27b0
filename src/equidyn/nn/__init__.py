r"""Equivariant layers: nonlinearities, normalisation, dropout, radial bases, cutoffs, MLPs.

Every layer acting on features declares ``.irreps_in`` and ``.irreps_out`` and is equivariant
under O(3) (rotations and reflections); the test suite checks it with
:func:`equidyn.testing.assert_equivariant`. Activations are rescaled to unit second moment
(:func:`normalize2mom`) so that layers keep unit variance at initialisation.

>>> import torch
>>> from equidyn import nn
>>> gate = nn.Gate("8x0e", torch.nn.functional.silu, "4x0e", torch.sigmoid, "4x1o")
>>> layer = torch.nn.Sequential(nn.LayerNorm(gate.irreps_in), gate)
>>> layer(torch.randn(3, gate.irreps_in.dim)).shape
torch.Size([3, 20])
"""

from equidyn.nn.activation import NormalizedActivation, normalize2mom, parity
from equidyn.nn.cutoff import CosineCutoff, PolynomialCutoff
from equidyn.nn.dropout import Dropout
from equidyn.nn.extract import Extract, ExtractIr, chunks, from_chunks
from equidyn.nn.fully_connected import FullyConnectedNet
from equidyn.nn.gate import Gate, ScalarActivation
from equidyn.nn.mlp import MLP
from equidyn.nn.norm_activation import NormActivation
from equidyn.nn.normalization import BatchNorm, LayerNorm
from equidyn.nn.radial import BesselBasis, GaussianBasis

__all__ = [
    "BatchNorm",
    "BesselBasis",
    "CosineCutoff",
    "Dropout",
    "Extract",
    "ExtractIr",
    "FullyConnectedNet",
    "GaussianBasis",
    "Gate",
    "LayerNorm",
    "MLP",
    "NormActivation",
    "NormalizedActivation",
    "PolynomialCutoff",
    "ScalarActivation",
    "chunks",
    "from_chunks",
    "normalize2mom",
    "parity",
]
