"""Alanine dipeptide in vacuum (amber14, OpenMM): C7eq -> C7ax transition paths by Doob's
Lagrangian against two-way shooting and plain MD, counted in energy evaluations.

The molecule (equidyn.paths.openmm.alanine_dipeptide): ACE-ALA-NME, 22 atoms, ff14SB, no
cutoff, no constraints; the end states are the force field's local minima C7eq (phi, psi) =
(-75, 54) deg and C7ax (61, -41) deg (C7ax aligned onto C7eq), 6.2 kJ/mol apart.

Dynamics: the isotropic overdamped Langevin dynamics of equidyn.paths.OverdampedLangevin in
the 66 Cartesian coordinates (nm), one friction for every atom (no masses):
dx = -grad U / gamma dt + sqrt(2 kT / gamma) dW, kT = 2.494 kJ/mol (300 K), gamma = 2000
amu/ps, dt = 1 fs, so dt / gamma = 5e-7 nm^2 mol/kJ: the stiffest mode of the Hessian at the
minima (1.37e6 kJ/mol/nm^2, C-H stretches) has dt lambda / gamma = 0.68 < 2 (stable). Paths
of T = 4 ps (4000 steps): from the top of the barrier, trajectories commit to a basin in
1000-2000 steps. Basins: balls of 40 degrees in (phi, psi) around the minima.

- **Doob's Lagrangian** (fit_doob): a one-component GaussianPathMarginal from C7eq to C7ax
  in Cartesian coordinates, its width started at 0.1 of the Brownian bridge's; each training
  sample costs one drift (one OpenMM call) and its Hessian-vector product two more (finite
  differences of forces). Paths are drawn from the learned control by the exact transition
  of that linear SDE (Euler-Maruyama with dt is unstable near the pinned ends once the
  marginal is narrow), at no energy cost.
- **Two-way shooting** (two_way_shooting, basins in (phi, psi)) from the straight line in
  Cartesian coordinates: every shot integrates 4000 steps.
- **Plain MD** from C7eq: walkers until one reaches C7ax.

Quality: the MinMax energy of a path is max U along it minus the higher end state's energy
(U(C7ax)); reported as min and median over paths, with the mean log-likelihood per step
under the dynamics. Every OpenMM call is counted (force_calls: energies, forces, Hessian
products) beside the dynamics' evaluations (drifts).

    python benchmarks/alanine_paths.py --quick    # a smoke test (< 60 s)
    python benchmarks/alanine_paths.py            # the table and the plot (~11 min, 1 thread)

Writes results.json and paths.png to --out (default benchmarks/results/alanine_paths).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from equidyn.paths import GaussianPathMarginal, OverdampedLangevin, fit_doob, two_way_shooting
from equidyn.paths.openmm import KT_300K, AlanineDipeptide, alanine_dipeptide, dihedrals

GAMMA, DT, N_STEPS = 2000.0, 1e-3, 4000
T = N_STEPS * DT
RADIUS = math.radians(40.0)


def cv(mol: AlanineDipeptide):
    """(..., 66) -> (..., 2): (phi, psi) in radians (no wrap: the basins are far from +-pi)."""
    return lambda x: torch.stack(dihedrals(x, mol), -1)


@torch.no_grad()
def sample_linear_sde(
    q: GaussianPathMarginal, n_paths: int, n_steps: int, generator: torch.Generator
) -> torch.Tensor:
    """Paths of the one-component marginal's control SDE, by its exact Gaussian transition.

    With y = x - mu_t the SDE is linear, dy = (sigma'/sigma - D/sigma^2) y dt + sqrt(2D) dW,
    and sigma^2 = 2DT s(1-s) c(s) with c = exp(2g); over a step with c taken at the step's
    midpoint, y_{i+1} = Phi_i y_i + sigma_{i+1} sqrt(1 - exp(-L_i / c_i)) xi with
    Phi_i = (sigma_{i+1}/sigma_i) exp(-L_i / (2 c_i)), L_i = log[s_{i+1}(1-s_i) /
    (s_i(1-s_{i+1}))]; so the marginals are exactly q_t and the ends exactly A and B.
    Returns (n_steps + 1, n_paths, d).
    """
    if q.num_components != 1:
        raise ValueError(f"the exact sampler is for one component, got {q.num_components}")
    s = torch.linspace(0, 1, n_steps + 1, dtype=q.start.dtype)
    mu, sigma = (v[:, 0] for v in q(s))  # (N + 1, d), (N + 1,)
    sm = 0.5 * (s[1:] + s[:-1])
    bridge = torch.sqrt(2 * q.diffusion * q.duration * sm * (1 - sm))
    c = (q(sm)[1][:, 0] / bridge) ** 2  # (N,)
    s0, s1 = s[:-1], s[1:]
    big_l = torch.log(s1 * (1 - s0)) - torch.log(s0 * (1 - s1))  # inf at both ends
    keep = torch.exp(-big_l / (2 * c))  # (N,), 0 at both ends
    ratio = torch.where(sigma[:-1] > 0, sigma[1:] / sigma[:-1].clamp_min(1e-300), 0.0)
    phi = ratio * keep
    fresh = sigma[1:] * torch.sqrt((1 - keep**2).clamp_min(0))
    y = torch.zeros(n_paths, q.dim, dtype=mu.dtype)
    frames = [mu[0] + y]
    for i in range(n_steps):
        xi = torch.randn(y.shape, dtype=y.dtype, generator=generator)
        y = phi[i] * y + fresh[i] * xi
        frames.append(mu[i + 1] + y)
    frames[-1] = q.end.expand(n_paths, q.dim).clone()
    return torch.stack(frames)


@torch.no_grad()
def path_quality(
    dyn: OverdampedLangevin, paths: torch.Tensor, u_ref: float, mol: AlanineDipeptide
) -> dict[str, Any]:
    """MinMax (max U - u_ref), log-likelihood per step, fraction of frames near either
    basin, from one OpenMM call per frame (not counted as evaluations; counted in
    force_calls_measuring)."""
    pot = dyn.potential
    n1, n_paths, d = paths.shape
    before = pot.force_calls
    energies, forces = pot.engine(paths.reshape(-1, d).numpy())
    e = torch.from_numpy(energies).view(n1, n_paths)
    drift = torch.from_numpy(forces).view(n1, n_paths, d) / dyn.gamma
    var = 2 * dyn.diffusion * DT
    mean = paths[:-1] + drift[:-1] * DT
    logp = -((paths[1:] - mean) ** 2).sum(-1) / (2 * var) - 0.5 * d * math.log(2 * math.pi * var)
    barrier = e.max(0).values - u_ref
    ang = cv(mol)(paths[n1 // 2])
    return {
        "min_max_energy": float(barrier.min()),
        "median_max_energy": float(barrier.median()),
        "mean_log_likelihood": float(logp.sum(0).mean()) / (n1 - 1),
        "n_paths": n_paths,
        "phi_psi_at_half_time_deg": [
            [round(math.degrees(v), 1) for v in row] for row in ang[:8].tolist()
        ],
        "force_calls_measuring": pot.force_calls - before,
    }


def mean_path_barrier(q: GaussianPathMarginal, dyn: OverdampedLangevin, u_ref: float) -> float:
    with torch.no_grad():
        mu = q(torch.linspace(0, 1, 401, dtype=q.start.dtype))[0][:, 0]
        return float(dyn.energy(mu).max()) - u_ref


def run_doob(mol, steps, batch, checkpoints, n_paths, seed, width):
    torch.manual_seed(seed)
    pot = mol.potential()
    dyn = OverdampedLangevin(pot, kT=KT_300K, gamma=GAMMA)
    u_ref = max(mol.energy_c7eq, mol.energy_c7ax)
    q = GaussianPathMarginal(mol.c7eq, mol.c7ax, T, dyn.diffusion, hidden=128)
    with torch.no_grad():  # start narrower than the Brownian bridge (0.05 nm at mid-path)
        last = q.net[-1]
        assert isinstance(last, torch.nn.Linear)
        last.bias.view(1, q.dim + 1)[:, q.dim] = math.log(width)
    gen = torch.Generator().manual_seed(seed + 100)
    rows, losses, seconds = [], [], 0.0
    chunk = steps // checkpoints
    train_calls = 0
    for c in range(checkpoints):
        before = pot.force_calls
        h = fit_doob(q, dyn, steps=chunk, batch_size=batch, lr=3e-3 * 0.7**c, seed=seed + c)
        train_calls += pot.force_calls - before
        seconds += h["seconds"]
        losses += h["loss"]
        t0 = time.perf_counter()
        paths = sample_linear_sde(q, n_paths, N_STEPS, gen)
        sample_s = time.perf_counter() - t0
        stats = path_quality(dyn, paths, u_ref, mol)
        with torch.no_grad():
            sigma_mid = float(q(torch.tensor([0.5], dtype=q.start.dtype))[1][0, 0])
        row = {
            "evaluations": dyn.evaluations,
            "force_calls": train_calls,
            "seconds": seconds,
            "sampling_seconds": sample_s,
            "loss": sum(h["loss"][-20:]) / min(20, len(h["loss"])),
            "mean_path_max_energy": mean_path_barrier(q, dyn, u_ref),
            "sigma_mid_nm": sigma_mid,
            **stats,
        }
        rows.append(row)
        print(
            f"doob: {dyn.evaluations:>9} evaluations  {train_calls:>9} force calls  "
            f"{seconds:6.1f} s  loss {row['loss']:9.4g}  "
            f"mean path {row['mean_path_max_energy']:6.1f}"
            f"  MinMax {stats['min_max_energy']:6.1f}  median {stats['median_max_energy']:6.1f}  "
            f"logL/step {stats['mean_log_likelihood']:.2f}",
            flush=True,
        )
    return {"checkpoints": rows, "loss": losses[::10]}, q, paths


def run_shooting(mol, shots, checkpoints, n_eval, seed, max_time_s):
    pot = mol.potential()
    dyn = OverdampedLangevin(pot, kT=KT_300K, gamma=GAMMA)
    u_ref = max(mol.energy_c7eq, mol.energy_c7ax)
    a, b = mol.c7eq, mol.c7ax
    line = torch.stack([a + (b - a) * s for s in torch.linspace(0, 1, N_STEPS + 1)])
    t0 = time.perf_counter()
    done, accepted_paths, at, flags = 0, [], [], []
    evaluations = 0
    path = line
    chunk = max(1, shots // 20)
    while done < shots and time.perf_counter() - t0 < max_time_s:
        # in chunks so that a time limit can stop it; each chunk continues from the last path
        out = two_way_shooting(
            dyn,
            path,
            n_shots=min(chunk, shots - done),
            dt=DT,
            basin_radius=RADIUS,
            start=cv(mol)(a),
            end=cv(mol)(b),
            seed=seed + done,
            collective_variable=cv(mol),
        )
        new = out["paths"][1:]
        accepted_paths += list(new)
        at += [evaluations + e for e in out["evaluations_at_accept"]]
        flags += out["accepted"]
        evaluations += out["evaluations"]
        done += len(out["accepted"])
        path = out["paths"][-1]
        print(
            f"  shooting {done}/{shots}: {evaluations} evaluations, {len(at)} accepted, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    seconds = time.perf_counter() - t0
    rows = []
    for c in range(1, checkpoints + 1):
        budget = evaluations * c // checkpoints
        n = sum(1 for e in at if e <= budget)
        row: dict[str, Any] = {"evaluations": budget, "accepted": n}
        if n:
            pick = torch.linspace(0, n - 1, min(n, n_eval)).round().long().unique()
            sel = torch.stack([accepted_paths[i] for i in pick.tolist()], 1)
            row.update(path_quality(dyn, sel, u_ref, mol))
        rows.append(row)
    last = rows[-1]
    print(
        f"shooting: {evaluations:>9} evaluations  {seconds:6.1f} s  accepted {len(at)}/{done}"
        f"  first at {at[0] if at else None}  "
        f"MinMax {last.get('min_max_energy', float('nan')):6.1f}"
        f"  median {last.get('median_max_energy', float('nan')):6.1f}",
        flush=True,
    )
    result = {
        "shots": done,
        "accepted": len(at),
        "evaluations": evaluations,
        "force_calls": evaluations,  # one OpenMM call per step: no second derivatives
        "evaluations_at_accept": at,
        "seconds": seconds,
        "checkpoints": rows,
    }
    return result, accepted_paths


def run_md(mol, walkers, steps, seed):
    pot = mol.potential()
    dyn = OverdampedLangevin(pot, kT=KT_300K, gamma=GAMMA)
    f = cv(mol)
    b = f(mol.c7ax)
    gen = torch.Generator().manual_seed(seed)
    x = mol.c7eq.repeat(walkers, 1)
    arrived = torch.zeros(walkers, dtype=torch.bool)
    first = None
    window = [x]  # the last N_STEPS + 1 frames: an equilibrium segment of a path's length
    t0 = time.perf_counter()
    for _ in range(steps):
        x = dyn.step(x, DT, gen)
        window = window[-N_STEPS:] + [x]
        arrived |= (f(x) - b).norm(dim=-1) < RADIUS
        if first is None and bool(arrived.any()):
            first = dyn.evaluations
    seconds = time.perf_counter() - t0
    # what thermal noise alone gives: MinMax of segments that stay in C7eq
    floor = path_quality(dyn, torch.stack(window), max(mol.energy_c7eq, mol.energy_c7ax), mol)
    print(
        f"plain MD: {dyn.evaluations:>9} evaluations  {seconds:6.1f} s  "
        f"{int(arrived.sum())} of {walkers} walkers reached C7ax; segments of "
        f"{len(window) - 1} steps in C7eq: MinMax {floor['min_max_energy']:.1f} median "
        f"{floor['median_max_energy']:.1f} logL/step {floor['mean_log_likelihood']:.2f}",
        flush=True,
    )
    return {
        "walkers": walkers,
        "steps": steps,
        "evaluations": dyn.evaluations,
        "reached_c7ax": int(arrived.sum()),
        "evaluations_at_first_arrival": first,
        "seconds": seconds,
        "equilibrium_segments": floor,
    }


def adiabatic_map(mol: AlanineDipeptide, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Energies of restrained minima on an n x n (phi, psi) grid (for the picture only)."""
    import openmm as mm
    import openmm.unit as unit

    system = mm.XmlSerializer.deserialize(mm.XmlSerializer.serialize(mol.system))
    force = mm.CustomTorsionForce("2000*(1 - cos(theta - theta0))")
    force.addPerTorsionParameter("theta0")
    force.addTorsion(*mol.phi_atoms, [0.0])
    force.addTorsion(*mol.psi_atoms, [0.0])
    system.addForce(force)
    ctx = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    bare = mol.potential()
    grid = np.linspace(-math.pi, math.pi, n, endpoint=False) + math.pi / n
    energy = np.zeros((n, n))
    start = mol.c7eq.view(22, 3).numpy()
    for i, phi in enumerate(grid):
        pos = start
        for j, psi in enumerate(grid):
            force.setTorsionParameters(0, *mol.phi_atoms, [phi])
            force.setTorsionParameters(1, *mol.psi_atoms, [psi])
            force.updateParametersInContext(ctx)
            ctx.setPositions(pos)
            mm.LocalEnergyMinimizer.minimize(ctx, 5.0, 200)
            pos = ctx.getState(getPositions=True).getPositions(asNumpy=True)
            pos = np.asarray(pos.value_in_unit(unit.nanometer))
            energy[j, i] = float(bare(torch.from_numpy(pos.reshape(-1).copy())))
        start = pos
    return np.degrees(grid), energy


def plot(path: Path, mol, doob_paths, shooting_paths, results, background, mean_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    u_ref = max(mol.energy_c7eq, mol.energy_c7ax)
    pot = mol.potential()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    sets = (
        (axes[0], "Doob's Lagrangian: 16 sampled paths", doob_paths[:, :16]),
        (axes[1], "two-way shooting: accepted paths", shooting_paths),
    )
    ends = torch.stack(dihedrals(torch.stack([mol.c7eq, mol.c7ax]), mol), -1).rad2deg()
    for ax, title, ps in sets:
        if background is not None:
            grid, energy = background
            cf = ax.contourf(
                grid, grid, np.minimum(energy - energy.min(), 80), levels=16, cmap="Greys_r"
            )
            if ax is axes[1]:
                fig.colorbar(cf, ax=ax, label="adiabatic map (kJ/mol, cut at 80)")
        if ps is not None and len(ps):
            pts = ps[::20].reshape(-1, ps.shape[-1])  # every 20th frame
            with torch.no_grad():
                e = pot(pts) - u_ref
            ang = torch.stack(dihedrals(pts, mol), -1).rad2deg()
            sc = ax.scatter(
                ang[:, 0], ang[:, 1], c=e.clamp(max=150), s=2, cmap="viridis", vmin=0, vmax=150
            )
            if ax is axes[0]:
                fig.colorbar(sc, ax=ax, label="U - U(C7ax) (kJ/mol, cut at 150)")
        else:
            ax.text(0, 0, "no accepted path", ha="center")
        if ax is axes[0] and mean_path is not None:
            ang = torch.stack(dihedrals(mean_path, mol), -1).rad2deg()
            ax.plot(ang[:, 0], ang[:, 1], "r-", lw=1, label="the learned mean path")
            ax.legend(fontsize=7, loc="lower left")
        ax.plot(ends[:, 0], ends[:, 1], "r*", ms=12)
        ax.annotate("C7eq", ends[0].tolist(), color="r", xytext=(5, 5), textcoords="offset points")
        ax.annotate("C7ax", ends[1].tolist(), color="r", xytext=(5, 5), textcoords="offset points")
        ax.set(title=title, xlabel="phi (deg)", ylabel="psi (deg)", xlim=(-180, 180))
        ax.set(ylim=(-180, 180), aspect="equal")
    ax = axes[2]
    rows = results["doob"]["checkpoints"]
    ax.plot(
        [r["evaluations"] for r in rows],
        [r["median_max_energy"] for r in rows],
        "o-",
        color="C3",
        label="Doob: median over sampled paths",
    )
    ax.plot(
        [r["evaluations"] for r in rows],
        [r["mean_path_max_energy"] for r in rows],
        "o--",
        color="C1",
        label="Doob: the mean path",
    )
    rows = [r for r in results["shooting"]["checkpoints"] if r["accepted"]]
    if rows:
        ax.plot(
            [r["evaluations"] for r in rows],
            [r["median_max_energy"] for r in rows],
            "s-",
            color="C0",
            label="two-way shooting: median over accepted paths",
        )
    ax.set(
        xscale="log",
        xlabel="energy evaluations (drifts)",
        ylabel="MinMax energy (kJ/mol)",
        title="path energy against cost",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke test (< 60 s)")
    ap.add_argument("--out", default="benchmarks/results/alanine_paths")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float64)
    t_start = time.perf_counter()
    mol = alanine_dipeptide()
    if args.quick:
        doob = dict(steps=40, batch=32, checkpoints=2, n_paths=8)
        shots, n_eval, walkers, md_steps, grid, shoot_s = 6, 8, 8, 200, 6, 30.0
    else:
        doob = dict(steps=3000, batch=256, checkpoints=5, n_paths=64)
        shots, n_eval, walkers, md_steps, grid, shoot_s = 600, 64, 32, 10000, 36, 600.0
    phi_psi = torch.stack(dihedrals(torch.stack([mol.c7eq, mol.c7ax]), mol), -1).rad2deg()
    results: dict[str, Any] = {
        "settings": {
            "forcefield": "amber14-all.xml (ff14SB), vacuum, NoCutoff, no constraints",
            "kT_kJ_per_mol": KT_300K,
            "gamma_amu_per_ps": GAMMA,
            "dt_ps": DT,
            "T_ps": T,
            "n_steps": N_STEPS,
            "basin_radius_deg": math.degrees(RADIUS),
            "c7eq_phi_psi_deg": phi_psi[0].tolist(),
            "c7ax_phi_psi_deg": phi_psi[1].tolist(),
            "energy_c7eq": mol.energy_c7eq,
            "energy_c7ax": mol.energy_c7ax,
            "quick": args.quick,
            **{f"doob_{k}": v for k, v in doob.items()},
            "shots": shots,
            "md_walkers": walkers,
            "md_steps": md_steps,
            "seed": args.seed,
            "threads": args.threads,
        }
    }
    results["doob"], q, doob_paths = run_doob(mol, seed=args.seed, width=0.1, **doob)
    results["shooting"], accepted = run_shooting(
        mol, shots, doob["checkpoints"], n_eval, args.seed, shoot_s
    )
    results["md"] = run_md(mol, walkers, md_steps, args.seed)
    background = None
    if grid:
        t0 = time.perf_counter()
        background = adiabatic_map(mol, grid)
        results["adiabatic_map_seconds"] = time.perf_counter() - t0
    results["total_seconds"] = time.perf_counter() - t_start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(out / "results.json")
    shoot = torch.stack(accepted[-30:], 1) if accepted else None
    with torch.no_grad():
        mean_path = q(torch.linspace(0, 1, 201, dtype=q.start.dtype))[0][:, 0]
    plot(out / "paths.png", mol, doob_paths, shoot, results, background, mean_path)
    print(
        f"wrote {out / 'results.json'} and {out / 'paths.png'} ({results['total_seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
