r"""Data-parallel training over processes: torchrun's environment, balanced shards, reductions.

Under ``torchrun --nproc_per_node N`` (or any launcher that sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``), :func:`init_distributed` joins the
process group (``gloo`` on CPU, ``nccl`` on CUDA) and returns a :class:`DistributedContext`;
in one process it returns ``None`` and ``torch.distributed`` is never touched.

Every rank draws the same *global* batches (the config's ``batch_size`` is the effective
batch), and each global batch :math:`\mathcal B` is cut into ``world_size`` parts
:math:`\mathcal B_1, \dots, \mathcal B_W` with near-equal work by :func:`balanced_partition`
(longest processing time first: items by decreasing size, each to the least loaded part).
Rank :math:`r` computes the contribution :math:`\ell_r` of its part to the loss of the whole
batch, with :math:`\sum_r \ell_r = \mathcal L(\mathcal B)` (a task's
:meth:`ShardedTask.part_loss`: each mean of the loss becomes a partial sum over the part
divided by the count over the whole batch). DistributedDataParallel averages gradients over
ranks, so each rank back-propagates :math:`W \ell_r`:

.. math::  \frac1W \sum_r \nabla (W \ell_r) = \nabla \sum_r \ell_r = \nabla \mathcal L(\mathcal B),

the gradient one process gets on the whole batch (up to the order of summation). Evaluation
is shared the same way: each rank adds up errors over its part of a split
(:meth:`ShardedTask.evaluation_sums`), the sums are gathered and added in rank order on every
rank, and :meth:`ShardedTask.metrics_from_sums` turns them into the metrics of the whole split,
so every rank takes the same decisions (best epoch, learning rate, early stopping).

>>> balanced_partition([5, 1, 4, 2, 3], parts=2)     # loads 5+2+1 = 8 and 4+3 = 7
[[0, 1, 3], [2, 4]]
>>> init_distributed() is None                       # one process: no torch.distributed
True
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from equidyn.train.task import Task

__all__ = [
    "DistributedContext",
    "ShardedTask",
    "balanced_partition",
    "current_context",
    "init_distributed",
    "world_size_from_env",
]

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def balanced_partition(sizes: Sequence[float], parts: int) -> list[list[int]]:
    """Indices of ``sizes`` cut into ``parts`` groups of near-equal total size (LPT greedy).

    Items are taken by decreasing size (ties: lower index first) and each goes to the part with
    the smallest total so far (ties: lower part). Deterministic; each part lists its indices
    in increasing order. A part is empty only when there are fewer items than parts; the
    largest total exceeds the smallest by at most the largest item.

    >>> balanced_partition([3, 3, 3, 3, 12], parts=2)
    [[4], [0, 1, 2, 3]]
    >>> balanced_partition([1], parts=3)
    [[0], [], []]
    """
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
        raise ValueError(f"parts must be an int >= 1, got {parts!r}")
    bad = [s for s in sizes if not s >= 0]
    if bad:
        raise ValueError(f"sizes must be numbers >= 0, got {bad[0]!r}")
    loads = [0.0] * parts
    groups: list[list[int]] = [[] for _ in range(parts)]
    for i in sorted(range(len(sizes)), key=lambda k: (-sizes[k], k)):
        target = min(range(parts), key=lambda p: (loads[p], p))
        groups[target].append(i)
        loads[target] += float(sizes[i])
    return [sorted(g) for g in groups]


@runtime_checkable
class ShardedTask(Task, Protocol):
    """A :class:`~equidyn.train.task.Task` that can also be trained over several processes.

    The trainer calls these methods only when ``world_size > 1``; in one process it uses the
    plain :class:`~equidyn.train.task.Task` methods.
    """

    def split_batch(self, batch: Any, parts: int) -> list[Any]:
        """``batch`` cut into ``parts`` disjoint parts of near-equal work (their union is
        ``batch``; a part may be empty only when ``batch`` has fewer items than ``parts``)."""
        ...

    def part_loss(self, model: nn.Module, part: Any, batch: Any) -> tuple[Tensor, float]:
        """``(loss_r, weight)``: the share of ``part`` in ``loss(model, batch)`` (the shares
        of a partition add up to it; an empty part must still call ``model`` and return a
        zero that depends on its output, so every rank joins the gradient reduction) and the
        weight ``loss`` gives the whole ``batch``."""
        ...

    def evaluation_sums(
        self, model: nn.Module, split: str, rank: int, world_size: int
    ) -> dict[str, float]:
        """Additive sums over rank ``rank``'s share of ``split`` (shares of all ranks
        partition the split); keys may be missing where a rank saw nothing."""
        ...

    def metrics_from_sums(self, sums: dict[str, float]) -> dict[str, float]:
        """The metrics ``evaluate`` gives on the whole split, from the sums of all ranks."""
        ...


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the process group (see the module docstring).

    Attributes:
        rank: global rank (0 is the one that writes files and prints).
        world_size: number of processes.
        local_rank: rank on this node (the CUDA device index with ``nccl``).
        backend: ``"gloo"`` or ``"nccl"``.
    """

    rank: int
    world_size: int
    local_rank: int
    backend: str

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        """The device collective tensors live on (``cuda:local_rank`` with ``nccl``)."""
        if self.backend == "nccl":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def barrier(self) -> None:
        """Wait until every rank arrives."""
        torch.distributed.barrier()

    def all_reduce(self, values: Sequence[float], op: str = "sum") -> list[float]:
        """``values`` combined over ranks element-wise (``op``: ``"sum"`` or ``"max"``), in
        float64."""
        ops = {"sum": torch.distributed.ReduceOp.SUM, "max": torch.distributed.ReduceOp.MAX}
        if op not in ops:
            raise ValueError(f"op must be 'sum' or 'max', got {op!r}")
        t = torch.tensor(list(values), dtype=torch.float64, device=self.device)  # [n]
        torch.distributed.all_reduce(t, op=ops[op])
        return t.tolist()

    def sum_dicts(self, local: dict[str, float]) -> dict[str, float]:
        """Key-wise sums of every rank's ``local``, added in rank order (so the result is
        bitwise the same on every rank); a key missing on a rank counts as 0."""
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, local)
        total: dict[str, float] = {}
        for d in gathered:
            for k, v in d.items():
                total[k] = total.get(k, 0.0) + float(v)
        return total

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj``, on every rank."""
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when it is not set)."""
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an int >= 1, got {text!r}") from None
    if n < 1:
        raise ValueError(f"WORLD_SIZE must be an int >= 1, got {text!r}")
    return n


def current_context() -> DistributedContext | None:
    """The context of an initialised process group of more than one process, else ``None``."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return None
    return DistributedContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
        backend=str(dist.get_backend()),
    )


def init_distributed(
    backend: str | None = None, timeout_s: float = 1800.0
) -> DistributedContext | None:
    """Join the process group torchrun describes in the environment (see the module docstring).

    Returns ``None`` when ``WORLD_SIZE`` is unset or 1 (nothing is initialised). ``backend``
    defaults to ``"nccl"`` when CUDA is available and ``"gloo"`` otherwise; with ``nccl`` the
    process's CUDA device becomes ``cuda:LOCAL_RANK``. A process group that is already
    initialised is used as it is.
    """
    if world_size_from_env() == 1:
        return None
    existing = current_context()
    if existing is not None:
        return existing
    missing = [k for k in _ENV if k not in os.environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {missing} are not set; launch with "
            "torchrun (e.g. torchrun --nproc_per_node 2 -m equidyn train CONFIG.yaml)"
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    local_rank = int(os.environ["LOCAL_RANK"])
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group(
        backend=backend, init_method="env://", timeout=datetime.timedelta(seconds=timeout_s)
    )
    return DistributedContext(
        rank=torch.distributed.get_rank(),
        world_size=torch.distributed.get_world_size(),
        local_rank=local_rank,
        backend=backend,
    )
