"""Physical systems that make dynamics data: charged N-body, gravitational N-body, mass-spring.

Each system is a small object holding its per-trajectory parameters (charges, masses,
spring constants, all with a leading batch dimension) and exposing

* ``acceleration(x, v)`` — ``(batch, n, 3)``, the right-hand side for the integrators of
  :mod:`equidyn.dynamics.integrators`;
* ``potential_energy(x)`` and ``energy(x, v)`` — ``(batch,)``;

and the free functions :func:`kinetic_energy`, :func:`linear_momentum` and
:func:`angular_momentum` measure conserved quantities. All pair sums run over the fully
connected graph of the ``n`` particles, vectorised over the batch of trajectories.

:func:`simulate_charged_nbody` reproduces the charged N-body protocol of EGNN (Satorras et
al. 2021; docs/protocols.md §3) exactly: 5 particles with charges ±1, positions ~ N(0, 1),
velocities of random direction and speed 0.5, forces
``F_i = Σ_j q_i q_j (x_i − x_j) / |x_i − x_j|³`` with every component clamped to ±100,
semi-implicit Euler with ``dt = 0.001``, a frame kept every 100 steps (frame ``k`` is the
state after step ``100 (k + 1)``).
"""

from __future__ import annotations

import math

import torch

from equidyn.dynamics.integrators import integrate

__all__ = [
    "ChargedNBody",
    "GravityNBody",
    "MassSpring",
    "angular_momentum",
    "kinetic_energy",
    "linear_momentum",
    "sample_gravity",
    "sample_mass_spring",
    "simulate",
    "egnn_reference_initial_states",
    "simulate_charged_nbody",
]


def _check_positions(x: torch.Tensor, n: int, name: str = "x") -> None:
    if x.dim() != 3 or x.shape[-1] != 3 or x.shape[1] != n:
        raise ValueError(f"{name} must have shape (batch, {n}, 3), got {tuple(x.shape)}")


