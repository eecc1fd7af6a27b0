"""equidyn.models."""
