"""Dynamics: N-body simulators, integrators, cached data sets and equivariant neural ODEs.

>>> from equidyn.dynamics import simulate_charged_nbody
>>> data = simulate_charged_nbody(4, n_steps=300, save_every=100, seed=0)
>>> tuple(data["pos"].shape)  # (trajectories, frames at steps 100 and 200, particles, 3)
(4, 2, 5, 3)
"""

from equidyn.dynamics.data import (
    ChargedNBodyDataset,
    charged_nbody_trajectories,
    load_charged_nbody,
)
from equidyn.dynamics.force_fields import PairForceField
from equidyn.dynamics.integrators import (
    integrate,
    rk4_step,
    semi_implicit_euler_step,
    velocity_verlet_step,
)
from equidyn.dynamics.neural_ode import NeuralODE
from equidyn.dynamics.planetary import PlanetaryNBodyDataset, sample_planetary_systems
from equidyn.dynamics.systems import (
    ChargedNBody,
    GravityNBody,
    MassSpring,
    angular_momentum,
    egnn_reference_initial_states,
    kinetic_energy,
    linear_momentum,
    simulate,
    simulate_charged_nbody,
)

__all__ = [
    "ChargedNBody",
    "ChargedNBodyDataset",
    "GravityNBody",
    "MassSpring",
    "NeuralODE",
    "PairForceField",
    "PlanetaryNBodyDataset",
    "angular_momentum",
    "charged_nbody_trajectories",
    "egnn_reference_initial_states",
    "integrate",
    "kinetic_energy",
    "linear_momentum",
    "load_charged_nbody",
    "rk4_step",
    "sample_planetary_systems",
    "semi_implicit_euler_step",
    "simulate",
    "simulate_charged_nbody",
    "velocity_verlet_step",
]
