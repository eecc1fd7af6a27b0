"""The argument checks shared by the transition-path modules (each error names the value)."""

from __future__ import annotations

import math

__all__ = ["check_int", "check_positive"]


def check_positive(name: str, value: object) -> None:
    """``ValueError`` unless ``value`` is a finite number > 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def check_int(name: str, value: object, minimum: int = 1) -> None:
    """``ValueError`` unless ``value`` is an int (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