def _pair_vectors(x: torch.Tensor, eps2: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``x_i − x_j`` of shape (batch, n, n, 3) and ``|x_i − x_j|² + eps2`` with +inf on i == j."""
    diff = x[:, :, None, :] - x[:, None, :, :]  # [batch, n, n, 3]
    r2 = (diff * diff).sum(-1) + eps2  # [batch, n, n]
    eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
    return diff, r2.masked_fill(eye, math.inf)


def _masses(masses: torch.Tensor | None, v: torch.Tensor) -> torch.Tensor:
    return torch.ones(v.shape[:-1], dtype=v.dtype, device=v.device) if masses is None else masses


def kinetic_energy(v: torch.Tensor, masses: torch.Tensor | None = None) -> torch.Tensor:
    """``T = ½ Σ_i m_i |v_i|²`` per trajectory; ``v``: (batch, n, 3), masses (batch, n) or 1.

    >>> kinetic_energy(torch.ones(1, 2, 3))
    tensor([3.])
    """
    return 0.5 * (_masses(masses, v) * (v * v).sum(-1)).sum(-1)  # [batch]


def linear_momentum(v: torch.Tensor, masses: torch.Tensor | None = None) -> torch.Tensor:
    """``P = Σ_i m_i v_i``, shape (batch, 3).

    >>> linear_momentum(torch.ones(1, 2, 3))
    tensor([[2., 2., 2.]])
    """
    return (_masses(masses, v)[..., None] * v).sum(-2)  # [batch, 3]


def angular_momentum(
    x: torch.Tensor, v: torch.Tensor, masses: torch.Tensor | None = None
) -> torch.Tensor:
    """``L = Σ_i m_i x_i × v_i``, shape (batch, 3).

    >>> angular_momentum(torch.tensor([[[1., 0, 0]]]), torch.tensor([[[0., 1, 0]]]))
    tensor([[0., 0., 1.]])
    """
    return (_masses(masses, v)[..., None] * torch.linalg.cross(x, v, dim=-1)).sum(-2)


class ChargedNBody:
    """Point charges of unit mass: ``a_i = k Σ_{j≠i} q_i q_j (x_i − x_j) / |x_i − x_j|³``.

    Like charges repel. ``clamp`` (the protocol uses 100) clips every component of the
    force to ``[−clamp, clamp]``; ``None`` turns the clip off, and only then is the energy
    ``E = ½ Σ |v_i|² + k Σ_{i<j} q_i q_j / |x_i − x_j|`` exactly conserved by the flow.

    >>> sys = ChargedNBody(torch.tensor([[1.0, 1.0]]))
    >>> sys.acceleration(torch.tensor([[[0.0, 0, 0], [2.0, 0, 0]]]), None)
    tensor([[[-0.2500,  0.0000,  0.0000],
             [ 0.2500,  0.0000,  0.0000]]])
    """

    def __init__(
        self, charges: torch.Tensor, strength: float = 1.0, clamp: float | None = None
    ) -> None:
        if charges.dim() != 2:
            raise ValueError(f"charges must have shape (batch, n), got {tuple(charges.shape)}")
        if clamp is not None and clamp <= 0:
            raise ValueError(f"clamp must be positive or None, got {clamp}")
        self.charges = charges  # [batch, n]
        self.strength = float(strength)
        self.clamp = clamp

    def acceleration(self, x: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        _check_positions(x, self.charges.shape[1])
        diff, r2 = _pair_vectors(x)
        qq = self.charges[:, :, None] * self.charges[:, None, :]  # [batch, n, n]
        coef = self.strength * qq * r2.pow(-1.5)
        force = (coef[..., None] * diff).sum(2)  # [batch, n, 3]
        if self.clamp is not None:
            force = force.clamp(-self.clamp, self.clamp)
        return force

    def potential_energy(self, x: torch.Tensor) -> torch.Tensor:
        _, r2 = _pair_vectors(x)
        qq = self.charges[:, :, None] * self.charges[:, None, :]
        return 0.5 * self.strength * (qq * r2.rsqrt()).sum((1, 2))  # [batch]

    def energy(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return kinetic_energy(v) + self.potential_energy(x)


class GravityNBody:
    """Softened Newtonian gravity: ``a_i = −G Σ_{j≠i} m_j (x_i − x_j) / (|x_i − x_j|² + ε²)^{3/2}``.

    Energy ``E = ½ Σ m_i |v_i|² − G Σ_{i<j} m_i m_j / (|x_i − x_j|² + ε²)^{1/2}``.

    >>> sys = GravityNBody(torch.tensor([[1.0, 1.0]]))
    >>> sys.acceleration(torch.tensor([[[0.0, 0, 0], [2.0, 0, 0]]]), None)[0, 0]
    tensor([0.2500, 0.0000, 0.0000])
    """

    def __init__(self, masses: torch.Tensor, G: float = 1.0, softening: float = 0.0) -> None:
        if masses.dim() != 2:
            raise ValueError(f"masses must have shape (batch, n), got {tuple(masses.shape)}")
        self.masses = masses  # [batch, n]
        self.G = float(G)
        self.softening = float(softening)

    def acceleration(self, x: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        _check_positions(x, self.masses.shape[1])
        diff, r2 = _pair_vectors(x, self.softening**2)
        coef = -self.G * self.masses[:, None, :] * r2.pow(-1.5)  # [batch, n, n]
        return (coef[..., None] * diff).sum(2)  # [batch, n, 3]

    def potential_energy(self, x: torch.Tensor) -> torch.Tensor:
        _, r2 = _pair_vectors(x, self.softening**2)
        mm = self.masses[:, :, None] * self.masses[:, None, :]
        return -0.5 * self.G * (mm * r2.rsqrt()).sum((1, 2))

    def energy(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return kinetic_energy(v, self.masses) + self.potential_energy(x)


class MassSpring:
    """Masses joined by Hooke springs: ``m_i a_i = −Σ_j k_ij (r_ij − L_ij) (x_i − x_j) / r_ij``.

    ``stiffness`` ``k`` and ``rest_length`` ``L`` are symmetric (batch, n, n) tensors (a zero
    ``k_ij`` means no spring); ``L = 0`` gives the linear force ``−k_ij (x_i − x_j)``.
    Energy ``E = ½ Σ m_i |v_i|² + ½ Σ_{i<j} k_ij (r_ij − L_ij)²``.

    >>> k = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    >>> sys = MassSpring(k, torch.zeros_like(k))
    >>> sys.acceleration(torch.tensor([[[0.0, 0, 0], [2.0, 0, 0]]]), None)[0, 0]
    tensor([2., 0., 0.])
    """

    def __init__(
        self,
        stiffness: torch.Tensor,
        rest_length: torch.Tensor,
        masses: torch.Tensor | None = None,
    ) -> None:
        if stiffness.dim() != 3 or stiffness.shape[1] != stiffness.shape[2]:
            raise ValueError(
                f"stiffness must have shape (batch, n, n), got {tuple(stiffness.shape)}"
            )
        if rest_length.shape != stiffness.shape:
            raise ValueError(
                f"rest_length must have the shape of stiffness {tuple(stiffness.shape)}, "
                f"got {tuple(rest_length.shape)}"
            )
        self.stiffness = stiffness  # [batch, n, n]
        self.rest_length = rest_length  # [batch, n, n]
        self.masses = masses if masses is not None else torch.ones_like(stiffness[:, 0])

    def _stretch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _check_positions(x, self.stiffness.shape[1])
        diff = x[:, :, None, :] - x[:, None, :, :]  # [batch, n, n, 3]
        eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
        # a unit placeholder on the diagonal keeps sqrt (and its gradient) finite there
        r = (diff * diff).sum(-1).masked_fill(eye, 1.0).sqrt().masked_fill(eye, 0.0)
        return diff, r, r - self.rest_length

    def acceleration(self, x: torch.Tensor, v: torch.Tensor | None) -> torch.Tensor:
        diff, r, stretch = self._stretch(x)
        # (r − L) / r, written 1 − L / r so that L = 0 needs no division by r = 0
        ratio = 1 - torch.where(
            self.rest_length == 0, torch.zeros_like(r), self.rest_length / r.clamp_min(1e-300)
        )
        coef = -self.stiffness * ratio  # [batch, n, n]
        return (coef[..., None] * diff).sum(2) / self.masses[..., None]

    def potential_energy(self, x: torch.Tensor) -> torch.Tensor:
        _, _, stretch = self._stretch(x)
        return 0.25 * (self.stiffness * stretch**2).sum((1, 2))

    def energy(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return kinetic_energy(v, self.masses) + self.potential_energy(x)


def simulate(
    system: ChargedNBody | GravityNBody | MassSpring,
    x0: torch.Tensor,
    v0: torch.Tensor,
    *,
    dt: float,
    n_steps: int,
    save_every: int = 1,
    integrator: str = "semi_implicit_euler",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrate ``system`` from ``(x0, v0)``; ``(pos, vel)`` of shape (batch, frames, n, 3).

    Frame ``k`` is the state after step ``save_every (k + 1)``; steps ``1 .. n_steps``.

    >>> sys = GravityNBody(torch.ones(1, 2, dtype=torch.float64))
    >>> x0 = torch.tensor([[[-1.0, 0, 0], [1.0, 0, 0]]], dtype=torch.float64)
    >>> v0 = torch.tensor([[[0, -0.35, 0], [0, 0.35, 0]]], dtype=torch.float64)
    >>> pos, vel = simulate(sys, x0, v0, dt=0.01, n_steps=100, save_every=10, integrator="rk4")
    >>> pos.shape
    torch.Size([1, 10, 2, 3])
    """
    xs, vs = integrate(
        x0, v0, system.acceleration, dt, n_steps, save_every=save_every, integrator=integrator
    )
    return xs.transpose(0, 1), vs.transpose(0, 1)  # [batch, frames, n, 3]


def simulate_charged_nbody(
    n_trajectories: int,
    *,
    n_particles: int = 5,
    n_steps: int = 5000,
    save_every: int = 100,
    dt: float = 0.001,
    clamp: float | None = 100.0,
    loc_std: float = 1.0,
    speed: float = 0.5,
    strength: float = 1.0,
    seed: int = 0,
    initial: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Charged N-body trajectories by the EGNN protocol (defaults = the protocol), float64.

    As in the reference generator the steps run ``1 .. n_steps − 1`` and a frame is kept
    whenever the step is a multiple of ``save_every``: 49 frames for the defaults, frame ``k``
    after step ``100 (k + 1)``. Random draws come from a ``torch.Generator`` seeded with
    ``seed``, in this order: charges, positions, velocity directions; or ``initial`` gives
    ``(charges (T, n), positions (T, n, 3), velocities (T, n, 3))`` (then ``seed``,
    ``loc_std`` and ``speed`` are unused), e.g. :func:`egnn_reference_initial_states`.

    Returns ``{"pos": (T, F, n, 3), "vel": (T, F, n, 3), "charges": (T, n), "pos0", "vel0"}``
    where ``pos0``/``vel0`` (T, n, 3) are the initial state (before the first step).

    >>> d = simulate_charged_nbody(2, n_steps=301, seed=1)
    >>> d["pos"].shape, d["charges"].abs().unique().tolist()
    (torch.Size([2, 3, 5, 3]), [1.0])
    """
    if n_trajectories < 1 or n_particles < 2:
        raise ValueError(
            f"need n_trajectories >= 1 and n_particles >= 2, got {n_trajectories}, {n_particles}"
        )
    if initial is not None:
        charges, x0, v0 = (t.to(torch.float64) for t in initial)
        if (
            charges.shape != (n_trajectories, n_particles)
            or x0.shape != v0.shape
            or x0.shape
            != (
                n_trajectories,
                n_particles,
                3,
            )
        ):
            raise ValueError(
                f"initial must be charges ({n_trajectories}, {n_particles}) and positions, "
                f"velocities ({n_trajectories}, {n_particles}, 3), got "
                f"{[tuple(t.shape) for t in initial]}"
            )
    else:
        g = torch.Generator().manual_seed(int(seed))
        f64 = torch.float64
        charges = torch.randint(0, 2, (n_trajectories, n_particles), generator=g).to(f64) * 2 - 1
        x0 = torch.randn(n_trajectories, n_particles, 3, generator=g, dtype=f64) * loc_std
        direction = torch.randn(n_trajectories, n_particles, 3, generator=g, dtype=f64)
        v0 = direction * (speed / direction.norm(dim=-1, keepdim=True))
    # one thread: the ops are small element-wise ones, where extra threads only add
    # synchronisation (on a busy 2-core machine two threads are 20x slower)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pos, vel = _charged_semi_implicit_euler(
            x0,
            v0,
            charges,
            strength=strength,
            clamp=clamp,
            dt=dt,
            n_steps=n_steps - 1,
            save_every=save_every,
        )
    finally:
        torch.set_num_threads(threads)
    return {"pos": pos, "vel": vel, "charges": charges, "pos0": x0, "vel0": v0}


def egnn_reference_initial_states(
    seed: int = 43, n_train: int = 10000, n_valid: int = 2000, n_test: int = 2000
) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The initial states of the EGNN repository's own ``nbody_small`` data set (float64).

    Its generator seeds NumPy's global legacy generator once (``seed`` 43 for
    ``nbody_small``) and then makes, for each of ``n_train``, ``n_valid`` and ``n_test``
    trajectories in turn, the same draws: the charges (``choice`` of −1, 0, 1 with
    probabilities ½, 0, ½), positions ``randn(3, n)``, velocity directions ``randn(3, n)``
    (scaled to speed 0.5; a start outside the box ±5 is reflected into it, as there) and two
    ``randn(49, 3, n)`` observation-noise arrays that are
    multiplied by a zero noise variance. Replaying those draws with
    ``numpy.random.RandomState(seed)`` gives the same initial states; the trajectories then
    follow from :func:`simulate_charged_nbody` with ``initial=``. The EGNN training set is
    the first 3000 of the ``n_train`` trajectories.

    Returns ``{"train" | "valid" | "test": (charges (T, 5), positions (T, 5, 3),
    velocities (T, 5, 3))}``; a count of 0 gives an empty split. Counts and ``seed`` must be
    ints >= 0 (``ValueError`` otherwise).

    >>> s = egnn_reference_initial_states(n_train=2, n_valid=1, n_test=1)
    >>> [tuple(t.shape) for t in s["train"]], s["test"][0].abs().unique().tolist()
    ([(2, 5), (2, 5, 3), (2, 5, 3)], [1.0])
    """
    import numpy as np

    for name, value in (("seed", seed), ("n_train", n_train), ("n_valid", n_valid),
                        ("n_test", n_test)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    rs = np.random.RandomState(seed)
    n, frames = 5, 49
    out = {}
    for split, count in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        q, x, v = [], [], []
        for _ in range(count):
            q.append(rs.choice(np.array([-1.0, 0.0, 1.0]), size=(n, 1), p=[0.5, 0.0, 0.5]))
            pos = rs.randn(3, n)
            d = rs.randn(3, n)
            vel = d * 0.5 / np.sqrt((d**2).sum(axis=0)).reshape(1, -1)
            # the generator reflects a start outside its box of ±5 once (5-sigma, rare)
            over, under = pos > 5.0, pos < -5.0
            pos[over], vel[over] = 10.0 - pos[over], -np.abs(vel[over])
            pos[under], vel[under] = -10.0 - pos[under], np.abs(vel[under])
            x.append(pos.T)
            v.append(vel.T)
            rs.randn(frames, 3, n)  # the zero-variance noise on positions
            rs.randn(frames, 3, n)  # ... and on velocities
        if count == 0:  # an empty split (the next split's draws follow at once)
            out[split] = (torch.zeros(0, n, dtype=torch.float64),
                          torch.zeros(0, n, 3, dtype=torch.float64),
                          torch.zeros(0, n, 3, dtype=torch.float64))  # fmt: skip
            continue
        out[split] = (
            torch.tensor(np.stack(q)[..., 0]),  # [T, n]
            torch.tensor(np.stack(x)),  # [T, n, 3]
            torch.tensor(np.stack(v)),
        )
    return out


def _charged_semi_implicit_euler(
    x0: torch.Tensor,
    v0: torch.Tensor,
    charges: torch.Tensor,
    *,
    strength: float,
    clamp: float | None,
    dt: float,
    n_steps: int,
    save_every: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fast path of ``simulate(ChargedNBody(...), ..., integrator="semi_implicit_euler")``.

    Same arithmetic, but the state is kept as (n, 3, batch) so that the batch is the
    contiguous axis, and only the ``n (n − 1) / 2`` unordered pairs are computed.
    """
    batch, n = charges.shape
    i, j = torch.triu_indices(n, n, 1)
    n_pairs = i.numel()
    incidence = torch.zeros(n, n_pairs, dtype=x0.dtype)  # +1 at i, −1 at j
    incidence[i, torch.arange(n_pairs)] = 1.0
    incidence[j, torch.arange(n_pairs)] = -1.0
    qq = strength * (charges[:, i] * charges[:, j]).T.contiguous()  # [pairs, batch]
    x = x0.permute(1, 2, 0).contiguous()  # [n, 3, batch]
    v = v0.permute(1, 2, 0).contiguous()
    xs, vs = [], []
    for step in range(1, n_steps + 1):
        d = x[i] - x[j]  # [pairs, 3, batch]
        r2 = (d * d).sum(1)
        f = (qq / (r2 * r2.sqrt()))[:, None, :] * d
        force = (incidence @ f.reshape(n_pairs, -1)).reshape(n, 3, batch)
        if clamp is not None:
            force.clamp_(-clamp, clamp)
        v = v + force * dt
        x = x + v * dt
        if step % save_every == 0:
            xs.append(x.permute(2, 0, 1))
            vs.append(v.permute(2, 0, 1))
    return torch.stack(xs, 1).contiguous(), torch.stack(vs, 1).contiguous()  # [batch, F, n, 3]


def sample_gravity(
    n_trajectories: int, n_particles: int = 5, *, seed: int = 0, softening: float = 0.1
) -> tuple[GravityNBody, torch.Tensor, torch.Tensor]:
    """Random gravitational systems: masses ~ U(0.5, 1.5), positions ~ N(0, 1), velocities
    ~ N(0, 0.3²) with the centre-of-mass velocity removed. Returns ``(system, x0, v0)``, float64.

    >>> sys, x0, v0 = sample_gravity(3, 4, seed=0)
    >>> linear_momentum(v0, sys.masses).abs().max() < 1e-12
    tensor(True)
    """
    g = torch.Generator().manual_seed(int(seed))
    f64 = torch.float64
    m = 0.5 + torch.rand(n_trajectories, n_particles, generator=g, dtype=f64)
    x0 = torch.randn(n_trajectories, n_particles, 3, generator=g, dtype=f64)
    v0 = 0.3 * torch.randn(n_trajectories, n_particles, 3, generator=g, dtype=f64)
    v0 = v0 - linear_momentum(v0, m)[:, None, :] / m.sum(-1)[:, None, None]
    return GravityNBody(m, softening=softening), x0, v0


def sample_mass_spring(
    n_trajectories: int, n_particles: int = 5, *, seed: int = 0, p_spring: float = 0.5
) -> tuple[MassSpring, torch.Tensor, torch.Tensor]:
    """Random spring networks: each pair joined with probability ``p_spring`` by a spring of
    stiffness ~ U(0.5, 1.5) and rest length ~ U(0.5, 1.5); unit masses; positions ~ N(0, 1),
    velocities ~ N(0, 0.3²). Returns ``(system, x0, v0)``, float64.

    >>> sys, x0, v0 = sample_mass_spring(2, 3, seed=0)
    >>> bool((sys.stiffness == sys.stiffness.transpose(1, 2)).all())
    True
    """
    g = torch.Generator().manual_seed(int(seed))
    f64 = torch.float64
    shape = (n_trajectories, n_particles, n_particles)
    upper = torch.ones(n_particles, n_particles, dtype=torch.bool).triu(1)
    edge = (torch.rand(shape, generator=g, dtype=f64) < p_spring) & upper
    k = torch.where(edge, 0.5 + torch.rand(shape, generator=g, dtype=f64), 0.0)
    rest = torch.where(edge, 0.5 + torch.rand(shape, generator=g, dtype=f64), 0.0)
    k, rest = k + k.transpose(1, 2), rest + rest.transpose(1, 2)
    x0 = torch.randn(n_trajectories, n_particles, 3, generator=g, dtype=f64)
    v0 = 0.3 * torch.randn(n_trajectories, n_particles, 3, generator=g, dtype=f64)
    return MassSpring(k, rest), x0, v0
