r"""How good are transition paths: the highest energy they climb and how likely they are.

For paths :math:`x^{(p)}_{0:N}` under dynamics with energy :math:`U`:

- **maximum energy** :math:`\max_i U(x^{(p)}_i) - U(x^{(p)}_0)`, the barrier a path crosses
  relative to its start (the minimum over paths, "MinMax", is the lowest barrier found; a
  good sampler finds paths through the saddle, not over the hills);
- **log-likelihood** of each path under the reference dynamics,
  :meth:`OverdampedLangevin.path_log_likelihood`, per step.

>>> import torch
>>> from equidyn.paths import MullerBrown, OverdampedLangevin
>>> dyn = OverdampedLangevin(MullerBrown(), kT=10.0)
>>> a, b = dyn.potential.minimum_a, dyn.potential.minimum_b
>>> line = torch.stack([a + (b - a) * s for s in torch.linspace(0, 1, 101)])[:, None]
>>> stats = path_statistics(dyn, line, dt=1e-4)
>>> round(stats["min_max_energy"], 1)     # the straight line climbs over the ridge
159.4
"""

from __future__ import annotations

import torch

from equidyn.paths.langevin import OverdampedLangevin

__all__ = ["path_statistics"]


@torch.no_grad()
def path_statistics(
    dynamics: OverdampedLangevin, paths: torch.Tensor, dt: float
) -> dict[str, float]:
    """Summary of ``paths`` ``(N + 1, n_paths, d)`` (see the module): ``min_max_energy``,
    ``median_max_energy``, ``mean_log_likelihood`` (per path and step) and ``n_paths``.

    These evaluations are not counted in ``dynamics.evaluations`` (they measure, they do
    not sample)."""
    if paths.dim() != 3 or paths.shape[0] < 2:
        raise ValueError(f"paths must be (frames >= 2, n_paths, d), got {tuple(paths.shape)}")
    before = dynamics.evaluations
    energy = dynamics.energy(paths)  # (N + 1, n_paths)
    barrier = (energy.max(0).values - energy[0]).to(torch.float64)
    with torch.enable_grad():
        logp = dynamics.path_log_likelihood(paths, dt).to(torch.float64)
    dynamics.evaluations = before
    n_steps = paths.shape[0] - 1
    return {
        "min_max_energy": float(barrier.min()),
        "median_max_energy": float(barrier.median()),
        "mean_log_likelihood": float(logp.mean()) / n_steps,
        "n_paths": int(paths.shape[1]),
    }
