r"""Alanine dipeptide in vacuum through OpenMM: the molecule, its two conformers, and its
energy as a differentiable torch function.

:func:`alanine_dipeptide` builds ACE-ALA-NME (22 atoms) from standard internal coordinates
(no file is read), adds the hydrogens with OpenMM's ``Modeller``, parametrises it with the
``amber14-all.xml`` force field (ff14SB) in vacuum (``NoCutoff``, no constraints) and
minimises the two end states of the classic transition, C7eq (:math:`\phi \approx -83°,
\psi \approx 75°`) and C7ax (:math:`\phi \approx 70°, \psi \approx -70°`).

:class:`OpenMMPotential` is :math:`U: \mathbb{R}^{66} \to \mathbb{R}`, configurations
:math:`x` (flattened Cartesian coordinates in nm, atom-major: ``x[3i:3i+3]`` is atom
:math:`i`) to energies in kJ/mol. Its gradient is OpenMM's :math:`-F(x)`, taken from the same
call as the energy; its second derivative, which the Doob loss needs because the drift
:math:`b = -\nabla U/\gamma` is differentiated with ``create_graph=True``, is a
Hessian-vector product by central differences of forces,

.. math::

    H(x)\,v \approx \|v\|\,\frac{F(x - \varepsilon\hat v) - F(x + \varepsilon\hat v)}
    {2\varepsilon}, \qquad \hat v = v/\|v\|,

with truncation error :math:`\tfrac{\varepsilon^2}{6}\|v\|\,\|\nabla^3 U[\hat v,\hat v]\|`
and round-off :math:`\sim \delta_F/\varepsilon` (:math:`\delta_F` the absolute rounding of
a force component). With OpenMM's Reference platform (float64 throughout) and the default
:math:`\varepsilon = 10^{-5}` nm (a thousandth of a bond fluctuation at 300 K), the relative
error of :math:`Hv` is about :math:`4\times 10^{-10}` near the minima (measured: against
steps of :math:`10^{-3}` to :math:`10^{-6}` nm the difference falls as the step squared); each
product costs two more force calls.

Units: nm, kJ/mol, ps, amu (so 1 amu nm² ps⁻² = 1 kJ/mol), :math:`k_BT` = 2.494 kJ/mol at
300 K. Every configuration handed to OpenMM is counted in :attr:`OpenMMPotential.force_calls`
(energy and forces come from one call; each Hessian-vector product adds two), separately from
the ``evaluations`` (drifts) that :class:`~equidyn.paths.OverdampedLangevin` counts.

With :class:`~equidyn.paths.OverdampedLangevin` the dynamics is isotropic: one friction
:math:`\gamma` (amu/ps, i.e. kJ mol⁻¹ ps nm⁻²) for every atom and no masses, a simpler
process than Du et al.'s per-atom friction :math:`m_i\gamma`, with the same minima and
saddles. Euler–Maruyama is stable for :math:`\Delta t\,\lambda_\max/\gamma < 2`, and the
stiffest Hessian eigenvalue at the minima is :math:`\lambda_\max = 1.37\times 10^6`
kJ mol⁻¹ nm⁻² (C–H stretches): ``benchmarks/alanine_paths.py`` uses :math:`k_BT` =
:data:`KT_300K`, :math:`\gamma` = 2000 amu/ps and :math:`\Delta t` = 1 fs
(:math:`\Delta t\,\lambda_\max/\gamma = 0.68`), paths of 4 ps.

OpenMM is imported only inside these functions: ``import equidyn.paths`` works without it,
and calling them without it raises an ``ImportError`` that says ``pip install openmm``.

>>> import pytest; _ = pytest.importorskip("openmm")
>>> mol = alanine_dipeptide()
>>> mol.num_atoms, [r.name for r in mol.topology.residues()]
(22, ['ACE', 'ALA', 'NME'])
>>> phi, psi = dihedrals(torch.stack([mol.c7eq, mol.c7ax]), mol)
>>> [round(math.degrees(a)) for a in phi.tolist()]   # the amber14 minima, not the targets
[-75, 61]
"""

