r"""Statistics of a labelled data set: per-species reference energies, force scale, neighbours.

Reference energies :math:`e_s` (one per species :math:`s`) solve the least-squares problem

.. math::

    \min_{e} \sum_b \Big(E_b - \sum_s n_{bs}\, e_s\Big)^2,

with :math:`n_{bs}` the number of atoms of species :math:`s` in structure :math:`b`; a
model then learns :math:`E_b - \sum_s n_{bs} e_s`. When the compositions do not determine
every :math:`e_s` (e.g. every structure has the same stoichiometry) the minimum-norm solution
is returned. The force scale is the root mean square of all force components,
:math:`\sqrt{\tfrac{1}{3N}\sum_{n,\alpha} F_{n\alpha}^2}` (eV/Å).

>>> import torch
>>> from equidyn.graph import radius_graph
>>> gs = [radius_graph(torch.zeros(1, 3), [1], None, energy=-0.5),
...       radius_graph(torch.rand(2, 3) * 9, [1, 8], None, energy=-2.5)]
>>> {z: round(e, 6) for z, e in fit_reference_energies(gs).items()}
{1: -0.5, 8: -2.0}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from equidyn.graph import AtomicGraph

__all__ = [
    "fit_reference_energies",
    "reference_energy",
    "force_rms",
    "average_num_neighbors",
]


def _type_numbers(graphs: Sequence[AtomicGraph], type_map: Sequence[int] | None) -> list[int]:
    if type_map is not None:
        return [int(z) for z in type_map]
    return sorted({int(z) for g in graphs for z in g.atomic_numbers.tolist()})


def fit_reference_energies(
    graphs: Sequence[AtomicGraph], type_map: Sequence[int] | None = None
) -> dict[int, float]:
    r"""Least-squares per-species energies :math:`e_s` (eV), keyed by atomic number.

    Args:
        graphs: labelled structures (single or batched graphs; every one needs ``energy``).
        type_map: atomic numbers to fit (default: every species present). An element
            present in the data but missing here raises ``ValueError``.
    """
    if len(graphs) == 0:
        raise ValueError("fit_reference_energies needs at least one structure")
    types = _type_numbers(graphs, type_map)
    col = {z: k for k, z in enumerate(types)}
    rows, energies = [], []
    for k, g in enumerate(graphs):
        if g.energy is None:
            raise ValueError(f"structure {k} has no energy label")
        counts = np.zeros((g.num_graphs, len(types)))
        z = g.atomic_numbers.tolist()
        b = g.batch.tolist()
        for zn, bn in zip(z, b, strict=True):
            if zn not in col:
                raise ValueError(f"structure {k} has Z={zn}, not in the type map {types}")
            counts[bn, col[zn]] += 1
        rows.append(counts)
        energies.append(g.energy.detach().to("cpu", torch.float64).numpy().reshape(-1))
    a = np.concatenate(rows)  # [n_structures, n_types]
    y = np.concatenate(energies)  # [n_structures]
    solution = np.linalg.lstsq(a, y, rcond=None)[0]
    return {z: float(solution[col[z]]) for z in types}


def reference_energy(graph: AtomicGraph, references: dict[int, float]) -> torch.Tensor:
    r"""``[n_graphs]`` baseline :math:`\sum_s n_{bs}\, e_s` of each structure of ``graph``.

    >>> import torch
    >>> from equidyn.graph import radius_graph
    >>> g = radius_graph(torch.zeros(2, 3), [1, 8], None)
    >>> reference_energy(g, {1: -0.5, 8: -2.0})
    tensor([-2.5000])
    """
    missing = sorted(set(graph.atomic_numbers.tolist()) - set(references))
    if missing:
        raise ValueError(f"no reference energy for Z={missing}; have {sorted(references)}")
    table = torch.zeros(119, dtype=graph.pos.dtype, device=graph.pos.device)
    for z, e in references.items():
        table[int(z)] = e
    per_atom = table[graph.atomic_numbers]  # [n_atoms]
    out = torch.zeros(graph.num_graphs, dtype=per_atom.dtype, device=per_atom.device)
    return out.index_add(0, graph.batch, per_atom)


def force_rms(graphs: Sequence[AtomicGraph]) -> float:
    r"""Root mean square of all force components, :math:`\sqrt{\langle F_{n\alpha}^2\rangle}`, eV/Å.

    >>> import torch
    >>> from equidyn.graph import radius_graph
    >>> g = radius_graph(torch.zeros(1, 3), [1], None, forces=[[3.0, 0.0, 4.0]])
    >>> round(force_rms([g]), 6)
    2.886751
    """
    total, count = 0.0, 0
    for k, g in enumerate(graphs):
        if g.forces is None:
            raise ValueError(f"structure {k} has no forces label")
        total += float((g.forces.detach().double() ** 2).sum())
        count += g.forces.numel()
    if count == 0:
        raise ValueError("force_rms needs at least one atom with forces")
    return (total / count) ** 0.5


def average_num_neighbors(graphs: Sequence[AtomicGraph]) -> float:
    r"""Mean number of neighbours per atom, :math:`n_\mathrm{edges} / n_\mathrm{atoms}`.

    Message-passing models divide their neighbour sums by this constant.

    >>> import torch
    >>> from equidyn.graph import radius_graph
    >>> cube = radius_graph(torch.zeros(1, 3), [29], 3.0, 2.5 * torch.eye(3), True)
    >>> average_num_neighbors([cube])
    6.0
    """
    atoms = sum(g.num_nodes for g in graphs)
    if atoms == 0:
        raise ValueError("average_num_neighbors needs at least one atom")
    if any(g.r_max is None for g in graphs):
        raise ValueError("graphs were built without edges (r_max=None); use with_edges(r_max)")
    return sum(g.num_edges for g in graphs) / atoms
