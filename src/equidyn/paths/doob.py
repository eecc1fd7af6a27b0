r"""Doob's Lagrangian: transition paths as a variational problem (Du et al. 2024).

Conditioning the reference dynamics :math:`dx = b\,dt + \sqrt{2D}\,dW` on leaving :math:`A`
at :math:`t = 0` and arriving at :math:`B` at :math:`t = T` (Doob's h-transform) gives the
path distribution closest to the reference one in relative entropy among those with these
end points. Over a family of controlled processes :math:`dx = u_t(x)\,dt + \sqrt{2D}\,dW`
whose marginals :math:`q_t` meet both ends by construction
(:class:`~equidyn.paths.GaussianPathMarginal`), that relative entropy is, by Girsanov,

.. math::

    \mathcal{L}(q) = \int_0^T \mathbb{E}_{x \sim q_t}\Big[\frac{1}{4D}
    \big\| u_t(x) - b(x) \big\|^2\Big]\,dt ,

estimated without simulating any trajectory: draw :math:`t \sim U(0, T)`, draw
:math:`x \sim q_t` by reparameterisation, evaluate :math:`b(x) = -\nabla U(x)/\gamma` once.
Each configuration costs one energy gradient, counted by the dynamics; the trained control
then samples as many paths as one likes at no further energy cost.

>>> import torch
>>> from equidyn.paths import MullerBrown, OverdampedLangevin, GaussianPathMarginal
>>> dyn = OverdampedLangevin(MullerBrown(), kT=10.0)
>>> a, b = dyn.potential.minimum_a, dyn.potential.minimum_b
>>> q = GaussianPathMarginal(a, b, duration=0.05, diffusion=dyn.diffusion)
>>> g = torch.Generator().manual_seed(0)
>>> loss = doob_lagrangian(q, dyn, batch_size=64, generator=g)
>>> bool(torch.isfinite(loss)), dyn.evaluations
(True, 64)
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from equidyn.paths._checks import check_int
from equidyn.paths.langevin import OverdampedLangevin
from equidyn.paths.marginal import GaussianPathMarginal

__all__ = ["doob_lagrangian", "fit_doob", "sample_paths"]


def doob_lagrangian(
    marginal: GaussianPathMarginal,
    dynamics: OverdampedLangevin,
    batch_size: int = 256,
    t_margin: float = 1e-3,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""A Monte Carlo estimate of :math:`\mathcal{L}(q)` (see the module), differentiable in
    the marginal's parameters.

    Each of ``batch_size`` times :math:`t = sT`, :math:`s \sim U(\epsilon, 1 - \epsilon)`
    (``t_margin`` :math:`= \epsilon`: the pinned ends make the integrand grow like
    :math:`1/(1-s)` there), gets one draw from every component, weighted by :math:`w_k`; so
    one call costs ``batch_size * K`` energy gradients.
    """
    check_int("batch_size", batch_size)
    if not 0 < t_margin < 0.5:
        raise ValueError(f"t_margin must lie in (0, 0.5), got {t_margin!r}")
    if not math.isclose(marginal.diffusion, dynamics.diffusion, rel_tol=1e-12):
        raise ValueError(
            f"the marginal's diffusion {marginal.diffusion} differs from the dynamics' "
            f"D = kT / gamma = {dynamics.diffusion}"
        )
    start = marginal.start
    u01 = torch.rand(batch_size, dtype=start.dtype, device=start.device, generator=generator)
    t = (t_margin + (1 - 2 * t_margin) * u01) * marginal.duration  # (n,)
    x, _ = marginal.sample(t, generator)  # (n, K, d)
    n, k, d = x.shape
    x_flat = x.reshape(n * k, d)
    t_flat = t.repeat_interleave(k)
    u = marginal.drift(x_flat, t_flat)  # (n K, d)
    b = dynamics.drift(x_flat, create_graph=True)  # (n K, d)
    per_sample = ((u - b) ** 2).sum(-1).view(n, k) / (4 * dynamics.diffusion)
    return marginal.duration * (per_sample.mean(0) * marginal.weights()).sum()


def fit_doob(
    marginal: GaussianPathMarginal,
    dynamics: OverdampedLangevin,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
    log_every: int = 0,
    max_time_s: float | None = None,
) -> dict[str, Any]:
    """Minimise :func:`doob_lagrangian` with Adam (cosine-decayed learning rate).

    Returns ``{"loss": [per step], "evaluations": energy gradients spent, "seconds"}``.
    ``max_time_s`` stops early (the history says how far it got).
    """
    check_int("steps", steps)
    generator = torch.Generator(device=marginal.start.device).manual_seed(seed)
    opt = torch.optim.Adam(marginal.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history: list[float] = []
    first = dynamics.evaluations
    t0 = time.perf_counter()
    for step in range(steps):
        loss = doob_lagrangian(marginal, dynamics, batch_size, generator=generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(marginal.parameters(), 10.0)
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1:>6}  loss {history[-1]:.4g}", flush=True)
        if max_time_s is not None and time.perf_counter() - t0 > max_time_s:
            break
    return {
        "loss": history,
        "evaluations": dynamics.evaluations - first,
        "seconds": time.perf_counter() - t0,
    }


@torch.no_grad()
def sample_paths(
    marginal: GaussianPathMarginal,
    n_paths: int,
    n_steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Paths of the controlled SDE :math:`dx = u_t(x)\,dt + \sqrt{2D}\,dW` from :math:`A`,
    by Euler–Maruyama with ``n_steps`` steps of :math:`T/n`; the last frame is :math:`B`
    (where the conditioned process ends). No energy is evaluated.

    Returns ``(n_steps + 1, n_paths, d)``.
    """
    check_int("n_paths", n_paths)
    check_int("n_steps", n_steps, minimum=2)
    dt = marginal.duration / n_steps
    x = marginal.start.expand(n_paths, marginal.dim).clone()
    frames = [x]
    noise_scale = math.sqrt(2 * marginal.diffusion * dt)
    for i in range(n_steps - 1):
        # the first step starts on the delta at A: take the drift a hair later
        t = torch.full((n_paths,), max(i, 1e-3) * dt, dtype=x.dtype, device=x.device)
        with torch.enable_grad():
            u = marginal.drift(x, t)
        noise = torch.randn(x.shape, dtype=x.dtype, device=x.device, generator=generator)
        x = x + u.detach() * dt + noise_scale * noise
        frames.append(x)
    frames.append(marginal.end.expand(n_paths, marginal.dim).clone())
    return torch.stack(frames)
