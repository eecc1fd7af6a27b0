"""Deprecated argument names, accepted for one release with a warning.

Models share one vocabulary (``num_features``, ``num_layers``, ``l_max``, ``r_max``,
``num_basis``...). Old names keep working for one release: :func:`renamed_arguments` maps them
onto the new ones and warns with a :class:`FutureWarning` naming both.

>>> import warnings
>>> class Model:
...     @renamed_arguments(n_layers="num_layers")
...     def __init__(self, num_layers: int = 2) -> None:
...         self.num_layers = num_layers
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     Model(n_layers=3).num_layers
3
>>> str(caught[0].message)
"Model: argument 'n_layers' is deprecated, use 'num_layers'"
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["renamed_arguments", "translate_renamed"]


def translate_renamed(
    owner: str, renames: Mapping[str, str], kwargs: dict[str, Any], stacklevel: int = 3
) -> dict[str, Any]:
    """``kwargs`` with each old name in ``renames`` replaced by its new name (and a warning).

    Giving both the old and the new name is a ``TypeError``.
    """
    out = dict(kwargs)
    for old, new in renames.items():
        if old not in out:
            continue
        if new in out:
            raise TypeError(
                f"{owner}: got both {old!r} (deprecated) and {new!r}; give only {new!r}"
            )
        warnings.warn(
            f"{owner}: argument {old!r} is deprecated, use {new!r}",
            FutureWarning,
            stacklevel=stacklevel,
        )
        out[new] = out.pop(old)
    return out


def renamed_arguments(**renames: str) -> Callable[[F], F]:
    """Decorator of an ``__init__`` (or any function): accept ``old=new`` keyword renames.

    The mapping is kept on the wrapper as ``__renamed_arguments__`` so that tools which bind
    arguments to the signature (the model registry) can translate old names first.
    """

    def decorate(func: F) -> F:
        owner = func.__qualname__.split(".")[0]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **translate_renamed(owner, renames, kwargs))

        wrapper.__renamed_arguments__ = dict(renames)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate
