r"""The particle-model contract: one base class, one input check, one pair layout.

A particle model maps the state of ``n`` particles to a prediction per particle::

    model(pos, vel, node_attr, edge_attr=None)          -> output      # [batch, n, 3]
    model.forward_state(pos, vel, node_attr, edge_attr) -> (pos, vel)  # [batch, n, 3] each

``pos``, ``vel``: (batch, n, 3); ``node_attr``: (batch, n, node_attr_dim) per-particle scalars
(dimension 0 allowed); ``edge_attr``: (batch, n, n, edge_attr_dim) scalars per ordered pair
(the diagonal is ignored), or ``None`` when ``edge_attr_dim == 0``. The output is the
predicted positions (``output = "position"``) or, for a force field, accelerations
(``output = "acceleration"``). :meth:`ParticleModel.forward_state` also predicts the
velocities (models built with ``predict_velocity=True``, and neural ODEs).

Every model checks its inputs once in :meth:`ParticleModel.check_inputs`
(:func:`check_particle_inputs`) and builds its own inputs from a raw
:class:`ParticleSystem` (positions, velocities, charges) in :meth:`ParticleModel.inputs`, so a
training loop calls ``model.predict(system)`` without knowing which features it takes.

The graph is dense and fully connected, the fastest layout for the few particles of N-body
tasks. The ``n (n − 1)`` ordered pairs :math:`(i, j)`, :math:`j \ne i`, are laid out as
``(batch, n, n − 1, ...)``: row ``i`` holds the neighbours ``j = 0 .. n−1`` of ``i`` without
``i`` itself, in increasing order (:func:`neighbour_index`). A sum over neighbours is a sum
over dimension 2, gathering ``h_j`` is one indexing ``h[:, index]``, and dense pair inputs
``(batch, n, n, ...)`` enter through :func:`off_diagonal`.

>>> import torch
>>> from equidyn.models import EGNN
>>> system = ParticleSystem(torch.randn(2, 5, 3), torch.randn(2, 5, 3), torch.ones(2, 5, 1))
>>> model = EGNN(num_features=8, num_layers=1, node_attr_dim=0, edge_attr_dim=1)
>>> node_attr, edge_attr = model.inputs(system)  # no node inputs, q_i q_j per pair
>>> node_attr.shape, edge_attr.shape
(torch.Size([2, 5, 0]), torch.Size([2, 5, 5, 1]))
>>> model.predict(system).shape
torch.Size([2, 5, 3])
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "ParticleInputs",
    "ParticleModel",
    "ParticleSystem",
    "RENAMED_ARGUMENTS",
    "check_particle_inputs",
    "check_sizes",
    "finite_inputs_checked",
    "mlp",
    "neighbour_index",
    "off_diagonal",
    "pair_features",
    "relative_positions",
]


#: old argument name -> new name of the scalar particle models (EGNN, GNN, RadialField,
#: PairForceField, NeuralODE), accepted for one release with a ``FutureWarning``
RENAMED_ARGUMENTS = {"hidden_dim": "num_features", "n_layers": "num_layers"}

# ------------------------------------------------------------------------------ input checks

#: set while a caller that has checked its inputs once evaluates a model many times on states
#: it computed itself (an ODE solver's steps); the shape checks still run, the finiteness
#: checks (one synchronising reduction per tensor) do not
_FINITE_CHECKED: ContextVar[bool] = ContextVar("equidyn_finite_checked", default=False)


@contextmanager
def finite_inputs_checked() -> Iterator[None]:
    """Within this block :func:`check_particle_inputs` skips its finiteness checks (the
    caller checked the user's inputs once; the states in between are its own)."""
    token = _FINITE_CHECKED.set(True)
    try:
        yield
    finally:
        _FINITE_CHECKED.reset(token)


def _check_edge_attr(edge_attr: Tensor | None, batch: int, n: int, edge_attr_dim: int) -> None:
    if edge_attr_dim == 0:
        if edge_attr is not None and edge_attr.shape[-1] != 0:
            raise ValueError(
                "this model takes no edge attributes (edge_attr_dim=0), "
                f"got {tuple(edge_attr.shape)}"
            )
    elif edge_attr is None or edge_attr.shape != (batch, n, n, edge_attr_dim):
        got = None if edge_attr is None else tuple(edge_attr.shape)
        raise ValueError(
            f"edge_attr must have shape (batch, n, n, edge_attr_dim) = "
            f"{(batch, n, n, edge_attr_dim)}, got {got}"
        )


def check_particle_inputs(
    pos: Tensor,
    vel: Tensor,
    node_attr: Tensor,
    edge_attr: Tensor | None,
    node_attr_dim: int,
    edge_attr_dim: int,
) -> None:
    """Raise ``ValueError`` unless the inputs follow the particle-model interface.

    >>> check_particle_inputs(torch.zeros(2, 5, 3), torch.zeros(2, 4, 3), torch.zeros(2, 5, 0),
    ...                       None, 0, 0)
    Traceback (most recent call last):
    ...
    ValueError: vel must have the shape of pos (2, 5, 3), got (2, 4, 3)
    """
    if pos.dim() != 3 or pos.shape[-1] != 3:
        raise ValueError(f"pos must have shape (batch, n, 3), got {tuple(pos.shape)}")
    batch, n = pos.shape[:2]
    if n < 2:
        raise ValueError(f"need at least 2 particles, got pos of shape {tuple(pos.shape)}")
    if vel.shape != pos.shape:
        raise ValueError(
            f"vel must have the shape of pos {tuple(pos.shape)}, got {tuple(vel.shape)}"
        )
    if node_attr.shape != (batch, n, node_attr_dim):
        raise ValueError(
            f"node_attr must have shape (batch, n, node_attr_dim) = {(batch, n, node_attr_dim)}, "
            f"got {tuple(node_attr.shape)}"
        )
    _check_edge_attr(edge_attr, batch, n, edge_attr_dim)
    if not torch.compiler.is_compiling() and not _FINITE_CHECKED.get():
        for name, t in (
            ("pos", pos),
            ("vel", vel),
            ("node_attr", node_attr),
            ("edge_attr", edge_attr),
        ):
            if t is not None and not bool(torch.isfinite(t).all()):
                where = tuple(int(k) for k in (~torch.isfinite(t.detach())).nonzero()[0])
                raise ValueError(
                    f"{name} contains NaN or infinite values: {name}[{where}] = {float(t[where])}"
                )
        _check_magnitudes(pos, vel, node_attr, edge_attr)


def _check_magnitudes(
    pos: Tensor, vel: Tensor, node_attr: Tensor, edge_attr: Tensor | None
) -> None:
    """``ValueError`` if squared distances, speeds or attributes would overflow the dtype.

    The models use squared distances, norms and products of attributes; beyond
    :math:`\\sqrt{\\text{max}}/16` of the dtype (about 1e18 in float32, 8e152 in float64)
    they overflow to inf and the outputs are NaN, so such inputs are refused with the bound
    instead. (Deep models overflow sooner: :meth:`ParticleModel.forward` checks its outputs.)
    """
    bound = math.sqrt(torch.finfo(pos.dtype).max) / 16
    for name, t in (("pos", pos), ("vel", vel), ("node_attr", node_attr),
                    ("edge_attr", edge_attr)):  # fmt: skip
        if t is None:
            continue
        peak = float(t.detach().abs().max()) if t.numel() else 0.0
        what = "squared distances" if name in ("pos", "vel") else "products of attributes"
        if peak > bound:
            raise ValueError(
                f"{name} has entries up to {peak:.3g}, beyond {bound:.3g} for "
                f"{t.dtype}: {what} would overflow; rescale the system (or use float64)"
            )


def check_sizes(**sizes: int) -> None:
    """Raise ``ValueError`` naming the first of ``sizes`` (widths, layer counts) below 1.

    >>> check_sizes(num_features=8, num_layers=0)
    Traceback (most recent call last):
    ...
    ValueError: num_layers must be >= 1, got 0
    """
    for name, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


# ------------------------------------------------------------------------------- pair layout


def neighbour_index(n: int, device: torch.device | None = None) -> Tensor:
    """``[n, n − 1]`` long tensor: row ``i`` lists the ``j != i`` in increasing order.

    >>> neighbour_index(3).tolist()
    [[1, 2], [0, 2], [0, 1]]
    """
    j = torch.arange(n - 1, device=device)
    i = torch.arange(n, device=device)[:, None]
    return j[None, :] + (j[None, :] >= i).long()  # [n, n - 1]


def off_diagonal(t: Tensor, index: Tensor) -> Tensor:
    """Pairs ``(batch, n, n, ...)`` → ``(batch, n, n − 1, ...)`` keeping ``j != i``.

    >>> t = torch.arange(9.0).reshape(1, 3, 3)
    >>> off_diagonal(t, neighbour_index(3)).tolist()
    [[[1.0, 2.0], [3.0, 5.0], [6.0, 7.0]]]
    """
    n = index.shape[0]
    idx = index.reshape(1, n, n - 1, *([1] * (t.dim() - 3)))
    idx = idx.expand(t.shape[0], n, n - 1, *t.shape[3:])
    return torch.gather(t, 2, idx)  # [batch, n, n - 1, ...]


def relative_positions(x: Tensor, index: Tensor) -> Tensor:
    """``x_i − x_j`` for every ordered pair: (batch, n, 3) → (batch, n, n − 1, 3).

    >>> relative_positions(torch.tensor([[[0.0], [1.0], [3.0]]]), neighbour_index(3))[..., 0]
    tensor([[[-1., -3.],
             [ 1., -2.],
             [ 3.,  2.]]])
    """
    return x[:, :, None, :] - x[:, index]  # [batch, n, n - 1, 3]


def pair_features(h: Tensor, index: Tensor, *extra: Tensor | None) -> Tensor:
    """``[h_i, h_j, extra...]`` per ordered pair (batch, n, n − 1, 2 d + Σ extra); ``None``
    entries of ``extra`` (absent edge attributes) are skipped.

    >>> pair_features(torch.randn(2, 4, 5), neighbour_index(4), None, torch.ones(2, 4, 3, 1)).shape
    torch.Size([2, 4, 3, 11])
    """
    h_j = h[:, index]  # [batch, n, n - 1, d]
    parts = [h[:, :, None, :].expand_as(h_j), h_j, *(e for e in extra if e is not None)]
    return torch.cat(parts, dim=-1)


def mlp(dims: list[int], act_last: bool) -> nn.Sequential:
    """``Linear(d_0, d_1), SiLU, ..., Linear(d_{k-1}, d_k)`` (+ SiLU if ``act_last``).

    >>> mlp([3, 8, 1], act_last=False)
    Sequential(
      (0): Linear(in_features=3, out_features=8, bias=True)
      (1): SiLU()
      (2): Linear(in_features=8, out_features=1, bias=True)
    )
    """
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2 or act_last:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


# ------------------------------------------------------------------------------ raw systems


@dataclass(frozen=True)
class ParticleSystem:
    """The raw state of a batch of particle systems, from which a model builds its inputs.

    ``pos``, ``vel``: (batch, n, 3); ``charges``: (batch, n, 1) or ``None``.

    >>> q = torch.tensor([[[1.0], [-2.0]]])
    >>> s = ParticleSystem(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), q)
    >>> s.charge_products()[0, :, :, 0].tolist()
    [[1.0, -2.0], [-2.0, 4.0]]
    """

    pos: Tensor  # [batch, n, 3]
    vel: Tensor  # [batch, n, 3]
    charges: Tensor | None = None  # [batch, n, 1]

    def _charges(self) -> Tensor:
        if self.charges is None:
            raise ValueError("this model's inputs need charges; got a ParticleSystem without")
        return self.charges

    def empty(self) -> Tensor:
        """No node attributes: (batch, n, 0)."""
        return self.pos.new_zeros(*self.pos.shape[:2], 0)

    def charge_products(self) -> Tensor:
        """``q_i q_j`` per ordered pair, (batch, n, n, 1)."""
        q = self._charges()
        return q[:, :, None, :] * q[:, None, :, :]  # [batch, n, n, 1]

    def squared_distances(self) -> Tensor:
        """``|x_i − x_j|²`` per ordered pair, (batch, n, n, 1)."""
        diff = self.pos[:, :, None, :] - self.pos[:, None, :, :]  # [batch, n, n, 3]
        return (diff * diff).sum(-1, keepdim=True)


# ------------------------------------------------------------------------------- the contract


class ParticleInputs(NamedTuple):
    """Checked inputs of a particle model; ``edge_attr`` is ``None`` when the model takes none."""

    pos: Tensor  # [batch, n, 3]
    vel: Tensor  # [batch, n, 3]
    node_attr: Tensor  # [batch, n, node_attr_dim]
    edge_attr: Tensor | None  # [batch, n, n, edge_attr_dim]

    def pairs(self) -> tuple[Tensor, Tensor | None]:
        """``(index, pair_attr)``: :func:`neighbour_index` and the edge attributes in the pair
        layout, (batch, n, n − 1, edge_attr_dim) or ``None``."""
        index = neighbour_index(self.pos.shape[1], self.pos.device)  # [n, n - 1]
        edge_attr = self.edge_attr
        return index, None if edge_attr is None else off_diagonal(edge_attr, index)


class ParticleModel(nn.Module, ABC):
    """Base of every particle model: ``forward``, ``forward_state``, checks and raw inputs.

    A subclass calls ``super().__init__(node_attr_dim, edge_attr_dim)`` and implements
    :meth:`_predict`, which gets the checked :class:`ParticleInputs` (``edge_attr`` is ``None``
    when ``edge_attr_dim == 0``). It may override :attr:`predicts_velocity` (default: a
    ``velocity_readout`` module exists) and :meth:`inputs`.
    """

    #: what ``forward`` returns: ``"position"`` (predicted positions) or ``"acceleration"``
    output: str = "position"

    def __init__(self, node_attr_dim: int = 0, edge_attr_dim: int = 0) -> None:
        super().__init__()
        if node_attr_dim < 0 or edge_attr_dim < 0:
            raise ValueError(
                f"attribute dimensions must be >= 0, got node_attr_dim={node_attr_dim}, "
                f"edge_attr_dim={edge_attr_dim}"
            )
        self.node_attr_dim, self.edge_attr_dim = int(node_attr_dim), int(edge_attr_dim)

    @property
    def predicts_velocity(self) -> bool:
        """Whether :meth:`forward_state` is available."""
        return getattr(self, "velocity_readout", None) is not None

    def check_inputs(
        self, pos: Tensor, vel: Tensor, node_attr: Tensor, edge_attr: Tensor | None
    ) -> ParticleInputs:
        """Raise ``ValueError`` on bad inputs (:func:`check_particle_inputs`); returns them,
        with ``edge_attr = None`` if the model takes no edge attributes."""
        check_particle_inputs(
            pos, vel, node_attr, edge_attr, self.node_attr_dim, self.edge_attr_dim
        )
        self._check_dtypes(pos, vel, node_attr, edge_attr)
        return ParticleInputs(pos, vel, node_attr, edge_attr if self.edge_attr_dim > 0 else None)

    def _check_dtypes(
        self, pos: Tensor, vel: Tensor, node_attr: Tensor, edge_attr: Tensor | None
    ) -> None:
        """``TypeError`` unless every input has the dtype of the model's parameters.

        The policy: models follow ``.to(dtype)``; inputs are never cast silently.
        """
        dtype = next((p.dtype for p in self.parameters() if p.is_floating_point()), pos.dtype)
        for name, t in (("pos", pos), ("vel", vel), ("node_attr", node_attr),
                        ("edge_attr", edge_attr)):  # fmt: skip
            if t is not None and t.dtype != dtype:
                raise TypeError(
                    f"{type(self).__name__} has {dtype} parameters but {name} is {t.dtype}: "
                    f"convert the inputs ({name}.to({dtype})) or the model "
                    f"(model.to({t.dtype}))"
                )

    @abstractmethod
    def _predict(self, inputs: ParticleInputs, velocity: bool) -> tuple[Tensor, Tensor | None]:
        """Checked inputs → ``(output, velocities)``, (batch, n, 3) each; the velocities only
        if ``velocity`` (else ``None``)."""

    def check_outputs(self, inputs: ParticleInputs, *outputs: Tensor) -> None:
        """Raise ``ValueError`` if finite inputs gave a non-finite output.

        The products of distances and attributes inside a model grow with its depth (an
        EGNN of 4 layers squares distances several times over), so large finite inputs can
        overflow, in float32 long before the bound of :func:`check_particle_inputs`. The
        error names the magnitudes of the inputs (or the parameters, if they are not finite)
        instead of returning NaN. Skipped under ``torch.compile`` and
        :func:`finite_inputs_checked`, like the input checks.
        """
        if torch.compiler.is_compiling() or _FINITE_CHECKED.get():
            return
        if all(bool(torch.isfinite(o.detach()).all()) for o in outputs):
            return
        name = type(self).__name__
        bad = [n for n, p in self.named_parameters() if not bool(torch.isfinite(p).all())]
        if bad:
            raise ValueError(f"{name} has NaN or infinite parameters ({', '.join(bad[:3])})")
        peaks = ", ".join(
            f"|{n}| up to {float(t.detach().abs().max()):.3g}"
            for n, t in inputs._asdict().items()
            if t is not None and t.numel()
        )
        raise ValueError(
            f"{name} overflowed {inputs.pos.dtype} on these inputs ({peaks}) and gave NaN or "
            "infinite outputs: rescale the inputs (to the magnitudes it was trained on) or use "
            "float64"
        )

    def forward(
        self,
        pos: Tensor,
        vel: Tensor,
        node_attr: Tensor,
        edge_attr: Tensor | None = None,
    ) -> Tensor:
        inputs = self.check_inputs(pos, vel, node_attr, edge_attr)
        out = self._predict(inputs, False)[0]  # [batch, n, 3]
        self.check_outputs(inputs, out)
        return out

    def forward_state(
        self,
        pos: Tensor,
        vel: Tensor,
        node_attr: Tensor,
        edge_attr: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Predicted ``(positions, velocities)``, each (batch, n, 3); the positions equal
        ``forward``'s. Needs a model that predicts velocities (``predict_velocity=True``)."""
        if not self.predicts_velocity:
            name = type(self).__name__
            raise ValueError(
                "forward_state needs a model built with predict_velocity=True "
                f"({name}(..., predict_velocity=True))"
            )
        inputs = self.check_inputs(pos, vel, node_attr, edge_attr)
        x, v = self._predict(inputs, True)
        assert v is not None  # _predict returns velocities when asked to
        self.check_outputs(inputs, x, v)
        return x, v  # [batch, n, 3] each

    def inputs(self, system: ParticleSystem) -> tuple[Tensor, Tensor | None]:
        """``(node_attr, edge_attr)`` of this model for a raw ``system``.

        Default: no node attributes (``node_attr_dim = 0``) or the charges (as many as
        ``node_attr_dim``); no edge attributes (``edge_attr_dim = 0``) or ``q_i q_j``
        (``edge_attr_dim = 1``). A model with other inputs overrides this method.
        """
        name = type(self).__name__
        if self.node_attr_dim == 0:
            node_attr = system.empty()
        elif system.charges is not None and system.charges.shape[-1] == self.node_attr_dim:
            node_attr = system.charges
        else:
            raise ValueError(
                f"{name} with node_attr_dim={self.node_attr_dim} has no node inputs from a "
                "ParticleSystem (charges give 1); build its node_attr yourself"
            )
        if self.edge_attr_dim > 1:
            raise ValueError(
                f"{name} with edge_attr_dim={self.edge_attr_dim} has no edge inputs from a "
                "ParticleSystem (q_i q_j gives 1); build its edge_attr yourself"
            )
        return node_attr, system.charge_products() if self.edge_attr_dim == 1 else None

    def predict(self, system: ParticleSystem) -> Tensor:
        """``forward`` on the inputs of :meth:`inputs` (batch, n, 3)."""
        return self(system.pos, system.vel, *self.inputs(system))

    def predict_state(self, system: ParticleSystem) -> tuple[Tensor, Tensor]:
        """:meth:`forward_state` on the inputs of :meth:`inputs`."""
        return self.forward_state(system.pos, system.vel, *self.inputs(system))
