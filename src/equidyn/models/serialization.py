"""Model files: a :class:`~equidyn.models.Potential` as plain data, and back.

A model file holds the class name of the atomic energy model, its constructor arguments
(:func:`equidyn.models.registry.model_config`: the bound call, defaults included), the state
dict, the species, reference energies, scale, shift and dtype. :func:`load_model` rebuilds the
model through the registry, so a file needs no training configuration, and a file written with
argument names that were renamed since still loads (with a ``FutureWarning`` naming the new
names).

>>> import tempfile, torch
>>> from equidyn.models import NequIP, Potential
>>> pot = Potential(NequIP(num_species=1, r_max=3.0, l_max=1, num_features=2, num_layers=1), [14])
>>> d = potential_to_dict(pot)
>>> d["model_class"], d["model_config"]["num_basis"]
('NequIP', 8)
>>> with tempfile.TemporaryDirectory() as tmp:
...     save_model(pot, f"{tmp}/model.pt")
...     load_model(f"{tmp}/model.pt").atomic_numbers
[14]
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch

from equidyn.models.registry import build_model, model_config

if TYPE_CHECKING:
    from equidyn.models.potential import Potential

__all__ = [
    "FORMAT",
    "as_potential",
    "load_model",
    "potential_from_dict",
    "potential_to_dict",
    "save_model",
]

#: the ``format`` entry of every model file
FORMAT = "equidyn-potential"


def potential_to_dict(potential: Potential) -> dict[str, Any]:
    """Everything needed to rebuild ``potential`` (see :func:`potential_from_dict`).

    The model must be registered (``@register_model``) so its arguments were recorded.
    """
    return {
        "format": FORMAT,
        "version": 1,
        "model_class": type(potential.model).__name__,
        "model_config": model_config(potential.model),
        "atomic_numbers": list(potential.atomic_numbers),
        "reference_energies": potential.reference_energies.tolist(),
        "scale": float(potential.scale),
        "shift": float(potential.shift),
        "state_dict": {k: v.detach().cpu() for k, v in potential.state_dict().items()},
        "dtype": str(potential.scale.dtype).replace("torch.", ""),
    }


def potential_from_dict(d: dict[str, Any]) -> Potential:
    """Inverse of :func:`potential_to_dict`: the model built by
    :func:`~equidyn.models.registry.build_model` (old argument names translated), its weights
    loaded strictly."""
    from equidyn.models.potential import Potential

    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"not an equidyn potential (missing format={FORMAT!r})")
    model = build_model(d["model_class"], dict(d["model_config"]), kind="potential")
    pot = Potential(model, d["atomic_numbers"], d["reference_energies"], d["scale"], d["shift"])
    pot = pot.to(getattr(torch, d.get("dtype", "float32")))
    pot.load_state_dict(d["state_dict"])
    return pot


def save_model(potential: Potential, path: str | os.PathLike[str]) -> None:
    """Write ``potential`` to ``path`` (atomically) so :func:`load_model` rebuilds it."""
    from equidyn._io import atomic_save

    atomic_save(potential_to_dict(potential), path)


def load_model(path: str | os.PathLike[str]) -> Potential:
    """Load a model file written by :func:`save_model` (or by ``equidyn train``), in eval mode.

    A training checkpoint (``checkpoint.pt``) also works: its model is loaded.
    """
    from equidyn._io import load_checkpoint

    d = load_checkpoint(path)
    if isinstance(d, dict) and "potential" in d and "format" not in d:
        d = d["potential"]  # a training checkpoint also holds the model
    try:
        pot = potential_from_dict(d)
    except ValueError as e:
        raise ValueError(f"{str(path)!r}: {e}") from None
    return pot.eval()


def as_potential(model: Potential | str | os.PathLike[str], dtype: torch.dtype) -> Potential:
    """``model`` (a :class:`~equidyn.models.potential.Potential` or a model file) in ``dtype``
    (float32 or float64) and eval mode, as the calculators evaluate it.

    >>> as_potential(3, torch.float64)
    Traceback (most recent call last):
    ...
    TypeError: model must be a Potential or a model file path, got int
    """
    from equidyn.models.potential import Potential

    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if not isinstance(model, Potential):
        raise TypeError(
            f"model must be a Potential or a model file path, got {type(model).__name__}"
        )
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return model.to(dtype).eval()
