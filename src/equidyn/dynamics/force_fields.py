"""Learned pairwise force fields: equivariant accelerations for neural ODEs of particle systems.

:class:`PairForceField` predicts the acceleration of every particle as a sum of central pair
forces with a learned magnitude,

.. math::

    a_i = \\operatorname{sat}_s\\Big(\\sum_{j \\ne i} \\phi_\\theta(e_{ij}, r_{ij})\\,
        \\rho_{ij}^{-p}\\, (x_i - x_j)\\Big), \\qquad
    \\rho_{ij} = \\sqrt{r_{ij}^2 + \\varepsilon^2}, \\qquad
    \\operatorname{sat}_s(a) = a\\, \\frac{s \\tanh(|a| / s)}{|a|},

with ``r_ij = |x_i − x_j|``, ``e_ij`` the (symmetrised) edge attributes and symmetric
functions of the node attributes, ``φ_θ`` an MLP of the invariants
``[e_ij, n_i + n_j, n_i n_j, r_ij, 1/ρ_ij]``, ``p`` a fixed power-law envelope (``p = 3`` is
the inverse-square force law of gravity and electrostatics, so ``φ_θ`` only has to learn a
bounded correction, e.g. the charge product), ``ε`` a softening length and ``s`` a learned
saturation scale (an equivariant version of the force clip of the charged N-body simulator).

Only invariants enter ``φ_θ`` and every pair force points along ``x_i − x_j``, so the field
is E(3) equivariant (rotations, reflections, translations) and permutation equivariant, and
since ``φ_ij = φ_ji`` it obeys Newton's third law: the total momentum is conserved (before the
saturation, which only acts on the few particles in close encounters). The field ignores
velocities. Only the ``n (n − 1) / 2`` unordered pairs are evaluated.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equidyn._deprecation import renamed_arguments
from equidyn.graph.scatter import scatter_sum
from equidyn.models.particles import (
    RENAMED_ARGUMENTS,
    ParticleInputs,
    ParticleModel,
    check_sizes,
    mlp,
)
from equidyn.models.registry import register_model

__all__ = ["PairForceField"]


@register_model(kind="particle")
class PairForceField(ParticleModel):
    """Sum of learned central pair forces (equations in the module docstring).

    ``forward(pos, vel, node_attr, edge_attr) -> acceleration`` (batch, n, 3), the interface
    of the dynamics models with accelerations instead of positions; use it as the field of
    :class:`equidyn.dynamics.NeuralODE` (its ``output`` is ``"acceleration"``). The last layer of
    ``φ_θ`` starts at zero, so the initial field is zero (free flight ``x + v t``).

    Args:
        num_features: width of the MLP ``φ_θ``.
        num_layers: hidden layers of ``φ_θ`` (SiLU activations).
        node_attr_dim, edge_attr_dim: scalar attributes per particle and per pair.
        power: exponent ``p`` of the envelope ``ρ^{-p}`` (0 for none).
        softening: ``ε`` (> 0), keeps the field finite when two particles meet.
        saturation: initial ``s``; ``None`` for no saturation.

    >>> field = PairForceField(num_features=8, edge_attr_dim=1)
    >>> pos, vel = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    >>> q = torch.tensor([1.0, -1, 1, -1]).expand(2, 4)
    >>> a = field(pos, vel, torch.zeros(2, 4, 0), (q[:, :, None] * q[:, None, :])[..., None])
    >>> a.shape, float(a.detach().abs().max())  # zero at initialisation
    (torch.Size([2, 4, 3]), 0.0)
    """

    output = "acceleration"

    @renamed_arguments(**RENAMED_ARGUMENTS)
    def __init__(
        self,
        num_features: int = 32,
        num_layers: int = 2,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 1,
        *,
        power: float = 3.0,
        softening: float = 0.05,
        saturation: float | None = 150.0,
    ) -> None:
        super().__init__(node_attr_dim, edge_attr_dim)
        check_sizes(num_features=num_features, num_layers=num_layers)
        if softening <= 0:
            raise ValueError(f"softening must be positive, got {softening}")
        if saturation is not None and saturation <= 0:
            raise ValueError(f"saturation must be positive or None, got {saturation}")
        self.power, self.softening = float(power), float(softening)
        dims = [edge_attr_dim + 2 * node_attr_dim + 2] + [num_features] * num_layers + [1]
        self.phi = mlp(dims, act_last=False)
        with torch.no_grad():
            self.phi[-1].weight.zero_()
            self.phi[-1].bias.zero_()
        self.log_saturation = (
            nn.Parameter(torch.tensor(math.log(saturation))) if saturation is not None else None
        )

    def get_extra_state(self) -> dict[str, float]:
        """``softening`` and ``power`` travel with the ``state_dict`` (a fine-tuned field may
        use another softening than it was built with)."""
        return {"softening": self.softening, "power": self.power}

    def set_extra_state(self, state: dict[str, float]) -> None:
        self.softening, self.power = float(state["softening"]), float(state["power"])

    def pair_magnitude(self, r: torch.Tensor, pair_attr: torch.Tensor) -> torch.Tensor:
        """``φ_θ(e, r) ρ^{-p}`` for distances ``r`` (...) and invariants ``pair_attr`` (..., k)."""
        rho2 = r * r + self.softening**2
        inv_rho = rho2.rsqrt()
        feats = torch.cat([pair_attr, r[..., None], inv_rho[..., None]], dim=-1)
        return self.phi(feats)[..., 0] * inv_rho.pow(self.power)

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, None]:
        """Accelerations (batch, n, 3); the field ignores velocities."""
        pos, _, node_attr, edge_attr = inputs
        n = pos.shape[1]
        i, j = torch.triu_indices(n, n, 1, device=pos.device)  # the unordered pairs
        diff = pos[:, i] - pos[:, j]  # [batch, pairs, 3]
        r = (diff * diff).sum(-1).clamp_min(1e-30).sqrt()  # [batch, pairs]
        parts = [node_attr[:, i] + node_attr[:, j], node_attr[:, i] * node_attr[:, j]]
        if edge_attr is not None:
            parts.insert(0, 0.5 * (edge_attr[:, i, j] + edge_attr[:, j, i]))
        pair_force = self.pair_magnitude(r, torch.cat(parts, dim=-1))[..., None] * diff
        # a_i += f_ij, a_j -= f_ij
        both = torch.cat([pair_force, -pair_force], dim=1)  # [batch, 2 pairs, 3]
        acc = scatter_sum(both, torch.cat([i, j]), n, dim=1)  # [batch, n, 3]
        if self.log_saturation is None:
            return acc, None
        s = self.log_saturation.exp()
        norm = (acc * acc).sum(-1, keepdim=True).add(1e-24).sqrt()
        return acc * (s * torch.tanh(norm / s) / norm), None  # [batch, n, 3]
