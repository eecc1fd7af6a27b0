"""Published results the experiments compare against: the one table of them in equidyn.

Charged N-body, EGNN protocol (frame 30 → 40, 3000 / 2000 / 2000 trajectories, test MSE at the
epoch of best validation MSE; see ``docs/nbody.md``). The numbers are those reported by
Satorras, Hoogeboom & Welling, *E(n) Equivariant Graph Neural Networks*, ICML 2021, Table 2
(Linear, SE(3)-Transformer, TFN, GNN, Radial Field, EGNN), and by Brandstetter et al.,
*Geometric and Physical Quantities Improve E(3) Equivariant Message Passing*, ICLR 2022
(SEGNN). The same paper's EGNN number stands for ``egnn_vel``, equidyn's name of the EGNN with
the velocity term of that paper.

>>> NBODY_TEST_MSE["egnn"], NBODY_PAPER_EPOCHS
(0.0071, 10000)
"""

from __future__ import annotations

__all__ = ["NBODY_PAPER_EPOCHS", "NBODY_TEST_MSE"]

#: published test MSE of the charged N-body task, by ``equidyn nbody --model`` name
NBODY_TEST_MSE: dict[str, float] = {
    "linear": 0.0819,
    "se3_transformer": 0.0244,
    "tfn": 0.0155,
    "gnn": 0.0107,
    "radial_field": 0.0104,
    "egnn": 0.0071,
    "egnn_vel": 0.0071,
    "segnn": 0.0043,
}

#: epochs the EGNN paper trained its models for on this task
NBODY_PAPER_EPOCHS = 10_000
