r"""Atomic graphs: neighbour lists (open and periodic), batching, segment sums.

The entry point for models is :class:`AtomicGraph` (one structure or a batch):

==================  ======================  =============================================
field               shape                   meaning
==================  ======================  =============================================
``pos``             ``[n_atoms, 3]``        positions (Å)
``atomic_numbers``  ``[n_atoms]``           :math:`Z`, int64
``species``         ``[n_atoms]`` or None   index in a type map (:func:`species_index`)
``edge_index``      ``[2, n_edges]``        ``(i, j)`` = (source, destination), int64
``edge_shift``      ``[n_edges, 3]``        integer lattice shifts :math:`S`, int64
``cell``            ``[n_graphs, 3, 3]``    lattice vectors as rows (zeros for molecules)
``pbc``             ``[n_graphs, 3]``       periodicity, bool
``batch``           ``[n_atoms]``           structure of each atom
``ptr``             ``[n_graphs + 1]``      atom offsets of each structure
``energy``          ``[n_graphs]``/None     eV
``forces``          ``[n_atoms, 3]``/None   eV/Å
``stress``          ``[n_graphs, 3, 3]``/N  eV/Å³, ASE sign convention
==================  ======================  =============================================

Edges: :math:`\vec r_{ij} = \vec r_j - \vec r_i + S\,C`, :math:`0 < |\vec r_{ij}| < r_{\max}`,
the list is symmetric (with :math:`(i, j, S)` also :math:`(j, i, -S)`), and small periodic
cells give every image within the cutoff (an atom can neighbour itself through an image).

A message-passing layer sums over the neighbours :math:`j` of each centre :math:`i`, i.e.
into ``edge_index[0]`` with ``vec`` pointing from the centre to the neighbour
(``scatter_sum(messages, graph.edge_index[0], graph.num_nodes)``); since the list is
symmetric, summing into ``edge_index[1]`` with ``-vec`` is the same thing.

Energy, forces and stress in a model::

    strain = torch.zeros_like(graph.cell).requires_grad_(True)   # [n_graphs, 3, 3]
    pos = graph.pos.requires_grad_(True)
    vec = graph.edge_vectors(strain)                              # [n_edges, 3]
    atom_energy = ...                                             # [n_atoms]
    energy = scatter_sum(atom_energy, graph.batch, graph.num_graphs)  # [n_graphs]
    dpos, dstrain = torch.autograd.grad(energy.sum(), [pos, strain], create_graph=training)
    forces = -dpos                                                # [n_atoms, 3]
    stress = dstrain / graph.volume()[:, None, None]              # [n_graphs, 3, 3]

For MD, :class:`VerletList` keeps a list built with a skin and searches again only when an
atom has moved more than half of it (:mod:`equidyn.graph.verlet`).

``AtomicGraph`` can be passed straight into a function compiled with
``torch.compile(fullgraph=True)``; create ``strain`` (a leaf that requires grad) outside
the compiled region. Edges are built outside too (vesin runs on the CPU, in numpy).

>>> import torch
>>> from equidyn import graph as eg
>>> g = eg.radius_graph(torch.zeros(1, 3), [29], r_max=3.0, cell=2.5 * torch.eye(3), pbc=True)
>>> b = eg.batch_graphs([g, g])
>>> b.num_graphs, b.num_edges, b.edge_vectors().shape
(2, 12, torch.Size([12, 3]))
>>> eg.scatter_sum(torch.ones(b.num_nodes), b.batch, b.num_graphs)
tensor([1., 1.])
"""

from equidyn.graph.batch import AtomicGraph, batch_graphs, radius_graph, species_index
from equidyn.graph.neighbors import apply_strain, cell_volume, edge_vectors, neighbor_list
from equidyn.graph.scatter import (
    scatter_max,
    scatter_mean,
    scatter_softmax,
    scatter_sum,
    segment_counts,
)
from equidyn.graph.verlet import VerletList, filter_edges

__all__ = [
    "AtomicGraph",
    "radius_graph",
    "batch_graphs",
    "species_index",
    "neighbor_list",
    "edge_vectors",
    "apply_strain",
    "cell_volume",
    "VerletList",
    "filter_edges",
    "scatter_sum",
    "scatter_mean",
    "scatter_max",
    "scatter_softmax",
    "segment_counts",
]
