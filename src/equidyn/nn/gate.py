r"""The gate nonlinearity: scalars pass through activations, higher irreps are scaled by scalars.

Input features are the concatenation :math:`x = s \oplus g \oplus v` of scalars :math:`s`, gates
:math:`g` (one scalar per irrep of :math:`v`) and gated irreps :math:`v`; the output is

.. math::  \mathrm{Gate}(s \oplus g \oplus v) = \sigma(s) \;\oplus\; \big(\phi(g_i)\, v_i\big)_i ,

where :math:`\sigma, \phi` are pointwise activations and :math:`v_i` the :math:`i`-th irrep of
:math:`v`. Since :math:`\phi(g_i)` is invariant under rotations, each product transforms as
:math:`v_i`: the map is equivariant. Under a reflection a pseudoscalar (``0o``) changes sign, so it
may only enter an even activation (output ``0e``) or an odd one (output ``0o``); a gate that is a
pseudoscalar with an odd :math:`\phi` flips the parity of the irrep it scales.

All activations are rescaled with :func:`~equidyn.nn.normalize2mom`
(:math:`\mathbb{E}[\sigma(z)^2] = 1`), so unit-variance inputs give unit second moment outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from equidyn.nn._checks import check_features, component_index
from equidyn.nn.activation import normalize2mom, parity
from equidyn.o3 import Irrep, Irreps

__all__ = ["Gate", "ScalarActivation"]

Activation = Callable[[torch.Tensor], torch.Tensor]
ActivationArg = Activation | Sequence[Activation]


def _acts_per_block(irreps: Irreps, acts: ActivationArg, name: str) -> list[Activation]:
    if callable(acts):
        return [acts] * len(irreps)
    acts = list(acts)
    if len(acts) != len(irreps):
        raise ValueError(
            f"{name} has {len(acts)} activations for {len(irreps)} blocks of {irreps}: "
            "give one callable, or one per block"
        )
    for a in acts:
        if not callable(a):
            raise TypeError(f"{name} must hold callables, got {a!r}")
    return acts


class ScalarActivation(torch.nn.Module):
    r"""Pointwise activations on scalar irreps, one activation per block.

    :math:`x_i \mapsto \tilde\sigma_b(x_i)` for the components :math:`i` of block :math:`b`,
    with :math:`\tilde\sigma_b` the :func:`~equidyn.nn.normalize2mom` rescaling of the given
    activation. Output parity of a ``0o`` block: ``0e`` for an even activation, ``0o`` for an odd
    one; an activation that is neither raises ValueError.

    Args:
        irreps_in: scalar irreps (``l = 0`` only), e.g. ``"8x0e + 2x0o"``.
        acts: one callable for all blocks, or one per block.

    >>> import torch
    >>> act = ScalarActivation("2x0e + 1x0o", [torch.nn.functional.silu, torch.tanh])
    >>> act.irreps_out
    2x0e+1x0o
    >>> act(torch.zeros(4, 3)).shape
    torch.Size([4, 3])
    """

    def __init__(self, irreps_in: Irreps | str, acts: ActivationArg) -> None:
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        for _, ir in self.irreps_in:
            if ir.l != 0:
                raise ValueError(f"ScalarActivation takes scalars only, got {ir} in {irreps_in}")
        raw = _acts_per_block(self.irreps_in, acts, "acts")
        out = []
        for (mul, ir), a in zip(self.irreps_in, raw, strict=True):
            if ir.p == 1:
                out.append((mul, ir))
                continue
            pa = parity(a)
            if pa == 0:
                raise ValueError(
                    f"activation {a!r} on the pseudoscalars {mul}x{ir} is neither even nor odd: "
                    "the output would not be equivariant under reflections"
                )
            out.append((mul, Irrep(0, pa)))
        self.irreps_out = Irreps(out)
        # merge consecutive blocks that share an activation: fewer kernel calls
        self.acts = torch.nn.ModuleList()
        self._slices: list[tuple[int, int]] = []
        last: Activation | None = None
        start = 0
        for (mul, _), a in zip(self.irreps_in, raw, strict=True):
            if mul == 0:
                continue
            if self._slices and last is a and self._slices[-1][1] == start:
                self._slices[-1] = (self._slices[-1][0], start + mul)
            else:
                self._slices.append((start, start + mul))
                self.acts.append(normalize2mom(a))
                last = a
            start += mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., irreps_in.dim)`` → ``(..., irreps_out.dim)``."""
        check_features(x, self.irreps_in)
        if len(self._slices) == 1 and self._slices[0] == (0, x.shape[-1]):
            return self.acts[0](x)
        parts = []
        for (a, b), act in zip(self._slices, self.acts, strict=True):
            parts.append(act(x[..., a:b]))
        if not parts:
            return x
        return torch.cat(parts, dim=-1)  # [..., irreps_out.dim]

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}"


