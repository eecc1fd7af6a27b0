"""equidyn.dynamics."""
