"""Write ``outputs.pt``: small float64 models, their state_dicts, inputs and outputs.

Run once at a known-good commit (``python tests/models/make_reference.py``); the test
``tests/models/test_reference_outputs.py`` loads each state_dict into a model built by today's
code and checks the outputs to 1e-12. A refactor that keeps weights, state_dict keys and numbers
passes; one that renames a parameter or changes the maths fails.
"""

from __future__ import annotations

from pathlib import Path

import torch

from equidyn.dynamics import NeuralODE, PairForceField
from equidyn.models import (
    EGNN,
    GNN,
    MACE,
    SEGNN,
    TFN,
    LinearDynamics,
    NequIP,
    RadialField,
    SE3Transformer,
)

#: name -> (class, keyword arguments with the names used when the file was written)
POTENTIALS = {
    "nequip": (NequIP, dict(num_species=2, r_max=3.0, l_max=2, num_features=4, num_layers=2)),
    "mace": (
        MACE,
        dict(
            num_species=2,
            r_max=3.0,
            l_max=2,
            correlation=2,
            num_layers=2,
            hidden_irreps="4x0e + 4x1o",
            radial_mlp=(8, 8),
            readout_hidden=4,
        ),
    ),
}
PARTICLES = {
    "egnn": (EGNN, dict(num_features=8, num_layers=2, node_attr_dim=1, edge_attr_dim=2)),
    "gnn": (GNN, dict(num_features=8, num_layers=2, node_attr_dim=1, edge_attr_dim=2)),
    "radial_field": (
        RadialField,
        dict(num_features=8, num_layers=2, node_attr_dim=1, edge_attr_dim=2),
    ),
    "linear": (LinearDynamics, dict(node_attr_dim=1, edge_attr_dim=2)),
    "segnn": (SEGNN, dict(num_features=4, num_layers=2, node_attr_dim=1, edge_attr_dim=2)),
    "tfn": (TFN, dict(num_features=4, num_layers=2, node_attr_dim=1, edge_attr_dim=2)),
    "se3_transformer": (
        SE3Transformer,
        dict(num_features=4, num_layers=2, node_attr_dim=1, edge_attr_dim=2, num_heads=2),
    ),
    "pair_force_field": (
        PairForceField,
        dict(num_features=8, num_layers=2, node_attr_dim=1, edge_attr_dim=2),
    ),
    "neural_ode": (
        NeuralODE,
        dict(num_features=8, num_layers=2, node_attr_dim=1, edge_attr_dim=2, step_size=0.25),
    ),
}


def potential_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    n = 6
    pos = torch.randn(n, 3, generator=g, dtype=torch.float64) * 1.2
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    edge_index = torch.stack([i[keep], j[keep]])
    edge_vec = pos[edge_index[1]] - pos[edge_index[0]]
    close = edge_vec.norm(dim=-1) < 3.0
    return {
        "species": torch.tensor([0, 1, 0, 1, 1, 0]),
        "edge_index": edge_index[:, close],
        "edge_vec": edge_vec[close],
    }


def particle_inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    b, n = 2, 5
    return {
        "pos": torch.randn(b, n, 3, generator=g, dtype=torch.float64),
        "vel": torch.randn(b, n, 3, generator=g, dtype=torch.float64) * 0.5,
        "node_attr": torch.randn(b, n, 1, generator=g, dtype=torch.float64),
        "edge_attr": torch.randn(b, n, n, 2, generator=g, dtype=torch.float64),
    }


def main() -> None:
    torch.manual_seed(0)
    out: dict[str, dict] = {
        "potential_inputs": potential_inputs(),
        "particle_inputs": particle_inputs(),
    }
    pin, qin = out["potential_inputs"], out["particle_inputs"]
    for name, (cls, kw) in POTENTIALS.items():
        model = cls(**kw).double().eval()
        with torch.no_grad():  # perturb so zero-initialised readouts do not hide anything
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        y = model(pin["species"], pin["edge_index"], pin["edge_vec"])
        out[name] = {"state_dict": model.state_dict(), "output": y.detach()}
    for name, (cls, kw) in PARTICLES.items():
        model = cls(**kw).double().eval()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        y = model(qin["pos"], qin["vel"], qin["node_attr"], qin["edge_attr"])
        out[name] = {"state_dict": model.state_dict(), "output": y.detach()}
    torch.save(out, Path(__file__).parent / "reference" / "outputs.pt")


if __name__ == "__main__":
    main()
