"""A tiny pairwise potential made of plain torch ops, used to test the infrastructure.

:math:`\\varepsilon_i = \\frac12 \\sum_j A_{z_i z_j} e^{-r_{ij}} u(r_{ij}/r_c) + b_{z_i}`
with a smooth polynomial cutoff :math:`u`. Invariant by construction; registered so it can be
saved, loaded and trained from a config like any other model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn.models.potential import register_model


@register_model
class PairModel(nn.Module):
    def __init__(self, r_max: float = 4.0, num_species: int = 2) -> None:
        super().__init__()
        self.r_max = float(r_max)
        self.num_species = int(num_species)
        self.strength = nn.Parameter(torch.randn(num_species, num_species))
        self.bias = nn.Parameter(torch.randn(num_species))

    def config(self) -> dict:
        return {"r_max": self.r_max, "num_species": self.num_species}

    def forward(self, species: Tensor, edge_index: Tensor, edge_vec: Tensor) -> Tensor:
        r = edge_vec.norm(dim=-1)  # [n_edges]
        x = (r / self.r_max).clamp(max=1.0)
        p = 6.0
        u = (
            1
            - (p + 1) * (p + 2) / 2 * x**p
            + p * (p + 2) * x ** (p + 1)
            - p * (p + 1) / 2 * x ** (p + 2)
        )
        a = 0.5 * (self.strength + self.strength.T)
        w = a[species[edge_index[0]], species[edge_index[1]]]
        e = 0.5 * w * torch.exp(-r) * u * (r < self.r_max)  # [n_edges]
        out = self.bias[species].to(r.dtype)
        return out.index_add(0, edge_index[0], e)  # [n_atoms]