from __future__ import annotations

import importlib
import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from equidyn.paths._checks import check_positive

__all__ = [
    "KT_300K",
    "AlanineDipeptide",
    "OpenMMPotential",
    "alanine_dipeptide",
    "dihedral",
    "dihedrals",
    "kabsch_align",
]

#: :math:`k_BT` at 300 K in kJ/mol (:math:`R = 8.314462618\times 10^{-3}` kJ mol⁻¹ K⁻¹).
KT_300K = 8.314462618e-3 * 300.0

C7EQ = (-83.0, 75.0)  # (phi, psi) in degrees, the targets of the restrained minimisation
C7AX = (70.0, -70.0)


def _openmm() -> Any:
    """``openmm`` (with ``openmm.app`` and ``openmm.unit`` loaded), or an ``ImportError``."""
    try:
        mm = importlib.import_module("openmm")
        importlib.import_module("openmm.app")
        importlib.import_module("openmm.unit")
    except ImportError as err:  # pragma: no cover - the tests skip without openmm
        raise ImportError(
            "equidyn.paths.openmm needs OpenMM (8 or later): pip install openmm"
        ) from err
    return mm


# --- geometry -----------------------------------------------------------------------------


def _place(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, bond: float, angle: float, torsion: float
) -> np.ndarray:
    """The point d with |cd| = ``bond``, angle bcd = ``angle`` and dihedral abcd = ``torsion``
    (degrees): the natural extension of a chain by one atom."""
    th, ph = math.radians(angle), math.radians(torsion)
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    local = np.array([-math.cos(th), math.sin(th) * math.cos(ph), math.sin(th) * math.sin(ph)])
    return c + bond * (local[0] * bc + local[1] * m + local[2] * n)


def _heavy_atoms(phi: float, psi: float) -> dict[tuple[str, str], np.ndarray]:
    """The 10 heavy atoms of ACE-ALA-NME in Å, keyed by (residue, PDB atom name), with trans
    peptide bonds and backbone dihedrals ``phi``, ``psi`` (degrees). Bond lengths and angles
    are the usual peptide values (Engh & Huber)."""
    ch3 = np.zeros(3)
    c0 = np.array([1.52, 0.0, 0.0])
    ang = math.radians(180.0 - 116.6)  # the angle CH3-C-N
    n1 = c0 + 1.329 * np.array([math.cos(ang), math.sin(ang), 0.0])
    ca = _place(ch3, c0, n1, 1.458, 121.9, 180.0)  # omega(ACE-ALA) = 180
    c1 = _place(c0, n1, ca, 1.525, 111.2, phi)
    n2 = _place(n1, ca, c1, 1.329, 116.2, psi)
    c2 = _place(ca, c1, n2, 1.458, 121.9, 180.0)  # omega(ALA-NME) = 180
    o0 = _place(ca, n1, c0, 1.231, 122.7, 0.0)  # O cis to the next CA in a trans peptide
    o1 = _place(c2, n2, c1, 1.231, 122.7, 0.0)
    cb = _place(n1, c1, ca, 1.53, 110.1, 122.7)  # dihedral N-C-CA-CB = +122.7: L-alanine
    return {
        ("ACE", "CH3"): ch3,
        ("ACE", "C"): c0,
        ("ACE", "O"): o0,
        ("ALA", "N"): n1,
        ("ALA", "CA"): ca,
        ("ALA", "CB"): cb,
        ("ALA", "C"): c1,
        ("ALA", "O"): o1,
        ("NME", "N"): n2,
        ("NME", "C"): c2,
    }


