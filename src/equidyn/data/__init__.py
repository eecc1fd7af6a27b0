r"""Atomic data: reading labelled structures, statistics, splits, built-in data sets.

Every structure becomes an :class:`equidyn.graph.AtomicGraph` (positions, atomic numbers,
cell, pbc, labels, radius graph); :func:`collate` (= :func:`equidyn.graph.batch_graphs`)
batches a list of them for ``torch.utils.data.DataLoader``. Units are ASE's: Å, eV, eV/Å,
eV/Å³.

>>> import tempfile, torch
>>> from equidyn import data
>>> graphs = data.builtin_dataset(n_structures=4, r_max=4.0, cache_dir=tempfile.mkdtemp(),
...                               frames_per_trajectory=2, equilibration_steps=1)
>>> train, val, test = data.split_indices(len(graphs), 2, 1, seed=0)
>>> loader = torch.utils.data.DataLoader([graphs[i] for i in train], batch_size=2,
...                                      collate_fn=data.collate)
>>> batch = next(iter(loader))
>>> batch.num_graphs, batch.energy.shape, sorted(data.fit_reference_energies(graphs))
(2, torch.Size([2]), [29, 79])
"""

from equidyn.data.builtin import (
    BUILTIN_DATASETS,
    builtin_dataset,
    builtin_dataset_path,
    default_cache_dir,
)
from equidyn.data.io import (
    atoms_to_graph,
    graph_to_atoms,
    read_structures,
    type_map_numbers,
    write_structures,
)
from equidyn.data.split import split_indices
from equidyn.data.stats import (
    average_num_neighbors,
    fit_reference_energies,
    force_rms,
    reference_energy,
)
from equidyn.data.trajectories import (
    BUILTIN_TRAJECTORIES,
    Trajectory,
    TrajectoryWindows,
    builtin_trajectory,
    md17_convention,
    molecular_graph,
    read_trajectory,
    species_one_hot,
    time_split,
    trajectory_from_atoms,
)
from equidyn.graph import AtomicGraph
from equidyn.graph import batch_graphs as collate

__all__ = [
    "AtomicGraph",
    "collate",
    "atoms_to_graph",
    "graph_to_atoms",
    "read_structures",
    "write_structures",
    "type_map_numbers",
    "fit_reference_energies",
    "reference_energy",
    "force_rms",
    "average_num_neighbors",
    "split_indices",
    "builtin_dataset",
    "builtin_dataset_path",
    "default_cache_dir",
    "BUILTIN_DATASETS",
    "Trajectory",
    "TrajectoryWindows",
    "time_split",
    "read_trajectory",
    "trajectory_from_atoms",
    "species_one_hot",
    "molecular_graph",
    "md17_convention",
    "builtin_trajectory",
    "BUILTIN_TRAJECTORIES",
]
