r"""Forecasting the generated tracers: the :class:`~equidyn.train.task.Task` of ClimODE and its
baselines, and the scores of a trained forecaster against lead time.

A sample starts at frame :math:`n` (its time :math:`t_0`): the model sees the ``history``
frames :math:`n - T + 1 .. n` and the velocity :func:`~equidyn.fields.climode.fit_velocity`
fits to them (fitted once, before training, as ClimODE does), and forecasts frames
:math:`n + 1 .. n + L`. Training samples start at every frame of the training years that
leaves room for ``train_steps`` leads; the validation and test samples every ``eval_stride``
frames with ``eval_steps`` leads. The loss of a batch, in fields normalised per variable by the
training standard deviation :math:`s_k`, is the latitude-weighted Gaussian NLL of the forecast
when the model gives a standard deviation (ClimODE) and the latitude-weighted MSE otherwise
(the autoregressive ResNet), averaged over the leads. The selection metric ``"rmse"`` is the
latitude-weighted RMSE in those normalised units, averaged over variables and leads.

:meth:`WeatherForecastTask.scores` gives per lead and variable: RMSE (physical units), ACC
(against the training years' climatology), CRPS (when there is a standard deviation) and the
relative drift of the area-weighted total of the forecast (and of ClimODE's own ODE state).

>>> import tempfile
>>> from equidyn.fields.tracers import tracer_dataset
>>> from equidyn.fields.weather_baselines import Persistence
>>> data = tracer_dataset(steps_per_year=24, years=3, spinup=4, cache_dir=tempfile.mkdtemp())
>>> task = WeatherForecastTask(data, train_steps=2, eval_steps=4, eval_stride=4, velocities=False)
>>> s = task.scores(Persistence(3, data.grid), "test")
>>> s["rmse"].shape, bool(s["rmse"][0, 0] < s["rmse"][-1, 0])
(torch.Size([4, 3]), True)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from equidyn.fields.climode import ClimODE, fit_velocity
from equidyn.fields.metrics import acc, gaussian_crps, gaussian_nll, lat_rmse
from equidyn.fields.tracers import TracerData, climatology
from equidyn.train.task import EpochStats

__all__ = ["WeatherForecastTask"]


class WeatherForecastTask:
    """Forecast the frames of a :class:`~equidyn.fields.tracers.TracerData` (see above).

    Args:
        data: the generated set.
        history: frames a sample sees (>= 2).
        train_steps: leads of a training sample (the rollout the loss sees).
        eval_steps: leads of a validation or test sample.
        eval_stride: frames between validation/test starts.
        batch_size: samples per optimiser step.
        batches_per_epoch: cut each epoch to this many batches (``None`` = all).
        velocities: fit the initial velocities (needed by ClimODE only).
        fit_iterations: L-BFGS iterations of each velocity fit.
    """

    selection_metric = "rmse"
    best_splits: tuple[str, ...] = ("test",)

    def __init__(self, data: TracerData, history: int = 3, train_steps: int = 4,
                 eval_steps: int = 12, eval_stride: int = 4, batch_size: int = 8,
                 batches_per_epoch: int | None = None, velocities: bool = True,
                 fit_iterations: int = 50) -> None:  # fmt: skip
        if history < 2:
            raise ValueError(f"history must be >= 2 frames, got {history}")
        for name, v in (("train_steps", train_steps), ("eval_steps", eval_steps),
                        ("eval_stride", eval_stride), ("batch_size", batch_size)):  # fmt: skip
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        self.data, self.grid = data, data.grid
        self.history, self.train_steps, self.eval_steps = history, train_steps, eval_steps
        self.batch_size, self.batches_per_epoch = batch_size, batches_per_epoch
        self.frames = data.fields  # [N, K, H, W]
        self.clim = climatology(data)  # [steps_per_year, K, H, W]
        train = self.frames[data.split_slices["train"]]
        self.scale = train.std((0, 2, 3))  # [K]
        self.starts: dict[str, Tensor] = {}
        for split, sl in data.split_slices.items():
            steps, stride = (train_steps, 1) if split == "train" else (eval_steps, eval_stride)
            last = sl.stop - 1 - steps
            first = sl.start + history - 1
            if last < first:
                raise ValueError(
                    f"the {split} split (frames {sl.start}..{sl.stop - 1}) is too short for "
                    f"{history} history frames and a horizon of {steps} steps"
                )
            self.starts[split] = torch.arange(first, last + 1, stride)
        self.v0: dict[str, Tensor] = {}
        K, (H, W) = self.frames.shape[1], self.grid.shape
        for split, starts in self.starts.items():
            if not velocities:
                self.v0[split] = torch.zeros(len(starts), 2 * K, H, W)
                continue
            chunks = [fit_velocity(self._history(c), self.grid, iterations=fit_iterations)
                      for c in starts.split(64)]  # fmt: skip
            self.v0[split] = torch.cat(chunks)  # [n_starts, 2K, H, W]

    # ------------------------------------------------------------------ samples
    def _history(self, starts: Tensor) -> Tensor:
        idx = starts[:, None] + torch.arange(1 - self.history, 1)
        return self.frames[idx]  # [B, T, K, H, W]

    def batch(self, split: str, rows: Tensor, steps: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(history, v0, t0, target)`` of the samples ``rows`` of ``split``;
        ``target [B, steps, K, H, W]``."""
        if split not in self.starts:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(self.starts)}")
        starts = self.starts[split][rows]
        if int(starts.max()) + steps >= len(self.frames):
            raise ValueError(f"a horizon of {steps} steps runs past the data's last frame")
        target = self.frames[starts[:, None] + torch.arange(1, steps + 1)]
        t0 = self.data.times[starts]
        return self._history(starts), self.v0[split][rows], t0, target

    def _cast(self, model: nn.Module, *xs: Tensor) -> list[Tensor]:
        p = next(iter(model.buffers()), None)
        return [x.to(p) if p is not None else x for x in xs]

    # ------------------------------------------------------------------ Task
    def train_batches(self, epoch: int, generator: torch.Generator) -> list[Tensor]:
        perm = torch.randperm(len(self.starts["train"]), generator=generator)
        batches = list(perm.split(self.batch_size))
        return batches[: self.batches_per_epoch] if self.batches_per_epoch else batches

    def loss(self, model: nn.Module, batch: Tensor) -> tuple[Tensor, float]:
        history, v0, t0, target = self._cast(model, *self.batch("train", batch, self.train_steps))
        mean, std = model(history, v0, t0, self.train_steps)
        s = self.scale.to(target)[:, None, None]
        if std is None:
            w = self.grid.lat_weights.to(target)
            value = (w * ((mean - target) / s) ** 2).mean()
        else:
            value = gaussian_nll(mean / s, std / s, target / s, self.grid).mean()
        return value, float(len(batch))

    @torch.no_grad()
    def forecasts(self, model: nn.Module, split: str, chunk: int = 32) -> dict[str, Tensor]:
        """Forecasts of every sample of ``split``: ``mean``, ``std`` (if any), ``truth``,
        ``u0``, ``t0`` and, for ClimODE, ``ode`` (its ODE state). ``[n, eval_steps, K, H, W]``"""
        model.eval()
        parts: dict[str, list[Tensor]] = {}
        for rows in torch.arange(len(self.starts[split])).split(chunk):
            history, v0, t0, target = self.batch(split, rows, self.eval_steps)
            h, v, t = self._cast(model, history, v0, t0)
            if isinstance(model, ClimODE):
                mean, std, ode = model.forecast(h[:, -1], v, t, self.eval_steps)
                parts.setdefault("ode", []).append(ode.float().cpu())
            else:
                mean, std = model(h, v, t, self.eval_steps)
            parts.setdefault("mean", []).append(mean.float().cpu())
            if std is not None:
                parts.setdefault("std", []).append(std.float().cpu())
            parts.setdefault("truth", []).append(target)
            parts.setdefault("u0", []).append(history[:, -1])
            parts.setdefault("t0", []).append(t0)
        return {k: torch.cat(v) for k, v in parts.items()}

    def scores(self, model: nn.Module, split: str) -> dict[str, Tensor]:
        """Per lead and variable ``[eval_steps, K]``: ``rmse``, ``acc``, ``crps`` (with a
        std), ``mass_drift`` (relative change of the area-weighted total from the start
        frame; ``ode_mass_drift`` for ClimODE's ODE state, ``true_mass_drift`` of the truth)."""
        f = self.forecasts(model, split)
        lead_idx = f["t0"].long()[:, None] + torch.arange(1, self.eval_steps + 1)
        clim = self.clim[lead_idx % self.clim.shape[0]]  # [n, L, K, H, W]
        out = {
            "rmse": lat_rmse(f["mean"], f["truth"], self.grid).mean(0),
            "acc": acc(f["mean"], f["truth"], clim, self.grid).mean(0),
        }
        if "std" in f:
            out["crps"] = gaussian_crps(f["mean"], f["std"], f["truth"], self.grid).mean(0)
        m0 = self.grid.total(f["u0"].double())[:, None]  # [n, 1, K]
        for key, name in (("mean", "mass_drift"), ("ode", "ode_mass_drift"),
                          ("truth", "true_mass_drift")):  # fmt: skip
            if key in f:
                m = self.grid.total(f[key].double())
                out[name] = ((m - m0).abs() / m0.abs()).mean(0).float()
        return out

    def evaluate(self, model: nn.Module, split: str) -> dict[str, float]:
        f = self.forecasts(model, split)
        s = self.scale[None, None, :]
        rmse = lat_rmse(f["mean"], f["truth"], self.grid).mean(0) / s[0]  # [L, K]
        out = {"rmse": float(rmse.mean()), "rmse_last": float(rmse[-1].mean())}
        if "std" in f:
            sc = self.scale[:, None, None]
            nll = gaussian_nll(f["mean"] / sc, f["std"] / sc, f["truth"] / sc, self.grid)
            out["nll"] = float(nll.mean())
        return out

    def log_row(self, stats: EpochStats) -> dict[str, Any]:
        row: dict[str, Any] = {"epoch": stats.epoch, "lr": stats.lr, "train_loss": stats.train_loss}
        row.update({f"val_{k}": v for k, v in stats.metrics["val"].items()})
        row["test_rmse"] = stats.metrics.get("test", {}).get("rmse", math.nan)
        return row

    def describe(self, stats: EpochStats) -> str:
        val = stats.metrics["val"]["rmse"]
        return (f"epoch {stats.epoch}/{stats.epochs}  train {stats.train_loss:.4g}  val rmse "
                f"{val:.4g}" + ("  *" if stats.improved else ""))  # fmt: skip

    def on_best(self, model: nn.Module) -> None:
        pass

    def checkpoint_extra(self, model: nn.Module) -> dict[str, Any]:
        return {"model_class": type(model).__name__}