def dihedral(x: torch.Tensor, atoms: tuple[int, int, int, int]) -> torch.Tensor:
    r"""The dihedral angle of atoms :math:`(a, b, c, d)` in radians, in :math:`(-\pi, \pi]`:
    :math:`\operatorname{atan2}\big(\|b_2\|\, b_1\cdot(b_2\times b_3),\
    (b_1\times b_2)\cdot(b_2\times b_3)\big)` with :math:`b_1 = b - a`, :math:`b_2 = c - b`,
    :math:`b_3 = d - c` (IUPAC sign). ``x`` is ``(..., 3n)`` (flattened) or ``(..., n, 3)``;
    returns ``(...)``, differentiable.

    >>> x = torch.tensor([[1.0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 1]])
    >>> round(math.degrees(float(dihedral(x, (0, 1, 2, 3)))), 6)
    90.0
    """
    if x.dim() >= 2 and x.shape[-1] == 3 and x.shape[-2] > max(atoms):
        pos = x
    elif x.shape[-1] % 3 == 0:
        pos = x.reshape(*x.shape[:-1], -1, 3)
    else:
        raise ValueError(f"x must be (..., 3n) or (..., n, 3) coordinates, got {tuple(x.shape)}")
    if pos.shape[-2] <= max(atoms) or min(atoms) < 0:
        raise ValueError(f"atom indices {atoms} out of range for {pos.shape[-2]} atoms")
    a, b, c, d = (pos[..., i, :] for i in atoms)
    b1, b2, b3 = b - a, c - b, d - c
    n1, n2 = torch.cross(b1, b2, dim=-1), torch.cross(b2, b3, dim=-1)
    y = b2.norm(dim=-1) * (b1 * n2).sum(-1)
    return torch.atan2(y, (n1 * n2).sum(-1))


