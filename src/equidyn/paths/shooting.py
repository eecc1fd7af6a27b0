r"""Two-way shooting, the classic Monte Carlo in path space (Dellago, Bolhuis & Chandler).

A path of :math:`N + 1` frames connecting the basins :math:`A` and :math:`B` is updated by
picking a frame :math:`j` uniformly among its :math:`n_\text{old}` frames outside both
basins (where a shot can change the outcome), integrating the dynamics from it forward for
:math:`N - j` steps and, with fresh noise, "backward" for :math:`j` steps (for overdamped
Langevin dynamics in equilibrium the time-reversed path has the same law as a forward one),
and accepting the joined path with probability
:math:`\mathbb{1}[x_0 \in A,\ x_N \in B]\,\min(1, n_\text{old}/n_\text{new})`, which keeps
the transition path ensemble exact for this choice of frames. Every step costs one energy
gradient, counted by the dynamics.

>>> import torch
>>> from equidyn.paths import MullerBrown, OverdampedLangevin
>>> dyn = OverdampedLangevin(MullerBrown(), kT=10.0)
>>> a, b = dyn.potential.minimum_a, dyn.potential.minimum_b
>>> line = torch.stack([a + (b - a) * s for s in torch.linspace(0, 1, 201)])  # (201, 2)
>>> out = two_way_shooting(dyn, line, n_shots=5, dt=1e-4, basin_radius=0.15, seed=0)
>>> sorted(out)
['accepted', 'evaluations', 'evaluations_at_accept', 'paths']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from equidyn.paths._checks import check_int
from equidyn.paths.langevin import OverdampedLangevin

__all__ = ["two_way_shooting"]


def two_way_shooting(
    dynamics: OverdampedLangevin,
    initial_path: torch.Tensor,
    n_shots: int,
    dt: float,
    basin_radius: float,
    start: torch.Tensor | None = None,
    end: torch.Tensor | None = None,
    seed: int = 0,
    collective_variable: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Run ``n_shots`` two-way shooting moves from ``initial_path`` ``(N + 1, d)``.

    The basins are the balls of radius ``basin_radius`` around ``start`` and ``end`` (default:
    the initial path's first and last frames). The initial path need not be a trajectory
    (a straight line will do): the first accepted shot replaces it by one.

    ``collective_variable`` maps ``(..., d)`` configurations to ``(..., c)`` coordinates in
    which the basins are balls instead (a molecule's dihedrals, say, where Cartesian balls
    would depend on the molecule's orientation); ``start`` and ``end`` are then given in
    those coordinates (default: those of the initial path's ends).

    Returns ``{"paths": (n_accepted + 1, N + 1, d)`` (the initial path first), ``"accepted"``
    (one bool per shot), ``"evaluations"`` (energy gradients in all) and
    ``"evaluations_at_accept"`` (the running count at each accepted shot)``}``.
    """
    if initial_path.dim() != 2 or initial_path.shape[0] < 3:
        raise ValueError(
            f"initial_path must be (frames >= 3, d), got shape {tuple(initial_path.shape)}"
        )
    check_int("n_shots", n_shots)
    if not basin_radius > 0:
        raise ValueError(f"basin_radius must be > 0, got {basin_radius!r}")
    cv = collective_variable if collective_variable is not None else (lambda p: p)
    with torch.no_grad():
        ends = cv(initial_path[[0, -1]].detach())
    a = ends[0] if start is None else start.to(ends)
    b = ends[1] if end is None else end.to(ends)
    generator = torch.Generator(device=initial_path.device).manual_seed(seed)
    n = initial_path.shape[0] - 1
    path = initial_path.detach().clone()
    paths, accepted, at_accept = [path], [], []
    first = dynamics.evaluations

    def outside(p: torch.Tensor) -> torch.Tensor:  # indices of frames in neither basin
        with torch.no_grad():
            c = cv(p)
        far = ((c - a).norm(dim=-1) >= basin_radius) & ((c - b).norm(dim=-1) >= basin_radius)
        far[0] = far[-1] = False
        return far.nonzero().flatten()

    frames = outside(path)
    for _ in range(n_shots):
        if len(frames) == 0:  # a path that jumps from A to B in one step: shoot anywhere
            frames = torch.arange(1, n)
        j = int(frames[torch.randint(len(frames), (1,), generator=generator)])
        forward = dynamics.simulate(path[j], n - j, dt, generator)  # (n - j + 1, d)
        backward = dynamics.simulate(path[j], j, dt, generator)  # (j + 1, d)
        new = torch.cat([backward.flip(0), forward[1:]])
        with torch.no_grad():
            c_ends = cv(new[[0, -1]])
        reactive = bool((c_ends[0] - a).norm() < basin_radius) and bool(
            (c_ends[1] - b).norm() < basin_radius
        )
        ok = False
        if reactive:
            new_frames = outside(new)
            ratio = len(frames) / max(len(new_frames), 1)
            draw = float(torch.rand((), generator=generator, dtype=torch.float64))
            ok = ratio >= 1 or draw < ratio
        accepted.append(ok)
        if ok:
            path, frames = new, new_frames
            paths.append(path)
            at_accept.append(dynamics.evaluations - first)
    return {
        "paths": torch.stack(paths),
        "accepted": accepted,
        "evaluations": dynamics.evaluations - first,
        "evaluations_at_accept": at_accept,
    }
