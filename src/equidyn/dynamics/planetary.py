r"""The gravitational n-body task of the GATr paper: one heavy body and a few light ones.

Brehmer et al. (*Geometric Algebra Transformer*, NeurIPS 2023) predict where the bodies of a
small planetary system are after a fixed time from their initial positions, velocities and
masses. :func:`sample_planetary_systems` draws such systems here: a star of mass U(1, 2) and
``planets`` light bodies of mass U(0.01, 0.05) on roughly circular orbits (radius U(0.5, 2),
speed U(0.8, 1.2) times the circular speed :math:`\sqrt{m_\star / r}`, random orbital planes),
the centre of mass at rest, the whole system shifted by N(0, 1) so that no origin is special.
The target is the state after 100 RK4 steps of dt = 0.01 of softened gravity (ε = 0.05).

:class:`PlanetaryNBodyDataset` serves them with the attributes of
:class:`~equidyn.dynamics.data.ChargedNBodyDataset` (``pos``, ``vel``, ``charges``,
``target_pos``, ...), the masses in the place of the charges: the particle models read them
as their node attribute (and ``m_i m_j`` as the edge attribute), and the N-body task of the
trainer trains on either data set.

>>> ds = PlanetaryNBodyDataset(8, planets=3, seed=0)
>>> len(ds), tuple(ds.pos.shape), tuple(ds.charges.shape)
(8, (8, 4, 3), (8, 4, 1))
"""

from __future__ import annotations

import torch
from torch.nn.functional import normalize
from torch.utils.data import Dataset

from equidyn.dynamics.systems import GravityNBody, linear_momentum, simulate

__all__ = ["PlanetaryNBodyDataset", "sample_planetary_systems"]

#: the protocol's integration: RK4, ``N_STEPS`` steps of ``DT``, softening ``SOFTENING``
DT, N_STEPS, SOFTENING = 0.01, 100, 0.05


def sample_planetary_systems(
    n: int, planets: int = 4, *, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(pos, vel, mass)`` of ``n`` random systems, (n, 1 + planets, 3) and (n, 1 + planets).

    Body 0 is the star. Float64; the same ``seed`` gives the same systems.

    >>> pos, vel, mass = sample_planetary_systems(2, 3, seed=1)
    >>> bool(linear_momentum(vel, mass).abs().max() < 1e-12)
    True
    """
    if n < 1 or planets < 1:
        raise ValueError(f"need n >= 1 systems and planets >= 1, got n={n}, planets={planets}")
    g = torch.Generator().manual_seed(int(seed))

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g, dtype=torch.float64)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    mass = torch.cat([1 + uniform(n, 1), 0.01 + 0.04 * uniform(n, planets)], 1)  # [n, k]
    radius = 0.5 + 1.5 * uniform(n, planets, 1)  # [n, planets, 1]
    r_hat = normalize(normal(n, planets, 3), dim=-1)
    tangent = normalize(torch.linalg.cross(r_hat, normal(n, planets, 3)), dim=-1)
    speed = (mass[:, :1, None] / radius).sqrt() * (0.8 + 0.4 * uniform(n, planets, 1))
    zero = torch.zeros(n, 1, 3, dtype=torch.float64)
    pos = torch.cat([zero, radius * r_hat], 1)  # [n, 1 + planets, 3]
    vel = torch.cat([zero, speed * tangent], 1)
    total = mass.sum(1)[:, None, None]  # [n, 1, 1]
    pos = pos - (mass[..., None] * pos).sum(1, keepdim=True) / total
    vel = vel - linear_momentum(vel, mass)[:, None, :] / total
    return pos + normal(n, 1, 3), vel, mass


class PlanetaryNBodyDataset(Dataset):
    """``n`` planetary systems and their states after the protocol's integration.

    Attributes (whole split, ``dtype``): ``pos``, ``vel`` (n, k, 3) initial; ``charges``
    (n, k, 1) the masses; ``target_pos``, ``target_vel`` (n, k, 3) final; ``future_pos``,
    ``future_vel`` (n, 1, k, 3) the same, in the layout of chained targets; ``masses``
    (n, k). Item ``i`` is a dict of the first five, as in
    :class:`~equidyn.dynamics.data.ChargedNBodyDataset`. Generation takes well under a second
    per thousand systems, so nothing is cached.
    """

    def __init__(
        self, n: int, *, planets: int = 4, seed: int = 0, dtype: torch.dtype = torch.float32
    ) -> None:
        pos, vel, mass = sample_planetary_systems(n, planets, seed=seed)
        xs, vs = simulate(
            GravityNBody(mass, softening=SOFTENING), pos, vel, dt=DT, n_steps=N_STEPS,
            save_every=N_STEPS, integrator="rk4",
        )  # fmt: skip
        self.pos, self.vel = pos.to(dtype), vel.to(dtype)
        self.masses = mass.to(dtype)  # [n, k]
        self.charges = self.masses[..., None]  # [n, k, 1]: what the particle models read
        self.future_pos, self.future_vel = xs.to(dtype), vs.to(dtype)  # [n, 1, k, 3]
        self.target_pos, self.target_vel = self.future_pos[:, 0], self.future_vel[:, 0]

    def __len__(self) -> int:
        return self.pos.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "pos": self.pos[i],
            "vel": self.vel[i],
            "charges": self.charges[i],
            "target_pos": self.target_pos[i],
            "target_vel": self.target_vel[i],
        }