def dihedrals(x: torch.Tensor, topology_or_indices: Any) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The backbone dihedrals :math:`(\phi, \psi)` in radians, each ``(...)``, for
    ``x`` ``(..., 66)`` or ``(..., 22, 3)``; differentiable.

    ``topology_or_indices``: an :class:`AlanineDipeptide`, an ``openmm.app.Topology`` of a
    capped residue (:math:`\phi` = C(ACE)-N-CA-C, :math:`\psi` = N-CA-C-N(NME), looked up by
    atom name), or the two 4-tuples of atom indices ``(phi_atoms, psi_atoms)``.
    """
    if isinstance(topology_or_indices, AlanineDipeptide):
        phi_atoms, psi_atoms = topology_or_indices.phi_atoms, topology_or_indices.psi_atoms
    elif hasattr(topology_or_indices, "residues"):
        phi_atoms, psi_atoms = _backbone_dihedral_atoms(topology_or_indices)
    else:
        try:
            phi_list, psi_list = ([int(i) for i in t] for t in topology_or_indices)
        except (TypeError, ValueError) as err:
            raise ValueError(
                "topology_or_indices must be an AlanineDipeptide, an openmm Topology or "
                f"(phi_atoms, psi_atoms), got {topology_or_indices!r}"
            ) from err
        if len(phi_list) != 4 or len(psi_list) != 4:
            raise ValueError(f"phi and psi need 4 atoms each, got {topology_or_indices!r}")
        phi_atoms = (phi_list[0], phi_list[1], phi_list[2], phi_list[3])
        psi_atoms = (psi_list[0], psi_list[1], psi_list[2], psi_list[3])
    return dihedral(x, phi_atoms), dihedral(x, psi_atoms)


def _backbone_dihedral_atoms(
    topology: Any,
) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """Indices of phi = C(i-1)-N-CA-C and psi = N-CA-C-N(i+1) of the first residue with a CA
    that has neighbours on both sides."""
    residues = list(topology.residues())
    for i in range(1, len(residues) - 1):
        names = {a.name: a.index for a in residues[i].atoms()}
        prev = {a.name: a.index for a in residues[i - 1].atoms()}
        nxt = {a.name: a.index for a in residues[i + 1].atoms()}
        if {"N", "CA", "C"} <= names.keys() and "C" in prev and "N" in nxt:
            n, ca, c = names["N"], names["CA"], names["C"]
            return (prev["C"], n, ca, c), (n, ca, c, nxt["N"])
    raise ValueError(
        "no residue with a CA between two neighbours in the topology "
        f"({[r.name for r in residues]})"
    )


def kabsch_align(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    r"""``x`` ``(..., 3n)`` rigidly moved (rotation, no reflection, and translation) onto
    ``reference`` ``(3n,)`` in the least-squares sense (Kabsch): the end states of a path
    should be aligned so that the path does not have to rotate the molecule.

    >>> r = torch.randn(12, dtype=torch.float64)
    >>> q = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    >>> q = q * torch.linalg.det(q)          # a proper rotation
    >>> moved = (r.view(4, 3) @ q.T + 1.0).reshape(12)
    >>> bool(torch.allclose(kabsch_align(moved, r), r, atol=1e-10))
    True
    """
    p = x.reshape(*x.shape[:-1], -1, 3)
    ref = reference.reshape(-1, 3).to(p)
    if p.shape[-2] != ref.shape[0]:
        raise ValueError(f"x has {p.shape[-2]} atoms, the reference {ref.shape[0]}")
    pc, rc = p - p.mean(-2, keepdim=True), ref - ref.mean(0)
    h = pc.transpose(-1, -2) @ rc  # (..., 3, 3)
    u, _, vt = torch.linalg.svd(h)
    sign = torch.sign(torch.linalg.det(vt.transpose(-1, -2) @ u.transpose(-1, -2)))
    diag = torch.ones(*sign.shape, 3, dtype=p.dtype, device=p.device)
    diag[..., 2] = sign
    rot = vt.transpose(-1, -2) @ (diag[..., None] * u.transpose(-1, -2))
    return (pc @ rot.transpose(-1, -2) + ref.mean(0)).reshape(x.shape)


# --- the potential --------------------------------------------------------------------------


class _ForceEngine:
    """One OpenMM ``Context`` that maps ``(n, 3N)`` float64 arrays (nm) to energies (kJ/mol)
    and forces (kJ/mol/nm), one configuration at a time, counting the calls."""

    def __init__(self, system: Any, platform: str) -> None:
        mm = _openmm()
        self.num_atoms = int(system.getNumParticles())
        integrator = mm.VerletIntegrator(0.001)
        try:
            plat = mm.Platform.getPlatformByName(platform)
        except Exception as err:
            count = mm.Platform.getNumPlatforms()
            names = [mm.Platform.getPlatform(i).getName() for i in range(count)]
            raise ValueError(f"unknown OpenMM platform {platform!r}; available: {names}") from err
        props = {"Threads": "1"} if platform == "CPU" else {}
        self.context = mm.Context(system, integrator, plat, props)
        self.calls = 0

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = x.shape[0]
        energies = np.empty(n)
        forces = np.empty((n, 3 * self.num_atoms))
        for i in range(n):
            self.context.setPositions(x[i].reshape(self.num_atoms, 3))
            state = self.context.getState(getEnergy=True, getForces=True)
            # OpenMM returns kJ/mol and kJ/mol/nm: read the numbers without unit arithmetic
            energies[i] = state.getPotentialEnergy()._value
            forces[i] = state.getForces(asNumpy=True)._value.reshape(-1)
        self.calls += n
        return energies, forces


def _as_batch(x: torch.Tensor) -> np.ndarray:
    return x.detach().reshape(-1, x.shape[-1]).to("cpu", torch.float64).numpy()


class _Energy(torch.autograd.Function):
    """``x (..., 3N) -> U (...)``; the gradient ``-F`` comes from the same OpenMM call."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, engine: _ForceEngine, eps: float) -> torch.Tensor:
        energies, forces = engine(_as_batch(x))
        grad = torch.from_numpy(-forces).to(x).view(x.shape)
        ctx.save_for_backward(x, grad)
        ctx.engine, ctx.eps = engine, eps
        return torch.from_numpy(energies).to(x).view(x.shape[:-1])

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        x, grad = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: differentiable (Hessian-vector products)
            grad = _Gradient.apply(x, grad, ctx.engine, ctx.eps)
        return grad_out[..., None] * grad, None, None


