r"""Losses and error metrics for energies, forces and stress.

For a batch of :math:`B` structures with :math:`N_b` atoms each, the training loss is

.. math::

    \mathcal L = w_E \frac1B \sum_b \Big(\frac{\hat E_b - E_b}{N_b}\Big)^2
        + w_F \frac{1}{3N} \sum_{i,\alpha} (\hat F_{i\alpha} - F_{i\alpha})^2
        + w_\sigma \frac{1}{9B} \sum_{b,\alpha\beta}
          (\hat\sigma_{b\alpha\beta} - \sigma_{b\alpha\beta})^2,

energies per atom so that cells of different sizes weigh alike. The reported metrics are
mean absolute errors and root mean square errors of the energy per atom (meV/atom), the force
components (meV/Å) and the stress components (meV/Å³), accumulated over a whole data set by
:class:`ErrorAccumulator`.

>>> import torch
>>> pred = {"energy": torch.tensor([1.0]), "forces": torch.zeros(2, 3)}
>>> ref = {"energy": torch.tensor([0.0]), "forces": torch.ones(2, 3),
...        "num_atoms": torch.tensor([2])}
>>> terms = loss_terms(pred, ref)
>>> terms["energy"].item(), terms["forces"].item()
(0.25, 1.0)
"""

from __future__ import annotations

import math

from torch import Tensor

__all__ = ["loss_terms", "weighted_loss", "ErrorAccumulator"]


def loss_terms(pred: dict[str, Tensor], ref: dict[str, Tensor | None]) -> dict[str, Tensor]:
    """Mean squared errors per quantity present in both ``pred`` and ``ref``.

    ``ref`` holds ``"energy"`` ``[B]``, ``"forces"`` ``[N, 3]``, ``"stress"`` ``[B, 3, 3]``
    (each optional) and ``"num_atoms"`` ``[B]``.
    """
    return {key: (err**2).mean() for key, err in _errors(pred, ref).items()}


def _errors(pred: dict[str, Tensor], ref: dict[str, Tensor | None]) -> dict[str, Tensor]:
    """Prediction minus reference per quantity present in both (energies per atom)."""
    out: dict[str, Tensor] = {}
    for key in ("energy", "forces", "stress"):
        target = ref.get(key)
        if target is None or key not in pred:
            continue
        out[key] = pred[key] - target
        if key == "energy":
            num_atoms = ref.get("num_atoms")
            if num_atoms is None:
                raise ValueError("energies need 'num_atoms' in the reference")
            out[key] = out[key] / num_atoms.to(pred[key].dtype)
    return out


def weighted_loss(terms: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
    """:math:`\\sum_k w_k \\mathcal L_k` over the terms with a non-zero weight."""
    total: Tensor | None = None
    for k, v in terms.items():
        w = weights.get(k, 0.0)
        if w:
            total = w * v if total is None else total + w * v
    if total is None:
        raise ValueError(
            f"no loss term has a non-zero weight: terms {list(terms)}, weights {weights}"
        )
    return total


class ErrorAccumulator:
    """Running MAE / RMSE of energy per atom, forces and stress over many batches (in meV).

    >>> import torch
    >>> acc = ErrorAccumulator()
    >>> acc.add({"energy": torch.tensor([0.01])}, {"energy": torch.tensor([0.0]),
    ...          "num_atoms": torch.tensor([1])})
    >>> acc.metrics()
    {'energy_mae': 10.0, 'energy_rmse': 10.0}
    """

    def __init__(self) -> None:
        self._abs: dict[str, float] = {}
        self._sq: dict[str, float] = {}
        self._n: dict[str, int] = {}

    def _add(self, key: str, err: Tensor) -> None:
        err = err.detach().double()
        self._abs[key] = self._abs.get(key, 0.0) + float(err.abs().sum())
        self._sq[key] = self._sq.get(key, 0.0) + float((err**2).sum())
        self._n[key] = self._n.get(key, 0) + err.numel()

    def add(self, pred: dict[str, Tensor], ref: dict[str, Tensor | None]) -> None:
        for key, err in _errors(pred, ref).items():
            self._add(key, err)

    def sums(self) -> dict[str, float]:
        """The additive state, ``{"<quantity>_abs", "<quantity>_sq", "<quantity>_n"}``: the
        sums of two accumulators' states are the state of one that saw both.

        >>> import torch
        >>> acc = ErrorAccumulator()
        >>> acc.add({"energy": torch.tensor([0.01])}, {"energy": torch.tensor([0.0]),
        ...          "num_atoms": torch.tensor([1])})
        >>> ErrorAccumulator.from_sums(acc.sums()).metrics() == acc.metrics()
        True
        """
        out: dict[str, float] = {}
        for k in self._n:
            out.update({f"{k}_abs": self._abs[k], f"{k}_sq": self._sq[k], f"{k}_n": self._n[k]})
        return out

    @classmethod
    def from_sums(cls, sums: dict[str, float]) -> ErrorAccumulator:
        """The accumulator whose :meth:`sums` are ``sums`` (other keys are ignored)."""
        acc = cls()
        for key in ("energy", "forces", "stress"):
            if f"{key}_n" in sums:
                acc._abs[key] = float(sums[f"{key}_abs"])
                acc._sq[key] = float(sums[f"{key}_sq"])
                acc._n[key] = int(round(sums[f"{key}_n"]))
        return acc

    def metrics(self) -> dict[str, float]:
        """``{"energy_mae", "energy_rmse", "forces_mae", ...}`` in meV (per atom, per Å, per Å³)."""
        out = {}
        for k in self._n:
            n = max(self._n[k], 1)
            out[f"{k}_mae"] = 1000.0 * self._abs[k] / n
            out[f"{k}_rmse"] = 1000.0 * math.sqrt(self._sq[k] / n)
        return out
