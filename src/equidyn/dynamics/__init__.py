"""equidyn.dynamics."""

from equidyn.dynamics.data import ChargedNBodyDataset, load_charged_nbody  # noqa: E402,F401
from equidyn.dynamics.integrators import (  # noqa: E402,F401
    integrate,
    rk4_step,
    semi_implicit_euler_step,
    velocity_verlet_step,
)
from equidyn.dynamics.neural_ode import NeuralODE  # noqa: E402,F401
from equidyn.dynamics.systems import (  # noqa: E402,F401
    ChargedNBody,
    GravityNBody,
    MassSpring,
    angular_momentum,
    kinetic_energy,
    linear_momentum,
    simulate,
    simulate_charged_nbody,
)