class _Gradient(torch.autograd.Function):
    """``(x, grad U(x) already computed) -> grad U(x)``, whose backward is the central-
    difference Hessian-vector product (see the module)."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, grad: torch.Tensor, engine: _ForceEngine, eps: float
    ) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.engine, ctx.eps = engine, eps
        return grad.clone()

    @staticmethod
    def backward(ctx: Any, v: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        (x,) = ctx.saved_tensors
        return _hvp(x, v, ctx.engine, ctx.eps), None, None, None


def _hvp(x: torch.Tensor, v: torch.Tensor, engine: _ForceEngine, eps: float) -> torch.Tensor:
    """``H(x) v`` per configuration by central differences of forces, ``(..., 3N)``."""
    xb, vb = _as_batch(x), _as_batch(v)
    norm = np.linalg.norm(vb, axis=1)
    live = norm > 0  # a zero v has a zero product, and costs no call
    out = np.zeros_like(vb)
    if live.any():
        unit = vb[live] / norm[live, None]
        step = np.concatenate([xb[live] + eps * unit, xb[live] - eps * unit])
        _, forces = engine(step)
        m = int(live.sum())
        out[live] = (forces[m:] - forces[:m]) / (2 * eps) * norm[live, None]
    return torch.from_numpy(out).to(x).view(x.shape)


class OpenMMPotential(torch.nn.Module):
    r"""An OpenMM ``System``'s potential energy as a torch module (see the module).

    ``forward(x)``: ``x`` ``(..., 3N)`` flattened Cartesian coordinates in nm (any float
    dtype; OpenMM computes in float64 on the Reference platform) -> ``(...)`` energies in
    kJ/mol, differentiable twice (the second derivative by finite differences, step
    ``fd_step`` nm).

    Args:
        system: an ``openmm.System`` (e.g. :attr:`AlanineDipeptide.system`).
        platform: ``"Reference"`` (float64, the default) or ``"CPU"`` (mixed precision,
            faster for large systems, too coarse for the finite-difference Hessian).
        fd_step: :math:`\varepsilon` of the Hessian-vector product, in nm, ``> 0``.
    """

    def __init__(self, system: Any, platform: str = "Reference", fd_step: float = 1e-5) -> None:
        super().__init__()
        check_positive("fd_step", fd_step)
        self.engine = _ForceEngine(system, platform)
        self.num_atoms = self.engine.num_atoms
        self.fd_step = float(fd_step)

    @property
    def force_calls(self) -> int:
        """Configurations handed to OpenMM so far (energy, gradients, Hessian products)."""
        return self.engine.calls

    @force_calls.setter
    def force_calls(self, value: int) -> None:
        self.engine.calls = int(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 3 * self.num_atoms or not x.is_floating_point():
            raise ValueError(
                f"x must be a float (..., {3 * self.num_atoms}) tensor of coordinates in nm, "
                f"got {x.dtype} of shape {tuple(x.shape)}"
            )
        if x.shape[:-1].numel() == 0:
            return x.new_zeros(x.shape[:-1])
        return _Energy.apply(x, self.engine, self.fd_step)

    def forces(self, x: torch.Tensor) -> torch.Tensor:
        """OpenMM's forces ``(..., 3N)`` in kJ/mol/nm at ``x`` (counted, not differentiable)."""
        _, f = self.engine(_as_batch(x))
        return torch.from_numpy(f).to(x).view(x.shape)


# --- the molecule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AlanineDipeptide:
    """ACE-ALA-NME in vacuum with amber14 (see :func:`alanine_dipeptide`).

    Attributes:
        topology: the ``openmm.app.Topology`` (residues ACE, ALA, NME; amber14 atom names).
        system: the ``openmm.System`` (``NoCutoff``, no constraints).
        c7eq, c7ax: the two minimised end states, ``(66,)`` float64 in nm (flattened atom-
            major; ``c7ax`` is Kabsch-aligned onto ``c7eq``).
        energy_c7eq, energy_c7ax: their energies in kJ/mol.
        masses: ``(22,)`` atomic masses in amu.
        phi_atoms, psi_atoms: atom indices of the backbone dihedrals.
        names: ``residue:atom`` for each atom.
    """

    topology: Any
    system: Any
    c7eq: torch.Tensor
    c7ax: torch.Tensor
    energy_c7eq: float
    energy_c7ax: float
    masses: torch.Tensor
    phi_atoms: tuple[int, int, int, int]
    psi_atoms: tuple[int, int, int, int]
    names: tuple[str, ...]

    @property
    def num_atoms(self) -> int:
        return len(self.names)

    def potential(self, platform: str = "Reference", fd_step: float = 1e-5) -> OpenMMPotential:
        """A fresh :class:`OpenMMPotential` of this molecule (its own context and counter)."""
        return OpenMMPotential(self.system, platform=platform, fd_step=fd_step)


