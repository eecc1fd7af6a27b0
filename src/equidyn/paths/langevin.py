r"""Overdamped Langevin dynamics, the reference process of transition path sampling.

.. math::

    dx_t = b(x_t)\,dt + \sqrt{2D}\,dW_t, \qquad b(x) = -\frac{1}{\gamma}\nabla U(x),
    \qquad D = \frac{k_B T}{\gamma},

discretised by Euler–Maruyama, :math:`x_{i+1} = x_i + b(x_i)\,\Delta t + \sqrt{2D\Delta t}\,
\xi_i`. Every evaluation of :math:`\nabla U` at one configuration is counted in
:attr:`OverdampedLangevin.evaluations`: that count is the cost that transition path sampling
methods are compared by.

>>> import torch
>>> from equidyn.paths import MullerBrown
>>> dyn = OverdampedLangevin(MullerBrown(), kT=10.0)
>>> g = torch.Generator().manual_seed(0)
>>> path = dyn.simulate(dyn.potential.minimum_a.expand(4, 2), n_steps=100, dt=1e-4, generator=g)
>>> path.shape, dyn.evaluations          # (frames, paths, 2); 100 steps of 4 paths
(torch.Size([101, 4, 2]), 400)
"""

from __future__ import annotations

import math

import torch

from equidyn.paths._checks import check_int, check_positive

__all__ = ["OverdampedLangevin"]


class OverdampedLangevin:
    r"""Overdamped Langevin dynamics in a potential (see the module).

    Args:
        potential: a module or function mapping ``(..., d)`` configurations to ``(...)``
            energies, differentiable (an analytic surface or an equidyn model's energy).
        kT: the thermal energy :math:`k_B T` in the potential's units, ``> 0``.
        gamma: the friction :math:`\gamma`, ``> 0``.
    """

    def __init__(self, potential: torch.nn.Module, kT: float, gamma: float = 1.0) -> None:
        check_positive("kT", kT)
        check_positive("gamma", gamma)
        self.potential = potential
        self.kT = float(kT)
        self.gamma = float(gamma)
        self.evaluations = 0

    @property
    def diffusion(self) -> float:
        """The diffusion coefficient :math:`D = k_B T / \\gamma`."""
        return self.kT / self.gamma

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., d) -> (...)`` energies (not counted: the drift is what dynamics pay for)."""
        return self.potential(x)

    def drift(self, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        r"""``(..., d) -> (..., d)``: :math:`b(x) = -\nabla U(x)/\gamma`, counted.

        With ``create_graph=True`` the result is differentiable with respect to whatever
        ``x`` depends on (the Doob loss trains through it)."""
        if not create_graph:
            x = x.detach()
        if not x.requires_grad:
            x = x.requires_grad_()
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.potential(x).sum(), x, create_graph=create_graph)
        self.evaluations += x.shape[:-1].numel()
        return -grad / self.gamma

    def step(
        self, x: torch.Tensor, dt: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """One Euler–Maruyama step from ``x`` of shape ``(..., d)``."""
        noise = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
        return x + self.drift(x) * dt + math.sqrt(2.0 * self.diffusion * dt) * noise

    def simulate(
        self,
        x0: torch.Tensor,
        n_steps: int,
        dt: float,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n_steps`` steps from ``x0`` ``(..., d)``; returns ``(n_steps + 1, ..., d)``."""
        check_int("n_steps", n_steps)
        check_positive("dt", dt)
        frames = [x0.detach()]
        for _ in range(n_steps):
            frames.append(self.step(frames[-1], dt, generator))
        return torch.stack(frames)

    def path_log_likelihood(self, path: torch.Tensor, dt: float) -> torch.Tensor:
        r"""Log-density of a discretised path under the dynamics, given its first frame.

        .. math::

            \log p(x_{1:N} \mid x_0) = \sum_{i=0}^{N-1}
            \log \mathcal{N}\big(x_{i+1};\ x_i + b(x_i)\Delta t,\ 2D\Delta t\, I\big).

        ``path`` is ``(N + 1, ..., d)``; returns ``(...)``. Evaluations are counted.
        """
        if path.dim() < 2 or path.shape[0] < 2:
            raise ValueError(f"a path needs >= 2 frames on its first axis, got {tuple(path.shape)}")
        check_positive("dt", dt)
        x, nxt = path[:-1], path[1:]
        mean = x + self.drift(x) * dt
        var = 2.0 * self.diffusion * dt
        d = path.shape[-1]
        logp = -((nxt - mean) ** 2).sum(-1) / (2 * var) - 0.5 * d * math.log(2 * math.pi * var)
        return logp.sum(0)
