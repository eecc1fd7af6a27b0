"""Training configurations: YAML keys map one-to-one onto constructor arguments.

A configuration file has four sections::

    model_class: NequIP          # any registered model (equidyn.models.potential.MODEL_REGISTRY)
    model:                       # keyword arguments of NequIP(...), exactly
      r_max: 4.0
      l_max: 1
    data:                        # fields of DataConfig
      source: builtin:cuau-emt
      n_train: 500
    training:                    # fields of TrainingConfig
      epochs: 50
      lr: 0.01

Unknown keys raise ``ValueError`` listing the valid ones, and so do values of the wrong type
or out of range (``batch_size: four``, ``epochs: -3``), when the file is read, before any data
is loaded; an empty file is an error, not a default run. Model arguments that depend on the
data (``num_species``, ``avg_num_neighbors``) may be left out: the trainer fills them in from
the training set.

>>> cfg = Config.from_dict({"model": {"r_max": 4.0}, "training": {"epochs": 3}})
>>> cfg.model_class, cfg.training.epochs, cfg.data.source
('NequIP', 3, 'builtin:cuau-emt')
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DataConfig", "TrainingConfig", "Config", "load_config"]


@dataclass
class DataConfig:
    """Where the structures come from and how they are split.

    Attributes:
        source: a file ASE can read (extxyz, ...) or ``"builtin:cuau-emt"`` (generated on first
            use, see :mod:`equidyn.data.builtin`).
        n_structures: number of structures of a built-in set.
        n_train, n_val, n_test: split sizes (counts or fractions; ``n_test=None`` = the rest).
        split_seed: seed of the split (and of a built-in set's generation).
        energy_key, forces_key, stress_key: label keys in the file (``None`` = not used).
        type_map: species (symbols or Z) the model knows; default: those in the data.
        cache_dir: cache directory of built-in sets (default ``$EQUIDYN_CACHE`` or
            ``~/.cache/equidyn``).
    """

    source: str = "builtin:cuau-emt"
    n_structures: int = 3000
    n_train: int | float = 500
    n_val: int | float = 100
    n_test: int | float | None = 200
    split_seed: int = 0
    energy_key: str | None = "energy"
    forces_key: str | None = "forces"
    stress_key: str | None = "stress"
    type_map: list[str | int] | None = None
    cache_dir: str | None = None


@dataclass
class TrainingConfig:
    """Optimisation settings.

    Attributes:
        epochs: maximum number of passes over the training set.
        batch_size: structures per optimiser step.
        lr: initial learning rate of Adam.
        amsgrad: use the AMSGrad variant of Adam.
        weight_decay: L2 penalty of Adam.
        energy_weight, force_weight, stress_weight: loss weights (see :mod:`.losses`).
        ema_decay: decay of the exponential moving average of weights (``None`` = off).
        schedule: learning rate: ``"plateau"`` (``ReduceLROnPlateau`` on the validation
            loss), ``"constant"`` or ``"cosine"`` (annealed to 0 over ``epochs``).
        lr_factor, lr_patience, min_lr: the ``"plateau"`` schedule's settings.
        early_stopping_patience: stop after this many evaluations without a better
            validation loss (``None`` = never).
        eval_every: evaluate on the validation set every this many epochs (and after the
            last).
        max_grad_norm: clip the gradient norm (``None`` = no clipping).
        max_time_s: stop (cleanly, after the current epoch) once this much wall time passed.
        seed: seed of the model initialisation and the batch order.
        dtype: ``"float32"`` or ``"float64"``.
        output_dir: where checkpoints, the model file, the log and plots go.
        progress: show a progress bar.
        log_epochs: print one line of metrics per epoch.
        plots: write PNG plots (loss curves, force parity) at the end.
    """

    epochs: int = 100
    batch_size: int = 5
    lr: float = 0.01
    amsgrad: bool = True
    weight_decay: float = 0.0
    energy_weight: float = 1.0
    force_weight: float = 1.0
    stress_weight: float = 0.0
    ema_decay: float | None = 0.99
    schedule: str = "plateau"
    lr_factor: float = 0.5
    lr_patience: int = 10
    min_lr: float = 1e-6
    early_stopping_patience: int | None = 40
    eval_every: int = 1
    max_grad_norm: float | None = None
    max_time_s: float | None = None
    seed: int = 0
    dtype: str = "float32"
    output_dir: str = "equidyn-run"
    progress: bool = True
    log_epochs: bool = True
    plots: bool = True


_SCALARS: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "None": (type(None),),
}

#: value ranges checked when a config is read: field -> (test, what is expected)
_RANGES: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: v >= 1, "an int >= 1"),
    "batch_size": (lambda v: v >= 1, "an int >= 1"),
    "lr": (lambda v: 0 < v < float("inf"), "a finite number > 0"),
    "weight_decay": (lambda v: 0 <= v < float("inf"), "a finite number >= 0"),
    "energy_weight": (lambda v: 0 <= v < float("inf"), "a finite number >= 0"),
    "force_weight": (lambda v: 0 <= v < float("inf"), "a finite number >= 0"),
    "stress_weight": (lambda v: 0 <= v < float("inf"), "a finite number >= 0"),
    "ema_decay": (lambda v: v is None or 0 < v < 1, "a number in (0, 1) or null"),
    "schedule": (lambda v: v in ("plateau", "constant", "cosine"), "plateau, constant or cosine"),
    "lr_factor": (lambda v: 0 < v < 1, "a number in (0, 1)"),
    "lr_patience": (lambda v: v >= 0, "an int >= 0"),
    "min_lr": (lambda v: 0 <= v < float("inf"), "a finite number >= 0"),
    "early_stopping_patience": (lambda v: v is None or v >= 1, "an int >= 1 or null"),
    "eval_every": (lambda v: v >= 1, "an int >= 1"),
    "max_grad_norm": (lambda v: v is None or 0 < v < float("inf"), "a number > 0 or null"),
    "max_time_s": (lambda v: v is None or v > 0, "a number > 0 or null"),
    "dtype": (lambda v: v in ("float32", "float64"), "float32 or float64"),
    "n_structures": (lambda v: v >= 1, "an int >= 1"),
    "n_train": (lambda v: v > 0, "a count >= 1 or a fraction in (0, 1]"),
    "n_val": (lambda v: v >= 0, "a count or fraction >= 0"),
    "n_test": (lambda v: v is None or v >= 0, "a count or fraction >= 0, or null"),
}


def _allowed(annotation: str) -> tuple[type, ...] | None:
    """Python types allowed by a field annotation such as ``"int | float | None"``."""
    out: tuple[type, ...] = ()
    for part in annotation.split("|"):
        part = part.strip()
        if part.startswith("list["):
            out += (list,)
        elif part in _SCALARS:
            out += _SCALARS[part]
        else:
            return None  # not a type this checker knows: left to the consumer
    return out


def _check_value(name: str, value: Any, annotation: str, section: str) -> None:
    allowed = _allowed(annotation)
    if allowed is not None:
        is_bool = isinstance(value, bool)
        if not isinstance(value, allowed) or (is_bool and bool not in allowed):
            raise ValueError(
                f"{section}.{name} must be of type {annotation.replace(' | ', ' or ')}, "
                f"got {value!r} ({type(value).__name__})"
            )
    if name in _RANGES:
        test, expected = _RANGES[name]
        if not test(value):
            raise ValueError(f"{section}.{name} must be {expected}, got {value!r}")


def _build(cls: type, values: dict[str, Any] | None, section: str) -> Any:
    if values is not None and not isinstance(values, dict):
        raise ValueError(f"section '{section}' must be a mapping, got {values!r}")
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    bad = sorted(set(values) - set(fields))
    if bad:
        raise ValueError(f"unknown key(s) {bad} in section '{section}'; valid keys: {list(fields)}")
    for name, value in values.items():
        _check_value(name, value, str(fields[name].type), section)
    return cls(**values)


@dataclass
class Config:
    """A whole training run: model class and arguments, data, optimisation."""

    model_class: str = "NequIP"
    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        """Build from a parsed YAML mapping (unknown sections or keys raise ``ValueError``)."""
        if not isinstance(d, dict):
            raise ValueError(f"a config must be a mapping, got {type(d).__name__}")
        sections = ["model_class", "model", "data", "training"]
        bad = sorted(set(d) - set(sections))
        if bad:
            raise ValueError(f"unknown section(s) {bad} in config; valid sections: {sections}")
        model = d.get("model") or {}
        if not isinstance(model, dict):
            raise ValueError(f"section 'model' must be a mapping, got {model!r}")
        for key, value in model.items():  # checked up front, before any data is loaded
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"model.{key} must be a finite number, got {value!r}")
        model_class = d.get("model_class", "NequIP")
        if not isinstance(model_class, str):
            raise ValueError(f"model_class must be a model name (a string), got {model_class!r}")
        training = _build(TrainingConfig, d.get("training"), "training")
        return cls(
            model_class=model_class,
            model=dict(model),
            data=_build(DataConfig, d.get("data"), "data"),
            training=training,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_class": self.model_class,
            "model": dict(self.model),
            "data": dataclasses.asdict(self.data),
            "training": dataclasses.asdict(self.training),
        }


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read a YAML config file (see the module docstring).

    A path ``"builtin:NAME"`` reads the packaged ``equidyn/configs/NAME.yaml``.
    """
    import yaml

    text: str
    if str(path).startswith("builtin:"):
        from importlib.resources import files

        name = str(path).split(":", 1)[1]
        resource = files("equidyn") / "configs" / f"{name}.yaml"
        if not resource.is_file():
            raise FileNotFoundError(f"no packaged config {name!r} (equidyn/configs/{name}.yaml)")
        text = resource.read_text()
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"no config file at {str(p)!r}")
        text = p.read_text()
    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{str(path)!r} is not valid YAML: {e}") from None
    if d is None:
        raise ValueError(
            f"{str(path)!r} is empty; a config needs at least one section "
            "(model_class, model, data, training; see builtin:quickstart)"
        )
    try:
        return Config.from_dict(d)
    except ValueError as e:
        raise ValueError(f"{str(path)!r}: {e}") from None
