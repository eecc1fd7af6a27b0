"""The model registry: one place that turns a name and keyword arguments into a model.

``@register_model`` records a class under its name *and* wraps its ``__init__`` so that every
instance remembers the arguments it was built with, bound to the signature with the defaults
filled in (:func:`model_config`). A saved config therefore cannot drift from the constructor:
it *is* the bound call. Deprecated argument names (see :mod:`equidyn._deprecation`) are
translated before binding, so old configs load and are saved again under the new names.

The registry fills itself on import of :mod:`equidyn.models`; :func:`resolve_model` and
:func:`build_model` serve the trainer, :class:`~equidyn.models.Potential` and the CLI alike.

>>> import torch
>>> @register_model(kind="potential")
... class Toy(torch.nn.Module):
...     def __init__(self, r_max: float = 3.0, width: int = 4) -> None:
...         super().__init__()
...         self.lin = torch.nn.Linear(width, 1)
>>> model_config(Toy(width=8))
{'r_max': 3.0, 'width': 8}
>>> model_config(build_model("Toy", {"r_max": 2.5}))
{'r_max': 2.5, 'width': 4}
>>> build_model("Toy", {"depth": 2})
Traceback (most recent call last):
...
ValueError: Toy got unknown argument(s) ['depth']; valid arguments: ['r_max', 'width']
>>> del MODEL_REGISTRY["Toy"]
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, overload

from torch import nn

from equidyn._deprecation import translate_renamed

__all__ = [
    "MODEL_KINDS",
    "MODEL_REGISTRY",
    "build_model",
    "constructor_arguments",
    "model_config",
    "model_kind",
    "register_model",
    "registered_models",
    "resolve_model",
]

#: the contracts a registered model can follow
MODEL_KINDS = ("potential", "particle", "forecast")

#: class name -> class, filled by :func:`register_model` on import of :mod:`equidyn.models`
MODEL_REGISTRY: dict[str, type[nn.Module]] = {}
_KIND: dict[str, str] = {}

M = TypeVar("M", bound=type[nn.Module])
_CONFIG_ATTR = "_equidyn_config"


def _plain(value: Any) -> Any:
    """A config value as plain data (tuples become lists, irreps and the like strings)."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, nn.Module):
        return value  # a sub-model given by the user (e.g. a NeuralODE field): kept as is
    return str(value)


def _renames(init: Callable[..., Any]) -> dict[str, str]:
    return dict(getattr(init, "__renamed_arguments__", {}))


def _record_init(cls: type[nn.Module]) -> None:
    init = cls.__init__
    signature = inspect.signature(init)
    renames = _renames(init)

    @functools.wraps(init)
    def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        kwargs = translate_renamed(cls.__name__, renames, kwargs)
        init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        config = {k: _plain(v) for k, v in list(bound.arguments.items())[1:]}
        # the outermost registered __init__ runs last and wins (subclasses record their own)
        object.__setattr__(self, _CONFIG_ATTR, config)

    cls.__init__ = __init__  # type: ignore[method-assign]


@overload
def register_model(cls: M, *, kind: str = ...) -> M: ...
@overload
def register_model(cls: None = ..., *, kind: str = ...) -> Callable[[M], M]: ...
def register_model(cls: M | None = None, *, kind: str = "potential") -> M | Callable[[M], M]:
    """Class decorator: make a model buildable by name and record its constructor arguments.

    ``kind`` is the contract it follows: ``"potential"`` (per-atom energies from species and
    edge vectors, wrapped by :class:`~equidyn.models.Potential`), ``"particle"`` (positions,
    velocities, attributes → next state, :class:`~equidyn.models.ParticleModel`) or
    ``"forecast"`` (a window of past frames → positions ahead,
    :class:`~equidyn.models.forecasting.ForecastModel`).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")

    def decorate(c: M) -> M:
        _record_init(c)
        MODEL_REGISTRY[c.__name__] = c
        _KIND[c.__name__] = kind
        return c

    return decorate if cls is None else decorate(cls)


def registered_models(kind: str | None = None) -> list[str]:
    """Sorted names of the registered models (of one ``kind`` if given)."""
    return sorted(n for n in MODEL_REGISTRY if kind is None or _KIND[n] == kind)


def resolve_model(name: str, kind: str | None = None) -> type[nn.Module]:
    """The registered class called ``name`` (of contract ``kind`` if given)."""
    if not isinstance(name, str) or name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {registered_models(kind)}")
    if kind is not None and _KIND[name] != kind:
        raise ValueError(
            f"model {name!r} is a {_KIND[name]} model, not a {kind} model; "
            f"expected one of {registered_models(kind)}"
        )
    return MODEL_REGISTRY[name]


def model_kind(name: str) -> str:
    """The contract (one of :data:`MODEL_KINDS`) of the registered model ``name``."""
    resolve_model(name)
    return _KIND[name]


def constructor_arguments(cls: type[nn.Module]) -> dict[str, inspect.Parameter]:
    """The keyword arguments of ``cls``'s constructor (without ``self``)."""
    params = inspect.signature(cls.__init__).parameters
    return {k: p for k, p in params.items() if k != "self"}


def build_model(name: str, kwargs: dict[str, Any], kind: str | None = None) -> nn.Module:
    """Build the registered model ``name`` from keyword arguments ``kwargs``.

    Unknown names and unknown arguments raise ``ValueError`` naming them and the valid ones;
    deprecated argument names are accepted (with a ``FutureWarning``).
    """
    cls = resolve_model(name, kind)
    if not isinstance(kwargs, dict):
        raise TypeError(f"arguments of {name} must be a mapping, got {type(kwargs).__name__}")
    valid = list(constructor_arguments(cls))
    renames = _renames(cls.__init__)
    bad = sorted(set(kwargs) - set(valid) - set(renames))
    if bad:
        raise ValueError(f"{name} got unknown argument(s) {bad}; valid arguments: {valid}")
    return cls(**kwargs)


def model_config(model: nn.Module) -> dict[str, Any]:
    """The arguments ``model`` was built with (a registered model), defaults included."""
    config = getattr(model, _CONFIG_ATTR, None)
    if config is None:
        raise TypeError(
            f"{type(model).__name__} is not a registered model (decorate it with "
            "@register_model); its constructor arguments were not recorded"
        )
    return dict(config)
