"""Where equidyn keeps what it makes on first use (data sets, compiled kernels)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir"]


def default_cache_dir() -> Path:
    """``$EQUIDYN_CACHE`` if set, else ``~/.cache/equidyn``.

    >>> import os
    >>> os.environ["EQUIDYN_CACHE"] = "/tmp/equidyn-doctest"
    >>> str(default_cache_dir())
    '/tmp/equidyn-doctest'
    >>> del os.environ["EQUIDYN_CACHE"]
    """
    env = os.environ.get("EQUIDYN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "equidyn"
