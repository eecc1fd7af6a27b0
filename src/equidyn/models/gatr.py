r"""Geometric Algebra Transformer for particle dynamics (GATr; Brehmer et al. 2023).

Each particle is one token with two multivector channels and ``node_attr_dim`` scalars:

* its position as a point :math:`P(x) = e_{123} - x_1 e_{023} + x_2 e_{013} - x_3 e_{012}`,
* its velocity as the translation-invariant bivector :math:`v_1 e_{01} + v_2 e_{02} + v_3 e_{03}`,
* its attributes (masses, charges) as auxiliary scalars.

A :class:`~equidyn.ga.transformer.GATrNet` maps them to two output channels. The output point's
weight :math:`w` and ideal part :math:`p` give the displacement :math:`d = p - w\,x`, invariant
under translations, so the prediction is :math:`x' = x + d`; ``forward_state`` also predicts
:math:`v' = v + d_2` from the second output channel's trivector part in the same way.

**Reflections.** GATr's layers are equivariant under the Pin(3,0,1) action
:math:`\rho_u(x) = u\hat x u^{-1}` of odd versors (reflections), which maps the point of
:math:`x` to *minus* the point of the mirrored :math:`x` (same projective point, opposite
weight). Embedding mirrored Euclidean data gives :math:`+P`, i.e. the grade involution
:math:`\alpha` of :math:`\rho_u(P)`. The network is therefore averaged over :math:`\{1,
\alpha\}`: :math:`F(X) = \tfrac12\,[f(X) + \alpha f(\alpha X)]` commutes with :math:`\alpha` and
with every :math:`\rho_u`, which makes the model exactly E(3)-equivariant on Euclidean inputs
at the price of two network evaluations (batched into one call).

Call (the particle-model contract, :class:`~equidyn.models.particles.ParticleModel`)::

    model(pos, vel, node_attr, edge_attr=None) -> predicted positions   # [batch, n, 3]

Edge attributes are not supported (``edge_attr_dim`` is 0): a transformer sees particles, not
pairs; pass per-particle quantities (masses) as ``node_attr``.

>>> import torch
>>> model = GATr(node_attr_dim=1, num_features=8, num_scalars=8, num_layers=1, num_heads=2)
>>> pos, vel, mass = torch.randn(2, 5, 3), torch.randn(2, 5, 3), torch.rand(2, 5, 1)
>>> model(pos, vel, mass).shape
torch.Size([2, 5, 3])
"""

from __future__ import annotations

import torch
from torch import Tensor

from equidyn.ga.embedding import embed_point, extract_direction
from equidyn.ga.products import grade_involution
from equidyn.ga.transformer import GATrNet
from equidyn.models.particles import ParticleInputs, ParticleModel, check_sizes
from equidyn.models.registry import register_model

__all__ = ["GATr"]

_E0I = (5, 6, 7)  # e01, e02, e03


def _velocity_bivector(v: Tensor) -> Tensor:
    mv = v.new_zeros(v.shape[:-1] + (16,))
    return mv.index_copy(-1, torch.tensor(_E0I, device=v.device), v)  # [..., 16]


@register_model(kind="particle")
class GATr(ParticleModel):
    """GATr particle model (see the module docstring).

    Args:
        node_attr_dim: per-particle scalars (masses, charges), fed as auxiliary scalars.
        edge_attr_dim: must be 0 (a transformer sees particles, not pairs).
        num_features: multivector channels of the hidden tokens.
        num_scalars: auxiliary scalar channels of the hidden tokens.
        num_layers: GATr blocks.
        num_heads: attention heads.
    """

    def __init__(
        self,
        node_attr_dim: int = 1,
        edge_attr_dim: int = 0,
        *,
        num_features: int = 16,
        num_scalars: int = 32,
        num_layers: int = 4,
        num_heads: int = 4,
    ) -> None:
        if edge_attr_dim != 0:
            raise ValueError(
                f"GATr takes no edge attributes, got edge_attr_dim={edge_attr_dim!r}; "
                "pass per-particle attributes as node_attr"
            )
        if isinstance(node_attr_dim, bool) or not isinstance(node_attr_dim, int):
            raise ValueError(f"node_attr_dim must be a non-negative int, got {node_attr_dim!r}")
        check_sizes(num_features=num_features, num_scalars=num_scalars, num_layers=num_layers,
                    num_heads=num_heads)  # fmt: skip
        super().__init__(node_attr_dim, 0)
        self.net = GATrNet(
            2,
            2,
            in_scalars=node_attr_dim,
            channels=num_features,
            scalars=num_scalars,
            n_blocks=num_layers,
            n_heads=num_heads,
        )

    @property
    def predicts_velocity(self) -> bool:
        """Always: the second output channel gives the velocity."""
        return True

    def embed(self, pos: Tensor, vel: Tensor) -> Tensor:
        """Tokens ``(batch, n, 2, 16)``: the position's point and the velocity's bivector."""
        return torch.stack([embed_point(pos), _velocity_bivector(vel)], -2)

    def symmetrised(self, mv: Tensor, node_attr: Tensor) -> Tensor:
        """``½ [f(X) + α f(α X)]`` ``(batch, n, 2, 16)`` with one batched network call."""
        both = torch.cat([mv, grade_involution(mv)], 0)  # [2 batch, n, 2, 16]
        attr = torch.cat([node_attr, node_attr], 0) if self.node_attr_dim else None
        out, _ = self.net(both, attr)
        direct, mirrored = out.chunk(2, 0)
        return 0.5 * (direct + grade_involution(mirrored))

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor | None]:
        pos, vel, node_attr, _ = inputs
        out = self.symmetrised(self.embed(pos, vel), node_attr)
        shift = extract_direction(out) - out[..., 14:15] * pos[..., None, :]  # [batch, n, 2, 3]
        return pos + shift[..., 0, :], (vel + shift[..., 1, :]) if velocity else None
