"""ASE calculator and molecular dynamics with equidyn potentials."""

from equidyn.calculators.calculator import EquidynCalculator

__all__ = ["EquidynCalculator"]