# PDB (hydrogens.xml) names -> amber14 template names, per residue
_AMBER_NAMES = {
    "ACE": {"H1": "HH31", "H2": "HH32", "H3": "HH33"},
    "NME": {"C": "CH3", "H1": "HH31", "H2": "HH32", "H3": "HH33"},
}


def _heavy_topology(phi: float, psi: float) -> tuple[Any, np.ndarray]:
    """A ``Topology`` of the heavy atoms (PDB names, bonds set) and their positions in nm."""
    mm = _openmm()
    app = mm.app
    coords = _heavy_atoms(phi, psi)
    top = app.Topology()
    chain = top.addChain()
    atoms: dict[tuple[str, str], Any] = {}
    for res_name in ("ACE", "ALA", "NME"):
        res = top.addResidue(res_name, chain)
        for (r, name), _ in coords.items():
            if r == res_name:
                atoms[(r, name)] = top.addAtom(name, app.Element.getBySymbol(name[0]), res)
    bonds = [
        (("ACE", "CH3"), ("ACE", "C")),
        (("ACE", "C"), ("ACE", "O")),
        (("ACE", "C"), ("ALA", "N")),
        (("ALA", "N"), ("ALA", "CA")),
        (("ALA", "CA"), ("ALA", "CB")),
        (("ALA", "CA"), ("ALA", "C")),
        (("ALA", "C"), ("ALA", "O")),
        (("ALA", "C"), ("NME", "N")),
        (("NME", "N"), ("NME", "C")),
    ]
    for i, j in bonds:
        top.addBond(atoms[i], atoms[j])
    order = [(a.residue.name, a.name) for a in top.atoms()]
    positions = np.array([coords[k] for k in order]) / 10.0  # Å -> nm
    return top, positions


def _minimise(
    system: Any,
    positions: np.ndarray,
    restraint: tuple[tuple[int, ...], tuple[int, ...], float, float] | None,
    tolerance: float,
) -> np.ndarray:
    """L-BFGS minimisation in OpenMM (Reference platform); ``restraint`` = ``(phi atoms, psi
    atoms, phi0, psi0)`` (radians) adds :math:`k(1 - \\cos(\\theta - \\theta_0))` with k =
    2000 kJ/mol on both dihedrals."""
    mm = _openmm()
    unit = mm.unit
    if restraint is not None:
        system = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(system))
        force = mm.CustomTorsionForce("2000*(1 - cos(theta - theta0))")
        force.addPerTorsionParameter("theta0")
        force.addTorsion(*restraint[0], [restraint[2]])
        force.addTorsion(*restraint[1], [restraint[3]])
        system.addForce(force)
    context = mm.Context(
        system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference")
    )
    context.setPositions(positions)
    mm.LocalEnergyMinimizer.minimize(
        context, tolerance * unit.kilojoule_per_mole / unit.nanometer, 0
    )
    state = context.getState(getPositions=True)
    return np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))


def _match_methyls(x: torch.Tensor, reference: torch.Tensor, topology: Any) -> torch.Tensor:
    """``x`` ``(3N,)`` with the three hydrogens of every methyl group relabelled (the
    permutation closest to ``reference``): they are equivalent in the force field, so the
    energy is unchanged, and a path between the two no longer has to turn a methyl by 120°
    (a straight line would pull the hydrogens through the carbon)."""
    pos, ref = x.reshape(-1, 3).clone(), reference.reshape(-1, 3)
    bonded: dict[int, list[int]] = {}
    for a, b in topology.bonds():
        for p, q in ((a, b), (b, a)):
            if q.element is not None and q.element.symbol == "H":
                bonded.setdefault(p.index, []).append(q.index)
    for hs in bonded.values():
        if len(hs) != 3:
            continue
        best = min(
            itertools.permutations(hs),
            key=lambda perm: float((pos[list(perm)] - ref[hs]).norm()),
        )
        pos[hs] = pos[list(best)].clone()
    return pos.reshape(x.shape)


