"""A reusable test battery for interatomic potentials.

Every potential in equidyn (NequIP, MACE, ...) runs the same physics checks. Subclass
:class:`PotentialBattery` in a ``test_*.py`` file, give it a ``make_potential`` that returns a
small randomly initialised :class:`~equidyn.models.potential.Potential` for species Cu (29) and
Au (79), and pytest collects every check:

    class TestMyModel(PotentialBattery):
        def make_potential(self):
            return Potential(MyModel(...), atomic_numbers=[29, 79])

Checks (float64 to 1e-10 unless stated):
- energy invariant, forces equivariant under rotations, reflections, translations and atom
  permutations, molecule and periodic cell (float64 1e-10 and float32 1e-4, relative);
- forces equal the central finite difference of the energy;
- stress equals the finite-difference derivative of the energy with respect to strain;
- the energy and forces are continuous as an atom crosses the cutoff (smooth cutoff);
- a batch of structures gives the same energies/forces/stress as each structure alone;
- an isolated atom and an atom without neighbours work (zero force, finite energy);
- periodic images are counted right: a supercell has exactly N times the energy of its cell,
  also in cells smaller than the cutoff;
- bad input (unknown species, NaN positions) raises a ValueError naming the structure.
"""

from __future__ import annotations

import math

import pytest
import torch

from equidyn.graph.batch import AtomicGraph, batch_graphs, radius_graph
from equidyn.models.potential import Potential
from equidyn.testing import assert_equivariant

CU, AU = 29, 79


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_cluster(
    n: int = 6, seed: int = 0, spread: float = 2.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``[n, 3]`` (float64) with min distance ~1.5 Å and numbers ``[n]`` (Cu/Au)."""
    g = _gen(seed)
    pos: list[torch.Tensor] = []
    while len(pos) < n:
        p = (torch.rand(3, generator=g, dtype=torch.float64) - 0.5) * 2 * spread
        if all((p - q).norm() > 1.5 for q in pos):
            pos.append(p)
    numbers = torch.tensor([CU if k % 3 else AU for k in range(n)])
    return torch.stack(pos), numbers


def random_cell(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A triclinic periodic cell (~3.8 Å) with 4 rattled fcc atoms: pos, numbers, cell."""
    g = _gen(seed)
    a = 3.8
    cell = a * torch.eye(3, dtype=torch.float64) + 0.25 * torch.randn(
        3, 3, generator=g, dtype=torch.float64
    )
    frac = torch.tensor(
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]], dtype=torch.float64
    )
    pos = frac @ cell + 0.1 * torch.randn(4, 3, generator=g, dtype=torch.float64)
    numbers = torch.tensor([CU, AU, CU, CU])
    return pos, numbers, cell


