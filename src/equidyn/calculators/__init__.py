"""ASE calculator and molecular dynamics with equidyn potentials."""

from equidyn.calculators.calculator import EquidynCalculator
from equidyn.calculators.md import run_md

__all__ = ["EquidynCalculator", "run_md"]
