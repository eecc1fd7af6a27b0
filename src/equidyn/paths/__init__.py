"""Transition path sampling: Doob's Lagrangian and the two-way shooting baseline.

:class:`OverdampedLangevin` is the reference dynamics in any differentiable potential (the
analytic :class:`MullerBrown` surface, or an equidyn model's energy); :func:`fit_doob` trains
a :class:`GaussianPathMarginal` by minimising :func:`doob_lagrangian`, and
:func:`sample_paths` draws transition paths from it; :func:`two_way_shooting` is the Monte
Carlo baseline, and :func:`path_statistics` compares the two. :mod:`equidyn.paths.openmm`
(needs ``openmm``) has alanine dipeptide in vacuum and an OpenMM system's energy as a twice
differentiable torch module, for the same methods on a molecule.
"""

from equidyn.paths.doob import doob_lagrangian, fit_doob, sample_paths
from equidyn.paths.langevin import OverdampedLangevin
from equidyn.paths.marginal import GaussianPathMarginal
from equidyn.paths.metrics import path_statistics
from equidyn.paths.potentials import MullerBrown
from equidyn.paths.shooting import two_way_shooting

__all__ = [
    "GaussianPathMarginal",
    "MullerBrown",
    "OverdampedLangevin",
    "doob_lagrangian",
    "fit_doob",
    "path_statistics",
    "sample_paths",
    "two_way_shooting",
]