class Gate(torch.nn.Module):
    r"""Gate nonlinearity :math:`s \oplus g \oplus v \mapsto \sigma(s) \oplus \phi(g)\,v`.

    Args:
        irreps_scalars: scalars that go through ``act_scalars`` (``l = 0``).
        act_scalars: one activation, or one per block of ``irreps_scalars``.
        irreps_gates: the gates, scalars, one per irrep of ``irreps_gated``
            (``irreps_gates.num_irreps == irreps_gated.num_irreps``).
        act_gates: one activation, or one per block of ``irreps_gates``.
        irreps_gated: the irreps that are scaled by the gates.

    Attributes:
        irreps_in: ``irreps_scalars + irreps_gates + irreps_gated`` (input layout).
        irreps_out: activated scalars, then the gated irreps (parity flipped where an odd
            activation acts on a ``0o`` gate).

    >>> import torch
    >>> gate = Gate("4x0e", torch.nn.functional.silu, "2x0e", torch.sigmoid, "1x1o + 1x2e")
    >>> gate.irreps_in, gate.irreps_out
    (4x0e+2x0e+1x1o+1x2e, 4x0e+1x1o+1x2e)
    >>> gate(torch.randn(10, gate.irreps_in.dim)).shape
    torch.Size([10, 12])
    """

    def __init__(
        self,
        irreps_scalars: Irreps | str,
        act_scalars: ActivationArg,
        irreps_gates: Irreps | str,
        act_gates: ActivationArg,
        irreps_gated: Irreps | str,
    ) -> None:
        super().__init__()
        irreps_scalars, irreps_gates = Irreps(irreps_scalars), Irreps(irreps_gates)
        irreps_gated = Irreps(irreps_gated)
        for name, irs in (("irreps_scalars", irreps_scalars), ("irreps_gates", irreps_gates)):
            for _, ir in irs:
                if ir.l != 0:
                    raise ValueError(f"{name} must hold scalars (l = 0) only, got {ir} in {irs}")
        if irreps_gates.num_irreps != irreps_gated.num_irreps:
            raise ValueError(
                f"irreps_gates {irreps_gates} has {irreps_gates.num_irreps} scalars but "
                f"irreps_gated {irreps_gated} has {irreps_gated.num_irreps} irreps: "
                "one gate per gated irrep is needed"
            )
        self.irreps_scalars = irreps_scalars
        self.irreps_gates = irreps_gates
        self.irreps_gated = irreps_gated
        self.act_scalars = ScalarActivation(irreps_scalars, act_scalars)
        self.act_gates = ScalarActivation(irreps_gates, act_gates)
        self.irreps_in = irreps_scalars + irreps_gates + irreps_gated

        gate_parities = [ir.p for mul, ir in self.act_gates.irreps_out for _ in range(mul)]
        gated_out: list[tuple[int, Irrep]] = []
        i = 0
        for mul, ir in irreps_gated:
            block: list[tuple[int, Irrep]] = []
            for p in gate_parities[i : i + mul]:  # split a block where its gates' parities differ
                if block and block[-1][1].p == ir.p * p:
                    block[-1] = (block[-1][0] + 1, block[-1][1])
                else:
                    block.append((1, Irrep(ir.l, ir.p * p)))
            gated_out += block if block else [(0, ir)]
            i += mul
        self.irreps_out = self.act_scalars.irreps_out + Irreps(gated_out)

        # gate_index[k]: which gate multiplies component k of the gated features
        self.register_buffer("gate_index", component_index(irreps_gated), persistent=False)
        self._ds, self._dg = irreps_scalars.dim, irreps_gates.dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(..., irreps_in.dim)`` → ``(..., irreps_out.dim)``."""
        check_features(x, self.irreps_in)
        ds, dg = self._ds, self._dg
        scalars = self.act_scalars(x[..., :ds])  # [..., irreps_scalars.dim]
        if self.irreps_gated.dim == 0:
            return scalars
        gates = self.act_gates(x[..., ds : ds + dg])  # [..., irreps_gates.dim]
        gated = x[..., ds + dg :] * gates[..., self.gate_index]  # [..., irreps_gated.dim]
        return torch.cat([scalars, gated], dim=-1)  # [..., irreps_out.dim]

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}"
