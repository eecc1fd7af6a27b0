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

Unknown keys raise ``ValueError`` listing the valid ones. Model arguments that depend on the
data (``num_species``, ``avg_num_neighbors``) may be left out: the trainer fills them in from
the training set.

>>> cfg = Config.from_dict({"model": {"r_max": 4.0}, "training": {"epochs": 3}})
>>> cfg.model_class, cfg.training.epochs, cfg.data.source
('NequIP', 3, 'builtin:cuau-emt')
"""

from __future__ import annotations

import dataclasses
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


def _build(cls: type, values: dict[str, Any] | None, section: str) -> Any:
    values = dict(values or {})
    names = [f.name for f in dataclasses.fields(cls)]
    bad = sorted(set(values) - set(names))
    if bad:
        raise ValueError(f"unknown key(s) {bad} in section '{section}'; valid keys: {names}")
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
        training = _build(TrainingConfig, d.get("training"), "training")
        if training.dtype not in ("float32", "float64"):
            raise ValueError(
                f"training.dtype must be 'float32' or 'float64', got {training.dtype!r}"
            )
        return cls(
            model_class=str(d.get("model_class", "NequIP")),
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
    try:
        return Config.from_dict(d or {})
    except ValueError as e:
        raise ValueError(f"{str(path)!r}: {e}") from None
