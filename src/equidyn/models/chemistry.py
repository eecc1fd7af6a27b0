"""Chemistry tables: element symbols, formulas and the names of structures in error messages.

>>> symbol(29), formula([29, 29, 79, 29])
('Cu', 'Cu3Au')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import Tensor

from equidyn.graph.batch import AtomicGraph

if TYPE_CHECKING:
    from equidyn.models.potential import Potential

__all__ = ["describe", "describe_unknown_species", "formula", "symbol"]

_SYMBOLS = (
    "X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As "
    "Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd "
    "Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am "
    "Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
).split()


def symbol(z: int) -> str:
    """Chemical symbol of atomic number ``z`` (``"X"`` for 0, ``"Z=z"`` out of range).

    >>> symbol(29), symbol(200)
    ('Cu', 'Z=200')
    """
    return _SYMBOLS[z] if 0 <= z < len(_SYMBOLS) else f"Z={z}"


def formula(atomic_numbers: Sequence[int] | Tensor) -> str:
    """Chemical formula in order of first appearance, e.g. ``"Cu3Au"``.

    >>> formula([29, 29, 79, 29])
    'Cu3Au'
    """
    counts: dict[int, int] = {}
    for z in atomic_numbers.tolist() if isinstance(atomic_numbers, Tensor) else atomic_numbers:
        counts[int(z)] = counts.get(int(z), 0) + 1
    return "".join(symbol(z) + (str(n) if n > 1 else "") for z, n in counts.items())


def describe(graph: AtomicGraph, b: int) -> str:
    """A name for structure ``b`` of a batch in error messages: ``"structure 2 (Cu3Au)"``."""
    lo, hi = int(graph.ptr[b]), int(graph.ptr[b + 1])
    return f"structure {b} ({formula(graph.atomic_numbers[lo:hi])})"


def describe_unknown_species(potential: Potential, graph: AtomicGraph) -> str | None:
    """``None`` if ``potential`` knows every species of ``graph``, else a message naming them."""
    known = set(potential.atomic_numbers)
    unknown = sorted({int(z) for z in graph.atomic_numbers.tolist()} - known)
    if not unknown:
        return None
    names = ", ".join(f"{symbol(z)} (Z={z})" for z in unknown)
    return f"species {names} not known to the model; it knows " + ", ".join(
        symbol(z) for z in potential.atomic_numbers
    )
