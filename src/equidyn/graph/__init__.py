"""equidyn.graph."""
