"""equidyn.train."""
