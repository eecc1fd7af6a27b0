"""equidyn.models."""
from equidyn.models.egnn import EGNN, EGNNLayer  # noqa: E402,F401  (issue 5)
from equidyn.models.gnn import GNN  # noqa: E402,F401  (issue 5)
from equidyn.models.linear_dynamics import LinearDynamics  # noqa: E402,F401  (issue 5)
from equidyn.models.radial_field import RadialField  # noqa: E402,F401  (issue 5)
from equidyn.models.potential import Potential, load_model, save_model  # noqa: E402,F401  (issue 4)
from equidyn.models.nequip import NequIP  # noqa: E402,F401  (issue 4)
