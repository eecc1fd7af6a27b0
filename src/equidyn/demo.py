r"""``equidyn demo``: a two-second tour of the O(3) core.

It builds a feature of irreps ``2x0e + 1x1o + 1x2e``, rotates and reflects it with
``Irreps.D_from_matrix``, checks that spherical harmonics commute with rotations and
reflections, :math:`Y(Rx) = D(R)\,Y(x)`, and prints the Clebsch–Gordan tensor
:math:`C^{1 \otimes 1 \to 0}`, which is the dot product :math:`\delta_{ij}/\sqrt{3}`.

>>> from equidyn.demo import run
>>> errors = run(verbose=False)
>>> max(errors.values()) < 1e-12
True
"""

from __future__ import annotations

import argparse

import torch

from equidyn import o3


def run(verbose: bool = True, seed: int = 0) -> dict[str, float]:
    """Run the demonstration; return the float64 equivariance errors it measured."""
    g = torch.Generator().manual_seed(seed)
    say = print if verbose else (lambda *a, **k: None)
    dtype = torch.float64

    irreps = o3.Irreps("2x0e + 1x1o + 1x2e")
    x = irreps.randn(-1, generator=g, dtype=dtype)  # [irreps.dim]
    R = o3.rand_matrix(generator=g, dtype=dtype)  # [3, 3]
    say(f"irreps {irreps}: dim {irreps.dim}, lmax {irreps.lmax}")
    say(f"a random feature x:           {_fmt(x)}")
    say(f"rotated, D(R) x:              {_fmt(irreps.D_from_matrix(R) @ x)}")
    say(f"reflected through the origin: {_fmt(irreps.D_from_matrix(-R) @ x)}")
    say("  (0e scalars are unchanged, the 1o vector and the 2e tensor rotate; under -R the")
    say("   vector also flips sign, the even 2e block does not)")

    errors: dict[str, float] = {}
    ls = [0, 1, 2, 3, 4]
    sh_irreps = o3.Irreps.spherical_harmonics(max(ls))
    v = torch.randn(1000, 3, generator=g, dtype=dtype)  # [1000, 3]
    for name, M in [("rotation", R), ("reflection", -R)]:
        lhs = o3.spherical_harmonics(ls, v @ M.T, normalize=True)  # [1000, 25]
        rhs = o3.spherical_harmonics(ls, v, normalize=True) @ sh_irreps.D_from_matrix(M).T
        errors[f"spherical harmonics, {name}"] = float((lhs - rhs).abs().max())
    say(f"\nspherical harmonics l = 0..{max(ls)} ({sh_irreps}) on 1000 random vectors:")
    for k, e in errors.items():
        say(f"  max |Y(Mx) - D(M) Y(x)| under a {k.split(', ')[1]:<10}: {e:.2e}")

    C = o3.wigner_3j(1, 1, 0, dtype=dtype)  # [3, 3, 1]
    say("\nClebsch-Gordan coefficients C(1 x 1 -> 0), shape (3, 3, 1): the dot product / sqrt(3)")
    say(_fmt(C[..., 0] * 3**0.5))
    C = o3.wigner_3j(1, 2, 3, dtype=dtype)  # [3, 5, 7]
    D1, D2, D3 = (o3.wigner_D(l, R) for l in (1, 2, 3))
    rotated = torch.einsum("ijk,ia,jb,kc->abc", C, D1, D2, D3)
    err = errors["wigner_3j(1, 2, 3) invariance"] = float((rotated - C).abs().max())
    say(f"C(1 x 2 -> 3): Frobenius norm {C.norm():.12f}, invariance error {err:.2e}")
    return errors


def _fmt(t: torch.Tensor) -> str:
    return str(torch.round(t, decimals=3).numpy())


def main(argv: list[str] | None = None) -> int:
    """``equidyn demo [--seed N]``."""
    parser = argparse.ArgumentParser(prog="equidyn demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    errors = run(verbose=True, seed=args.seed)
    worst = max(errors.values())
    print(
        f"\nlargest float64 equivariance error: {worst:.2e} ({'OK' if worst < 1e-10 else 'FAIL'})"
    )
    return 0 if worst < 1e-10 else 1
