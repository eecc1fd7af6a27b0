"""equidyn.calculators."""
