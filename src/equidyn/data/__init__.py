"""equidyn.data."""
