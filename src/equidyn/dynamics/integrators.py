"""Time integrators for second-order systems ``dx/dt = v``, ``dv/dt = a(x, v)``.

Every integrator here is a pure function ``step(x, v, accel, dt) -> (x', v')`` that advances
the state by one step of size ``dt``; ``accel(x, v)`` returns the acceleration. Shapes are
free (anything that broadcasts, typically ``(batch, n, 3)``); all arithmetic is in the dtype
of ``x``. :func:`integrate` repeats a step and keeps every ``save_every``-th state.

=====================  =====  ==========================================================
integrator             order  update
=====================  =====  ==========================================================
semi-implicit Euler    1      ``v += a(x, v) dt``; ``x += v dt`` (symplectic Euler)
velocity Verlet        2      ``v½ = v + a dt/2``; ``x += v½ dt``; ``v = v½ + a(x') dt/2``
RK4                    4      classical Runge–Kutta on the state ``(x, v)``
=====================  =====  ==========================================================

Velocity Verlet assumes the acceleration does not depend on ``v`` (it evaluates
``a(x', v½)`` at the half-step velocity otherwise).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Accel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Step = Callable[[torch.Tensor, torch.Tensor, Accel, float], tuple[torch.Tensor, torch.Tensor]]

__all__ = [
    "INTEGRATORS",
    "integrate",
    "rk4_step",
    "semi_implicit_euler_step",
    "velocity_verlet_step",
]


def semi_implicit_euler_step(
    x: torch.Tensor, v: torch.Tensor, accel: Accel, dt: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One semi-implicit (symplectic) Euler step: ``v' = v + a(x, v) dt``, ``x' = x + v' dt``.

    First order; the integrator of the charged N-body protocol.

    >>> x, v = torch.zeros(1), torch.ones(1)
    >>> semi_implicit_euler_step(x, v, lambda x, v: -x, 0.1)
    (tensor([0.1000]), tensor([1.]))
    """
    v_new = v + accel(x, v) * dt
    return x + v_new * dt, v_new


def velocity_verlet_step(
    x: torch.Tensor, v: torch.Tensor, accel: Accel, dt: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One velocity Verlet step (second order, symplectic for ``a = a(x)``).

    ``v½ = v + a(x) dt/2``, ``x' = x + v½ dt``, ``v' = v½ + a(x') dt/2``.

    >>> x, v = torch.zeros(1), torch.ones(1)
    >>> velocity_verlet_step(x, v, lambda x, v: -x, 0.1)
    (tensor([0.1000]), tensor([0.9950]))
    """
    v_half = v + accel(x, v) * (0.5 * dt)
    x_new = x + v_half * dt
    return x_new, v_half + accel(x_new, v_half) * (0.5 * dt)


def rk4_step(
    x: torch.Tensor, v: torch.Tensor, accel: Accel, dt: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One classical fourth-order Runge–Kutta step of ``d(x, v)/dt = (v, a(x, v))``.

    >>> x, v = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    >>> x1, v1 = rk4_step(x, v, lambda x, v: -x, 0.1)  # exact: (0.09983342, 0.99500417)
    >>> round(x1.item(), 8), round(v1.item(), 8)
    (0.09983333, 0.99500417)
    """
    k1x, k1v = v, accel(x, v)
    k2x, k2v = v + 0.5 * dt * k1v, accel(x + 0.5 * dt * k1x, v + 0.5 * dt * k1v)
    k3x, k3v = v + 0.5 * dt * k2v, accel(x + 0.5 * dt * k2x, v + 0.5 * dt * k2v)
    k4x, k4v = v + dt * k3v, accel(x + dt * k3x, v + dt * k3v)
    x_new = x + (dt / 6.0) * (k1x + 2 * k2x + 2 * k3x + k4x)
    v_new = v + (dt / 6.0) * (k1v + 2 * k2v + 2 * k3v + k4v)
    return x_new, v_new


INTEGRATORS: dict[str, Step] = {
    "semi_implicit_euler": semi_implicit_euler_step,
    "velocity_verlet": velocity_verlet_step,
    "rk4": rk4_step,
}


def integrate(
    x: torch.Tensor,
    v: torch.Tensor,
    accel: Accel,
    dt: float,
    n_steps: int,
    *,
    save_every: int = 1,
    integrator: str | Step = "semi_implicit_euler",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advance ``(x, v)`` by ``n_steps`` steps and keep the state after every ``save_every`` steps.

    Returns ``(xs, vs)`` of shape ``(n_saved, *x.shape)`` holding the states after steps
    ``save_every, 2 save_every, ...`` that are ``<= n_steps`` (the initial state is not kept).

    >>> xs, vs = integrate(torch.zeros(2), torch.ones(2), lambda x, v: 0 * x, 0.5, 4, save_every=2)
    >>> xs
    tensor([[1., 1.],
            [2., 2.]])
    """
    if isinstance(integrator, str):
        if integrator not in INTEGRATORS:
            raise ValueError(
                f"unknown integrator {integrator!r}; expected one of {sorted(INTEGRATORS)}"
            )
        step = INTEGRATORS[integrator]
    else:
        step = integrator
    if n_steps < 0 or save_every < 1:
        raise ValueError(
            f"need n_steps >= 0 and save_every >= 1, got n_steps={n_steps}, save_every={save_every}"
        )
    if x.shape != v.shape:
        raise ValueError(
            f"x and v must have the same shape, got {tuple(x.shape)} and {tuple(v.shape)}"
        )
    xs, vs = [], []
    for i in range(1, n_steps + 1):
        x, v = step(x, v, accel, dt)
        if i % save_every == 0:
            xs.append(x)
            vs.append(v)
    if not xs:
        empty = x.new_zeros((0, *x.shape))
        return empty, empty.clone()
    return torch.stack(xs), torch.stack(vs)  # [n_saved, *x.shape]
