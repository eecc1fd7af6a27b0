"""equidyn.nn."""
