"""Equivariant neural ODE for particle dynamics: a learned acceleration field in continuous time.

The state is ``(x, v)`` with (batch, n, 3) positions and velocities and

.. math::

    \\frac{dx}{dt} = v, \\qquad \\frac{dv}{dt} = a_\\theta(x, v) = f_\\theta(x, v, c, a) - x

where ``f_θ`` is any position-predicting model with the dynamics-model interface of
:class:`equidyn.models.EGNN` (by default an EGNN stack without the velocity term).
Because ``f_θ`` is E(3)-equivariant in its positions, ``f_θ(x, v) − x`` is a translation-invariant,
rotation/reflection-equivariant vector: the field, and therefore the flow, is E(3) and
permutation equivariant. The ODE is solved with ``torchdiffeq.odeint`` over
``[0, t_span]`` and gradients flow through the solver steps.

With ``field_kind="acceleration"`` the field returns ``a_θ`` itself (e.g.
:class:`equidyn.dynamics.PairForceField`, a sum of learned central pair forces); by default
the kind is the field's :attr:`~equidyn.models.particles.ParticleModel.output`.

Default solver: fixed-step ``rk4`` (``step_size = t_span / 4``). Fourth order makes a few
steps accurate for a smooth learned field, the cost per batch is fixed and known (4 field
evaluations per step), and back-propagation through a fixed number of steps is cheap and
deterministic. Adaptive ``dopri5`` can be chosen (``method="dopri5"``, ``rtol``/``atol``), but
its number of steps grows as training sharpens the field around close encounters, so
training time is unpredictable. The symplectic fixed-step integrators of
:mod:`equidyn.dynamics.integrators` (``"semi_implicit_euler"``, ``"velocity_verlet"``) are
run by a plain loop instead of torchdiffeq; with ``compile=True`` every chunk of
``compile_chunk`` steps is one ``torch.compile``d graph, which removes most of the per-step
overhead when a small field is integrated for hundreds of steps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn._deprecation import renamed_arguments
from equidyn.dynamics.integrators import INTEGRATORS
from equidyn.models.egnn import EGNN
from equidyn.models.particles import (
    RENAMED_ARGUMENTS,
    ParticleInputs,
    ParticleModel,
    ParticleSystem,
    finite_inputs_checked,
)
from equidyn.models.registry import register_model

_TORCHDIFFEQ = ("rk4", "euler", "midpoint", "dopri5", "bosh3", "adaptive_heun")
_FIXED = ("rk4", "euler", "midpoint")
#: integrators run by our own loop (symplectic; RK4 stays with torchdiffeq)
_LOOP = ("semi_implicit_euler", "velocity_verlet")

__all__ = ["NeuralODE"]


class _Field(nn.Module):
    def __init__(self, net: nn.Module, kind: str) -> None:
        super().__init__()
        self.net = net
        self.kind = kind
        self.node_attr: torch.Tensor | None = None
        self.edge_attr: torch.Tensor | None = None
        self.n_evals = 0

    def forward(
        self, t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, v = state
        self.n_evals += 1
        return v, self.acceleration(x, v)

    def acceleration(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        assert self.node_attr is not None
        out = self.net(x, v, self.node_attr, self.edge_attr)  # [batch, n, 3]
        return out if self.kind == "acceleration" else out - x


@register_model(kind="particle")
class NeuralODE(ParticleModel):
    """``NeuralODE(pos, vel, node_attr, edge_attr) -> positions at t_span`` (equations above).

    ``field`` is the network ``f_θ``; if ``None``, ``EGNN(num_features, num_layers,
    node_attr_dim, edge_attr_dim, velocity=False)`` is built: its update
    ``Σ_j (x_i − x_j) φ_x(m_ij)`` is a sum of pair forces (small at initialisation, so
    training starts from ``x + v t``), and the speed ``|v_i|`` still enters through the node
    features. (The velocity variant adds ``φ_v(h_i) v_i``, a learned friction/anti-friction
    term that can blow up in the ODE.)
    :meth:`forward_state` returns the final ``(x, v)``; :meth:`trajectory` the states at
    several times. For the charged N-body task (frame 30 → 40) ``t_span = 1.0``
    (1000 steps of 0.001).

    >>> ode = NeuralODE(num_features=8, num_layers=1, edge_attr_dim=0, step_size=0.5)
    >>> x, v = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    >>> ode(x, v, torch.zeros(2, 4, 0)).shape
    torch.Size([2, 4, 3])
    """

    @renamed_arguments(**RENAMED_ARGUMENTS)
    def __init__(
        self,
        field: nn.Module | None = None,
        *,
        num_features: int = 64,
        num_layers: int = 2,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 1,
        field_kind: str | None = None,
        t_span: float = 1.0,
        method: str = "rk4",
        step_size: float | None = None,
        rtol: float = 1e-5,
        atol: float = 1e-6,
        compile: bool | str = False,
        compile_chunk: int = 10,
    ) -> None:
        super().__init__(node_attr_dim, edge_attr_dim)
        methods = sorted(_TORCHDIFFEQ + _LOOP)
        if method not in methods:
            raise ValueError(f"unsupported method {method!r}; expected one of {methods}")
        if field_kind is None:
            field_kind = field.output if isinstance(field, ParticleModel) else "position"
        if field_kind not in ("position", "acceleration"):
            raise ValueError(f"field_kind must be 'position' or 'acceleration', got {field_kind!r}")
        if t_span <= 0:
            raise ValueError(f"t_span must be positive, got {t_span}")
        if step_size is not None and not 0 < step_size <= t_span:
            raise ValueError(f"step_size must be in (0, t_span={t_span}], got {step_size}")
        if compile and method not in _LOOP:
            raise ValueError(
                f"compile=True needs one of the loop integrators {list(_LOOP)}, "
                f"got method {method!r}"
            )
        if compile_chunk < 1:
            raise ValueError(f"compile_chunk must be >= 1, got {compile_chunk}")
        if field is None:
            if field_kind != "position":
                raise ValueError("the default EGNN field predicts positions; pass a field")
            field = EGNN(num_features, num_layers, node_attr_dim, edge_attr_dim, velocity=False)
        self.field = _Field(field, field_kind)
        self.t_span, self.method = float(t_span), method
        self.step_size = t_span / 4 if step_size is None else float(step_size)
        self.rtol, self.atol = rtol, atol
        self.compile, self.compile_chunk = compile, int(compile_chunk)
        self._compiled: object | None = None

    def acceleration(
        self,
        pos: torch.Tensor,
        vel: torch.Tensor,
        node_attr: torch.Tensor,
        edge_attr: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The learned field ``a_θ(x, v)`` (batch, n, 3)."""
        pos, vel, node_attr, edge_attr = self.check_inputs(pos, vel, node_attr, edge_attr)
        out = self.field.net(pos, vel, node_attr, edge_attr)  # [batch, n, 3]
        return out if self.field.kind == "acceleration" else out - pos

    @property
    def predicts_velocity(self) -> bool:
        return True

    def inputs(self, system: ParticleSystem) -> tuple[Tensor, Tensor | None]:
        """The inputs of the field (:meth:`ParticleModel.inputs` if it is not a particle model)."""
        net = self.field.net
        return net.inputs(system) if isinstance(net, ParticleModel) else super().inputs(system)

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_compiled"] = None  # compiled graphs are rebuilt on first use
        return state

    def _steps(
        self, x: torch.Tensor, v: torch.Tensor, n_steps: int, dt: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        step = INTEGRATORS[self.method]
        for _ in range(n_steps):
            x, v = step(x, v, self.field.acceleration, dt)
        return x, v

    def _integrate_loop(
        self, x: torch.Tensor, v: torch.Tensor, times: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed steps of the loop integrator between consecutive ``times``."""
        run = self._steps
        if self.compile:
            if self._compiled is None:
                backend = self.compile if isinstance(self.compile, str) else "inductor"
                self._compiled = torch.compile(self._steps, backend=backend)
            run = self._compiled  # type: ignore[assignment]
        xs, vs = [x], [v]
        for k in range(1, len(times)):
            span = float(times[k] - times[k - 1])
            n_steps = max(1, round(span / self.step_size))
            dt = span / n_steps
            if self.compile:
                full, rest = divmod(n_steps, self.compile_chunk)
                for _ in range(full):
                    x, v = run(x, v, self.compile_chunk, dt)
                if rest:
                    x, v = self._steps(x, v, rest, dt)
            else:
                x, v = run(x, v, n_steps, dt)
            xs.append(x)
            vs.append(v)
        return torch.stack(xs), torch.stack(vs)

    def trajectory(
        self,
        pos: torch.Tensor,
        vel: torch.Tensor,
        node_attr: torch.Tensor,
        edge_attr: torch.Tensor | None,
        times: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """States at increasing ``times`` (from 0): two (len(times), batch, n, 3) tensors."""
        inputs = self.check_inputs(pos, vel, node_attr, edge_attr)
        if times.dim() != 1 or times.numel() < 2:
            raise ValueError(f"times must be 1-D with at least 2 entries, got {tuple(times.shape)}")
        if bool((times[1:] <= times[:-1]).any()):
            raise ValueError(f"times must be strictly increasing, got {times.tolist()}")
        return self._solve(inputs, times)

    def _solve(self, inputs: ParticleInputs, times: Tensor) -> tuple[Tensor, Tensor]:
        pos, vel, node_attr, edge_attr = inputs
        self.field.node_attr, self.field.edge_attr = node_attr, edge_attr
        try:
            # the inputs were checked above; the states of the steps are the solver's own
            with finite_inputs_checked():
                if self.method in _LOOP:
                    xs, vs = self._integrate_loop(pos, vel, times.to(pos))
                else:
                    from torchdiffeq import odeint

                    options = {"step_size": self.step_size} if self.method in _FIXED else None
                    xs, vs = odeint(
                        self.field,
                        (pos, vel),
                        times.to(pos),
                        method=self.method,
                        rtol=self.rtol,
                        atol=self.atol,
                        options=options,
                    )
        finally:
            self.field.node_attr = self.field.edge_attr = None
        return xs, vs  # [len(times), batch, n, 3] each

    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor]:
        """``(x, v)`` at ``t_span``, each (batch, n, 3)."""
        times = torch.tensor([0.0, self.t_span], dtype=inputs.pos.dtype, device=inputs.pos.device)
        xs, vs = self._solve(inputs, times)
        return xs[-1], vs[-1]
