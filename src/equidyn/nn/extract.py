r"""Slicing feature vectors by irreps blocks.

A feature vector of ``irreps`` is the concatenation of its blocks ``mul x ir``; a block is
viewed as a ``(..., mul, 2l+1)`` tensor by :func:`chunks` (and reassembled by
:func:`from_chunks`). :class:`Extract` selects blocks by index into one or several outputs, and
:class:`ExtractIr` keeps every block of one irrep. Selecting and reordering whole blocks
commutes with the block-diagonal representation, so these maps are equivariant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from equidyn.nn._checks import check_features
from equidyn.o3 import Irrep, Irreps

__all__ = ["Extract", "ExtractIr", "chunks", "from_chunks"]


def chunks(x: torch.Tensor, irreps: Irreps | str) -> list[torch.Tensor]:
    """Split ``(..., irreps.dim)`` features into one ``(..., mul, 2l+1)`` view per block.

    >>> import torch
    >>> [c.shape for c in chunks(torch.zeros(7, 5), "2x0e + 1x1o")]
    [torch.Size([7, 2, 1]), torch.Size([7, 1, 3])]
    """
    irreps = Irreps(irreps)
    check_features(x, irreps)
    batch = x.shape[:-1]
    return [
        x[..., sl].reshape(*batch, mul, ir.dim)
        for (mul, ir), sl in zip(irreps, irreps.slices(), strict=True)
    ]


def from_chunks(
    blocks: Sequence[torch.Tensor], irreps: Irreps | str, batch: Sequence[int]
) -> torch.Tensor:
    """Concatenate ``(..., mul, 2l+1)`` blocks into ``(*batch, irreps.dim)`` features.

    ``batch`` gives the leading shape (needed when ``irreps`` is empty).

    >>> import torch
    >>> x = torch.randn(7, 5)
    >>> torch.equal(from_chunks(chunks(x, "2x0e + 1x1o"), "2x0e + 1x1o", (7,)), x)
    True
    """
    irreps = Irreps(irreps)
    if len(blocks) != len(irreps):
        raise ValueError(f"got {len(blocks)} blocks for the {len(irreps)} blocks of {irreps}")
    batch = tuple(batch)
    flat = []
    for b, (mul, ir) in zip(blocks, irreps, strict=True):
        if tuple(b.shape[-2:]) != (mul, ir.dim):
            raise ValueError(
                f"block of shape {tuple(b.shape)} does not match {mul}x{ir}: "
                f"expected (..., {mul}, {ir.dim})"
            )
        flat.append(b.reshape(*batch, mul * ir.dim))
    if not flat:
        return torch.zeros(*batch, 0)
    return torch.cat(flat, dim=-1)  # [*batch, irreps.dim]


class Extract(torch.nn.Module):
    """Select blocks of ``irreps_in`` into several outputs.

    Output ``k`` is the concatenation of the blocks ``irreps_in[i]`` for ``i`` in
    ``instructions[k]``; ``irreps_outs[k]`` must equal those blocks (checked).

    Args:
        irreps_in: irreps of the input.
        irreps_outs: irreps of each output.
        instructions: for each output, the indices of the input blocks it takes, in order.

    >>> import torch
    >>> ex = Extract("1x0e + 1x1o + 2x0e", ["1x0e + 2x0e", "1x1o"], [(0, 2), (1,)])
    >>> s, v = ex(torch.arange(6.0)[None])
    >>> s.tolist(), v.tolist()
    ([[0.0, 4.0, 5.0]], [[1.0, 2.0, 3.0]])
    """

    def __init__(
        self,
        irreps_in: Irreps | str,
        irreps_outs: Sequence[Irreps | str],
        instructions: Sequence[Sequence[int]],
    ) -> None:
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.irreps_outs = tuple(Irreps(irs) for irs in irreps_outs)
        if len(self.irreps_outs) != len(instructions):
            raise ValueError(
                f"{len(self.irreps_outs)} irreps_outs but {len(instructions)} instructions: "
                "give one tuple of block indices per output"
            )
        self.instructions = tuple(tuple(ins) for ins in instructions)
        slices = self.irreps_in.slices()
        n_blocks = len(self.irreps_in)
        self._slices: list[list[tuple[int, int]]] = []
        for irs, ins in zip(self.irreps_outs, self.instructions, strict=True):
            for i in ins:
                if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n_blocks:
                    raise ValueError(
                        f"block index {i!r} out of range for {self.irreps_in} "
                        f"({len(self.irreps_in)} blocks)"
                    )
            taken = Irreps([self.irreps_in[i] for i in ins])
            if taken != irs:
                raise ValueError(
                    f"instruction {ins} takes {taken} from {self.irreps_in}, "
                    f"but the output irreps are {irs}"
                )
            merged: list[tuple[int, int]] = []
            for i in ins:  # merge adjacent slices: fewer copies
                a, b = slices[i].start, slices[i].stop
                if merged and merged[-1][1] == a:
                    merged[-1] = (merged[-1][0], b)
                elif b > a:
                    merged.append((a, b))
            self._slices.append(merged)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``x``: ``(..., irreps_in.dim)`` → one ``(..., irreps_outs[k].dim)`` per output."""
        check_features(x, self.irreps_in)
        outs = []
        for sl in self._slices:
            if len(sl) == 1:
                outs.append(x[..., sl[0][0] : sl[0][1]])
            elif not sl:
                outs.append(x[..., :0])
            else:
                outs.append(torch.cat([x[..., a:b] for a, b in sl], dim=-1))
        return tuple(outs)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {list(self.irreps_outs)}"


class ExtractIr(torch.nn.Module):
    """Keep every block of one irrep ``ir`` (in order); ``irreps_out`` is those blocks.

    >>> import torch
    >>> ex = ExtractIr("1x0e + 1x1o + 2x0e", "0e")
    >>> ex.irreps_out, ex(torch.arange(6.0)).tolist()
    (1x0e+2x0e, [0.0, 4.0, 5.0])
    """

    def __init__(self, irreps_in: Irreps | str, ir: Irrep | str) -> None:
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.ir = Irrep(ir)
        idx = tuple(i for i, (_, other) in enumerate(self.irreps_in) if other == self.ir)
        self.irreps_out = Irreps([self.irreps_in[i] for i in idx])
        self._extract = Extract(self.irreps_in, [self.irreps_out], [idx])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., irreps_in.dim)`` → ``(..., irreps_out.dim)``."""
        return self._extract(x)[0]

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}"