class PotentialBattery:
    """Base class of the battery; subclasses implement :meth:`make_potential`."""

    #: tolerance for float64 comparisons of the same quantity computed two ways
    atol64: float = 1e-10

    def make_potential(self) -> Potential:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def potential(self, dtype: torch.dtype = torch.float64) -> Potential:
        torch.manual_seed(0)
        pot = self.make_potential().to(dtype).eval()
        return pot

    def graph(self, pot: Potential, pos, numbers, cell=None, pbc=False) -> AtomicGraph:
        return radius_graph(pos, numbers, pot.r_max, cell, pbc)

    def energy_forces(self, pot: Potential, pos, numbers, cell=None, pbc=False, stress=False):
        out = pot(self.graph(pot, pos, numbers, cell, pbc), compute_stress=stress)
        return out

    # ------------------------------------------------------------------ symmetry
    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    def test_molecule_symmetries(self, dtype):
        pot = self.potential(dtype)
        pos, numbers = random_cluster(7)

        def fn(x, z):
            out = pot(self.graph(pot, x, z[:, 0].long()))
            return out["energy"], out["forces"]

        assert_equivariant(
            fn,
            irreps_in=["cartesian_points", "0e"],
            irreps_out=["0e", "1o"],
            args_in=[pos.to(dtype), numbers.to(dtype)[:, None]],
            translations=True,
            permutations=True,
            node_dims_in=[0, 0],
            node_dims_out=[None, 0],
        )
        out = fn(pos.to(dtype), numbers.to(dtype)[:, None])
        assert out[1].abs().max() > 1e-6, "forces vanish: the test would be vacuous"

    @pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
    def test_periodic_symmetries(self, dtype):
        pot = self.potential(dtype)
        pos, numbers, cell = random_cell()

        def fn(x, z, c):
            out = pot(self.graph(pot, x, z[:, 0].long(), c, True), compute_stress=True)
            return out["energy"], out["forces"], out["stress"].reshape(3, 3)

        # cell rows are vectors (rotate, never translate); the stress is a rank-2 tensor:
        # check it separately below
        args = [pos.to(dtype), numbers.to(dtype)[:, None], cell.to(dtype)]
        assert_equivariant(
            lambda x, z, c: fn(x, z, c)[:2],
            irreps_in=["cartesian_points", "0e", "1o"],
            irreps_out=["0e", "1o"],
            args_in=args,
            translations=True,
            permutations=True,
            node_dims_in=[0, 0, None],
            node_dims_out=[None, 0],
        )
        # stress: sigma(R x) = R sigma R^T (also for improper R)
        from equidyn.o3.rotations import rand_matrix

        R = rand_matrix(dtype=dtype, generator=_gen(3))
        for Q in (R, -R):
            s0 = fn(*args)[2]
            s1 = fn(args[0] @ Q.T, args[1], args[2] @ Q.T)[2]
            tol = 1e-10 if dtype == torch.float64 else 1e-4
            scale = max(1.0, float(s0.abs().max()))
            assert (s1 - Q @ s0 @ Q.T).abs().max() / scale < tol

    # ------------------------------------------------------------------ derivatives
    def test_forces_are_minus_gradient(self):
        pot = self.potential()
        pos, numbers = random_cluster(5, seed=2)
        forces = self.energy_forces(pot, pos, numbers)["forces"].detach()
        assert forces.abs().max() > 1e-4
        # directional derivatives along random displacements of all atoms, and along one atom
        h = 1e-5
        g = _gen(11)
        directions = [torch.randn(pos.shape, generator=g, dtype=torch.float64) for _ in range(3)]
        single = torch.zeros_like(pos)
        single[1] = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
        for d in directions + [single]:
            ep = self.energy_forces(pot, pos + h * d, numbers)["energy"].item()
            em = self.energy_forces(pot, pos - h * d, numbers)["energy"].item()
            fd = -(ep - em) / (2 * h)
            assert abs(fd - (forces * d).sum().item()) < 1e-6 * max(1.0, abs(fd))

    def test_stress_is_strain_derivative(self):
        pot = self.potential()
        pos, numbers, cell = random_cell(seed=4)
        out = self.energy_forces(pot, pos, numbers, cell, True, stress=True)
        stress = out["stress"][0].detach()
        vol = torch.linalg.det(cell).abs()
        h = 1e-5
        g = _gen(12)
        eps = torch.randn(3, 3, generator=g, dtype=torch.float64)
        shear = torch.zeros(3, 3, dtype=torch.float64)
        shear[0, 2] = 1.0  # an asymmetric direction: only its symmetric part acts
        for e in (eps, shear):
            es = []
            for sign in (1, -1):
                d = torch.eye(3, dtype=torch.float64) + sign * h * 0.5 * (e + e.T)
                es.append(
                    self.energy_forces(pot, pos @ d, numbers, cell @ d, True)["energy"].item()
                )
            fd = (es[0] - es[1]) / (2 * h) / vol
            assert abs(fd - (stress * e).sum().item()) < 1e-7 + 1e-5 * abs(fd)
        assert stress.abs().max() > 1e-6
        torch.testing.assert_close(stress, stress.T, atol=1e-12, rtol=0)

    # ------------------------------------------------------------------ smoothness
    def test_smooth_at_cutoff(self):
        """An atom crossing the cutoff of another: E and F continuous (no jump)."""
        pot = self.potential()
        rc = pot.r_max
        # a bonded pair plus a third atom moving along x across the cutoff of atom 0
        base = torch.tensor([[0.0, 0.0, 0.0], [0.0, 2.2, 0.0]], dtype=torch.float64)
        numbers = torch.tensor([CU, AU, CU])

        def ef(x: float):
            pos = torch.cat([base, torch.tensor([[x, 0.0, 0.0]], dtype=torch.float64)])
            out = self.energy_forces(pot, pos, numbers)
            return out["energy"].item(), out["forces"].detach()

        far = math.sqrt(rc**2 + 2.2**2) + 1.0  # also beyond the cutoff of atom 1
        e_inside, f_inside = ef(rc - 1e-4)
        e_out, f_out = ef(rc + 1e-4)
        e_far, f_far = ef(far)
        e_mid, f_mid = ef(rc - 0.3)
        # inside, the atom interacts (the test is not vacuous) ...
        assert abs(e_mid - e_far) > 1e-6 or f_mid[2].abs().max() > 1e-6
        # ... and at the cutoff its contribution has vanished with its derivative
        assert abs(e_inside - e_out) < 1e-9
        assert (f_inside - f_out).abs().max() < 1e-6
        assert f_inside[2].abs().max() < 1e-6 + (f_far[2].abs().max())

    # ------------------------------------------------------------------ batching
    def test_batch_equals_individual(self):
        pot = self.potential()
        p1, z1 = random_cluster(5, seed=5)
        p2, z2, c2 = random_cell(seed=6)
        p3 = torch.zeros(1, 3, dtype=torch.float64)
        z3 = torch.tensor([AU])
        graphs = [
            radius_graph(p1, z1, pot.r_max),
            radius_graph(p2, z2, pot.r_max, c2, True),
            radius_graph(p3, z3, pot.r_max),
        ]
        single = [pot(g, compute_stress=True) for g in graphs]
        both = pot(batch_graphs(graphs), compute_stress=True)
        torch.testing.assert_close(
            both["energy"].detach(),
            torch.cat([s["energy"] for s in single]).detach(),
            atol=self.atol64,
            rtol=0,
        )
        torch.testing.assert_close(
            both["forces"].detach(),
            torch.cat([s["forces"] for s in single]).detach(),
            atol=self.atol64,
            rtol=0,
        )
        torch.testing.assert_close(
            both["stress"].detach(),
            torch.cat([s["stress"] for s in single]).detach(),
            atol=self.atol64,
            rtol=0,
        )
        assert both["stress"][0].abs().max() == 0  # a molecule has no stress

    # ------------------------------------------------------------------ special cases
    def test_isolated_atom_and_lonely_atom(self):
        pot = self.potential()
        for z in (CU, AU):
            out = self.energy_forces(pot, torch.zeros(1, 3, dtype=torch.float64), torch.tensor([z]))
            assert torch.isfinite(out["energy"]).all()
            assert out["forces"].abs().max() == 0
        e_cu = self.energy_forces(pot, torch.zeros(1, 3, dtype=torch.float64), torch.tensor([CU]))[
            "energy"
        ]
        # a cluster plus a far-away Cu: the far atom feels nothing and adds its isolated energy
        pos, numbers = random_cluster(4, seed=7)
        out = self.energy_forces(pot, pos, numbers)
        far = torch.cat([pos, torch.tensor([[50.0, 0.0, 0.0]], dtype=torch.float64)])
        out2 = self.energy_forces(pot, far, torch.cat([numbers, torch.tensor([CU])]))
        torch.testing.assert_close(
            out2["energy"].detach(), (out["energy"] + e_cu).detach(), atol=self.atol64, rtol=0
        )
        assert out2["forces"][-1].abs().max() == 0
        torch.testing.assert_close(
            out2["forces"][:-1].detach(), out["forces"].detach(), atol=self.atol64, rtol=0
        )

    def test_periodic_images_supercell(self):
        """A 2x1x1 and 2x2x2 supercell have exactly 2x and 8x the energy of a small cell."""
        pot = self.potential()
        # cell smaller than the cutoff: every atom sees several images of itself
        cell = torch.tensor(
            [[2.6, 0.0, 0.0], [0.3, 2.5, 0.0], [0.2, 0.4, 2.7]], dtype=torch.float64
        )
        assert cell.norm(dim=1).max() < pot.r_max
        pos = torch.tensor([[0.1, 0.0, 0.0], [1.3, 1.2, 1.4]], dtype=torch.float64)
        numbers = torch.tensor([CU, AU])
        out = self.energy_forces(pot, pos, numbers, cell, True, stress=True)
        for reps in ((2, 1, 1), (2, 2, 2)):
            shifts = torch.cartesian_prod(*[torch.arange(r, dtype=torch.float64) for r in reps])
            big_pos = (pos[None] + (shifts @ cell)[:, None]).reshape(-1, 3)
            big_numbers = numbers.repeat(shifts.shape[0])
            big_cell = cell * torch.tensor(reps, dtype=torch.float64)[:, None]
            big = self.energy_forces(pot, big_pos, big_numbers, big_cell, True, stress=True)
            n = shifts.shape[0]
            assert abs(big["energy"].item() - n * out["energy"].item()) < 1e-9 * max(
                1.0, abs(big["energy"].item())
            )
            torch.testing.assert_close(
                big["forces"].detach(), out["forces"].detach().repeat(n, 1), atol=1e-9, rtol=0
            )
            torch.testing.assert_close(
                big["stress"].detach(), out["stress"].detach(), atol=1e-10, rtol=0
            )

    # ------------------------------------------------------------------ bad input
    def test_unknown_species_names_structure(self):
        pot = self.potential()
        p1, z1 = random_cluster(3, seed=8)
        z2 = z1.clone()
        z2[1] = 47  # silver: unknown
        g = batch_graphs([radius_graph(p1, z1, pot.r_max), radius_graph(p1, z2, pot.r_max)])
        with pytest.raises(ValueError, match=r"structure 1 \(.*Ag.*\).*Ag.*does not know"):
            pot(g)

    def test_nan_positions_name_structure(self):
        pot = self.potential()
        p1, z1 = random_cluster(3, seed=9)
        graphs = [radius_graph(p1, z1, pot.r_max) for _ in range(3)]
        g = batch_graphs(graphs)
        g.pos = g.pos.clone()
        g.pos[7, 1] = float("nan")  # structure 2, its atom 1
        with pytest.raises(ValueError, match=r"structure 2 .*finite.*atom 7"):
            pot(g)
        with pytest.raises(ValueError, match="finite"):
            pot.compute(z1, torch.full((3, 3), float("nan"), dtype=torch.float64))

    # ------------------------------------------------------------------ training path
    def test_force_loss_has_second_derivative(self):
        """Training on forces needs d(forces)/d(weights): the double backward works."""
        pot = self.potential().train()
        pos, numbers = random_cluster(4, seed=10)
        out = pot(self.graph(pot, pos, numbers))
        loss = (out["forces"] ** 2).sum()
        params = [p for p in pot.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        assert any(g is not None and g.abs().max() > 0 for g in grads)