def alanine_dipeptide(
    forcefield: str = "amber14-all.xml", tolerance: float = 1e-3
) -> AlanineDipeptide:
    r"""Build, parametrise and minimise alanine dipeptide (ACE-ALA-NME, 22 atoms) in vacuum.

    1. The 10 heavy atoms from internal coordinates (peptide bond lengths and angles, trans
       peptide bonds, L-alanine), once for each end state's :math:`(\phi, \psi)`.
    2. Hydrogens by ``openmm.app.Modeller.addHydrogens(forcefield)``, renamed to the amber14
       template names (ACE/NME methyls ``CH3``, ``HH31``-``HH33``).
    3. ``forcefield.createSystem(NoCutoff, constraints=None)``: vacuum, all bonds flexible.
    4. Each state minimised first with a dihedral restraint at its target (C7eq
       :math:`(-83°, 75°)`, C7ax :math:`(70°, -70°)`, :math:`2000(1-\cos\Delta\theta)` kJ/mol),
       then without, to an RMS force below ``tolerance`` kJ/mol/nm (OpenMM's L-BFGS); the
       result is the local minimum of the bare force field in that basin.

    ``forcefield`` is any OpenMM force-field file that has ACE/ALA/NME templates. Returns an
    :class:`AlanineDipeptide`, ``c7ax`` aligned onto ``c7eq``.
    """
    check_positive("tolerance", tolerance)
    mm = _openmm()
    app = mm.app
    try:
        ff = app.ForceField(forcefield)
    except Exception as err:
        raise ValueError(f"OpenMM cannot load the force field {forcefield!r}: {err}") from err
    states = []
    topology = system = None
    for phi, psi in (C7EQ, C7AX):
        top, heavy = _heavy_topology(phi, psi)
        modeller = app.Modeller(top, heavy * mm.unit.nanometer)
        modeller.addHydrogens(ff)
        for atom in modeller.topology.atoms():
            atom.name = _AMBER_NAMES.get(atom.residue.name, {}).get(atom.name, atom.name)
        pos = np.asarray(modeller.getPositions().value_in_unit(mm.unit.nanometer))
        if topology is None:
            topology = modeller.topology
            system = ff.createSystem(topology, nonbondedMethod=app.NoCutoff, constraints=None)
        phi_atoms, psi_atoms = _backbone_dihedral_atoms(topology)
        restraint = (phi_atoms, psi_atoms, math.radians(phi), math.radians(psi))
        pos = _minimise(system, pos, restraint, tolerance=1.0)
        pos = _minimise(system, pos, None, tolerance=tolerance)
        states.append(torch.from_numpy(pos.reshape(-1).copy()))
    assert topology is not None and system is not None
    if topology.getNumAtoms() != 22:
        raise RuntimeError(f"expected 22 atoms with hydrogens, got {topology.getNumAtoms()}")
    c7eq = states[0]
    c7ax = _match_methyls(kabsch_align(states[1], c7eq), c7eq, topology)
    c7ax = kabsch_align(c7ax, c7eq)
    engine = _ForceEngine(system, "Reference")
    energies, _ = engine(torch.stack([c7eq, c7ax]).numpy())
    masses = torch.tensor(
        [system.getParticleMass(i).value_in_unit(mm.unit.dalton) for i in range(22)],
        dtype=torch.float64,
    )
    phi_atoms, psi_atoms = _backbone_dihedral_atoms(topology)
    return AlanineDipeptide(
        topology=topology,
        system=system,
        c7eq=c7eq,
        c7ax=c7ax,
        energy_c7eq=float(energies[0]),
        energy_c7ax=float(energies[1]),
        masses=masses,
        phi_atoms=phi_atoms,
        psi_atoms=psi_atoms,
        names=tuple(f"{a.residue.name}:{a.name}" for a in topology.atoms()),
    )
