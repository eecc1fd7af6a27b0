r"""A plain Transformer on particles: the non-equivariant baseline of the GATr experiments.

Every particle is one token :math:`t_i = W_{in} [x_i, v_i, a_i] + b` (position, velocity and
node attributes concatenated); a stack of pre-norm encoder layers (multi-head self-attention
and an MLP of width ``2 · num_features``, both residual) mixes them, and a linear head reads
the displacement, :math:`\hat x_i = x_i + W_{out} h_i` (and with ``predict_velocity`` the new
velocity :math:`\hat v_i = v_i + W_v h_i`). There is no positional encoding, so the model is
equivariant to permutations of the particles and to nothing else: rotations, reflections and
translations it can only learn from data (Brehmer et al., *Does equivariance matter at
scale?*, 2024, train it with and without E(3) augmentation).

>>> import torch
>>> model = Transformer(node_attr_dim=1, num_features=16, num_layers=2, num_heads=4)
>>> pos, vel, mass = torch.randn(3, 5, 3), torch.randn(3, 5, 3), torch.rand(3, 5, 1)
>>> model(pos, vel, mass).shape
torch.Size([3, 5, 3])
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn.models.particles import ParticleInputs, ParticleModel
from equidyn.models.registry import register_model

__all__ = ["Transformer"]


@register_model(kind="particle")
class Transformer(ParticleModel):
    """Tokens ``[x, v, node_attr]`` → pre-norm encoder → ``x + Δx`` (see the module docstring).

    Args:
        node_attr_dim: per-particle scalars (masses, charges) appended to every token.
        edge_attr_dim: must be 0 (a transformer sees particles, not pairs).
        num_features: token width; ``num_heads`` must divide it.
        num_layers: encoder layers.
        num_heads: attention heads.
        predict_velocity: also read the next velocity (for :meth:`forward_state`).
    """

    def __init__(
        self,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 0,
        num_features: int = 128,
        num_layers: int = 4,
        num_heads: int = 8,
        predict_velocity: bool = False,
    ) -> None:
        super().__init__(node_attr_dim, edge_attr_dim)
        if edge_attr_dim != 0:
            raise ValueError(
                f"a Transformer takes no edge attributes, got edge_attr_dim={edge_attr_dim}"
            )
        if num_features < 1 or num_layers < 1 or num_heads < 1 or num_features % num_heads:
            raise ValueError(
                "need num_features, num_layers, num_heads >= 1 with num_heads dividing "
                f"num_features, got {num_features}, {num_layers}, {num_heads}"
            )
        self.embed = nn.Linear(6 + node_attr_dim, num_features)
        layer = nn.TransformerEncoderLayer(
            num_features, num_heads, 2 * num_features, dropout=0.0, batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.readout = nn.Linear(num_features, 3)
        self.velocity_readout = nn.Linear(num_features, 3) if predict_velocity else None

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor | None]:
        pos, vel, node_attr, _ = inputs
        tokens = self.embed(torch.cat([pos, vel, node_attr], -1))  # [batch, n, num_features]
        h = self.encoder(tokens)
        v = vel + self.velocity_readout(h) if velocity and self.velocity_readout else None
        return pos + self.readout(h), v  # [batch, n, 3] each
