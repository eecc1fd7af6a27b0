"""The property every fuzz test checks: a clear error or a finite answer.

A call either raises ``ValueError``/``TypeError`` whose message names the bad value (one of
the given words), or returns tensors that are all finite. Any other exception, an error
with an uninformative message, or a NaN/inf output fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from hypothesis import settings

#: the settings of the slow fuzz tests (registered in conftest.py)
LONG = settings.get_profile("long")


def tensors(out: Any) -> Iterable[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, np.ndarray):
        yield torch.from_numpy(np.asarray(out, dtype=np.float64))
    elif isinstance(out, dict):
        for v in out.values():
            yield from tensors(v)
    elif isinstance(out, (list, tuple)):
        for v in out:
            yield from tensors(v)


def error_or_finite(fn: Callable[[], Any], names: Iterable[str]) -> Any:
    """``fn()`` if all its tensors are finite, ``None`` if it raised a clear error."""
    try:
        out = fn()
    except (ValueError, TypeError) as e:
        msg = str(e)
        words = list(names)
        assert any(w in msg for w in words), f"{type(e).__name__} names none of {words}: {msg}"
        return None
    for t in tensors(out):
        if t.is_floating_point() or t.is_complex():
            assert bool(torch.isfinite(t).all()), f"non-finite output {t}"
    return out
