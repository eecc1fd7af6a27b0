r"""Reproducible train / validation / test splits.

A permutation :math:`\pi` of :math:`0 \dots n-1` drawn from ``numpy.random.default_rng(seed)``
is cut into consecutive, disjoint pieces of sizes :math:`n_\mathrm{train}, n_\mathrm{val},
n_\mathrm{test}`; sizes are counts (int) or fractions of :math:`n` (float in (0, 1]).

>>> train, val, test = split_indices(10, 6, 2, seed=0)
>>> len(train), len(val), len(test), sorted(train + val + test) == list(range(10))
(6, 2, 2, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["split_indices"]


def _size(value: int | float, n_total: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be an int count or a float fraction, got {value!r}")
    if isinstance(value, (float, np.floating)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} as a fraction must be in [0, 1], got {value}")
        return int(round(value * n_total))
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def split_indices(
    n_total: int,
    n_train: int | float,
    n_val: int | float,
    n_test: int | float | None = None,
    seed: int = 0,
) -> tuple[list[int], list[int], list[int]]:
    """Disjoint random index lists ``(train, val, test)``; ``n_test=None`` takes the rest.

    The same ``seed`` gives the same split; a larger ``n_train`` with the same seed extends
    the training set of a smaller one (the permutation is cut from the front) and, with
    ``n_val`` and ``n_test`` fixed, keeps validation and test sets fixed (learning curves).
    """
    if isinstance(n_total, bool) or not isinstance(n_total, (int, np.integer)) or n_total < 0:
        raise ValueError(f"n_total must be a non-negative int, got {n_total!r}")
    a = _size(n_train, n_total, "n_train")
    b = _size(n_val, n_total, "n_val")
    c = n_total - a - b if n_test is None else _size(n_test, n_total, "n_test")
    if a + b + c > n_total or c < 0:
        raise ValueError(
            f"split sizes train={a} + val={b} + test={c} exceed the {n_total} structures"
        )
    perm = np.random.default_rng(seed).permutation(n_total).tolist()
    # validation and test come from the end: with fixed n_val, n_test, growing n_train
    # keeps them fixed
    test = perm[n_total - c :] if c else []
    val = perm[n_total - c - b : n_total - c] if b else []
    return perm[:a], val, test
