r"""The equivariant linear map between irreps (Schur's lemma).

By Schur's lemma an equivariant linear map can only mix copies of the **same** irrep, with one
scalar per pair of copies:

.. math::
    y^{(c)}_{w k} = \frac{1}{\sqrt{\sum_{a \to c} U_a}} \sum_{a:\ ir_a = ir_c} \sum_u
    W^{(a c)}_{u w}\, x^{(a)}_{u k} \;+\; b^{(c)}_w\,[ir_c = 0e]

for every input block :math:`a` of multiplicity :math:`U_a` and output block :math:`c` of the
same irrep (``k`` runs over the :math:`2l+1` components). The normalization
:math:`1/\sqrt{\text{fan-in}}` with unit-normal weights keeps unit-variance inputs at unit
variance (e3nn's ``path_normalization="element"``); the optional biases (zero at init) act on
``0e`` outputs only. The weights of the pairs :math:`(a, c)`, taken in the order
``for a in irreps_in: for c in irreps_out``, each flattened from shape :math:`(U_a, W_c)`,
form one vector of length ``weight_numel`` (e3nn's layout).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equidyn.o3._e3nn_state import E3nnStateMixin
from equidyn.o3._weights import resolve_weight
from equidyn.o3.irreps import Irrep, Irreps

__all__ = ["Linear"]


class Linear(E3nnStateMixin):
    r"""Equivariant linear map ``irreps_in -> irreps_out`` (formula in the module docstring).

    Args:
        irreps_in, irreps_out: input and output irreps; output blocks whose irrep is absent
            from the input are zero (plus their bias, for ``0e``).
        internal_weights: keep the weights as the parameter ``.weight`` (unit-normal init);
            otherwise pass ``weight`` of shape ``(weight_numel,)`` or ``(..., weight_numel)``
            (per sample, broadcast against the input's leading dimensions) to ``forward``.
        shared_weights: with external weights, ``True`` demands a weight of shape
            ``(weight_numel,)``, ``False`` a per-sample one; ``None`` accepts either.
        biases: add a learnable bias (parameter ``.bias``, zero init, always internal) to every
            ``0e`` output block.

    >>> lin = Linear("2x0e + 1x1o", "3x0e + 2x1o + 1x2e", biases=True)
    >>> lin.weight_numel, lin.bias.numel()
    (8, 3)
    >>> lin(torch.randn(4, 5)).shape
    torch.Size([4, 14])
    """

    def __init__(
        self,
        irreps_in: Irreps | str,
        irreps_out: Irreps | str,
        *,
        internal_weights: bool = True,
        shared_weights: bool | None = None,
        biases: bool = False,
    ) -> None:
        super().__init__()
        self.irreps_in = Irreps(irreps_in)
        self.irreps_out = Irreps(irreps_out)
        if internal_weights and shared_weights is False:
            raise ValueError("internal_weights=True needs shared_weights (not False)")
        self.internal_weights = bool(internal_weights)
        self.shared_weights = True if internal_weights else shared_weights
        self.pairs: tuple[tuple[int, int], ...] = tuple(
            (a, c)
            for a, (_, ir_a) in enumerate(self.irreps_in)
            for c, (_, ir_c) in enumerate(self.irreps_out)
            if ir_a == ir_c
        )
        self._offsets = []
        n = 0
        for a, c in self.pairs:
            self._offsets.append(n)
            n += self.irreps_in[a].mul * self.irreps_out[c].mul
        self.weight_numel = n
        fan = [0] * len(self.irreps_out)
        for a, c in self.pairs:
            fan[c] += self.irreps_in[a].mul
        self._alpha = [1.0 / math.sqrt(f) if f > 0 else 1.0 for f in fan]
        # per irrep: input blocks, output blocks
        self._groups: list[tuple[Irrep, list[int], list[int]]] = []
        for ir in dict.fromkeys(ir for _, ir in self.irreps_out):
            ins = [a for a, (m, ir_a) in enumerate(self.irreps_in) if ir_a == ir and m > 0]
            outs = [c for c, (m, ir_c) in enumerate(self.irreps_out) if ir_c == ir and m > 0]
            if ins and outs:
                self._groups.append((ir, ins, outs))
        self._bias_blocks = [
            c for c, (m, ir) in enumerate(self.irreps_out) if biases and ir == Irrep("0e")
        ]
        self.bias_numel = sum(self.irreps_out[c].mul for c in self._bias_blocks)
        if self.internal_weights:
            self.weight = nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.register_parameter("weight", None)
        if biases:
            self.bias = nn.Parameter(torch.zeros(self.bias_numel))
        else:
            self.register_parameter("bias", None)

    def _matrix(self, weight: Tensor, ins: list[int], outs: list[int]) -> Tensor:
        """Weight matrix of one irrep, [(Z,) sum U_a, sum W_c], normalization included."""
        lead = weight.shape[:-1]
        index = {pc: k for k, pc in enumerate(self.pairs)}
        rows = []
        for a in ins:
            cols = []
            for c in outs:
                k = index[(a, c)]
                U, W = self.irreps_in[a].mul, self.irreps_out[c].mul
                o = self._offsets[k]
                w = weight.narrow(-1, o, U * W).reshape(*lead, U, W) * self._alpha[c]
                cols.append(w)
            rows.append(torch.cat(cols, dim=-1) if len(cols) > 1 else cols[0])
        return torch.cat(rows, dim=-2) if len(rows) > 1 else rows[0]

    def forward(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        din = self.irreps_in.dim
        if x.ndim < 1 or x.shape[-1] != din:
            raise ValueError(
                f"input has shape {tuple(x.shape)}, expected (..., {din}) "
                f"for irreps {self.irreps_in}"
            )
        self._check_dtypes(x, weight)
        weight, shared = resolve_weight(
            weight,
            owner="Linear",
            call_internal="linear(x)",
            call_external="it",
            internal_weights=self.internal_weights,
            shared_weights=self.shared_weights,
            weight_numel=self.weight_numel,
            parameter=self.weight if self.internal_weights else None,
            like=x,
        )
        lead = [x.shape[:-1]] + ([] if shared else [weight.shape[:-1]])
        try:
            batch = torch.broadcast_shapes(*lead)
        except RuntimeError:
            raise ValueError(
                f"leading dimensions do not broadcast: x {tuple(x.shape)}, weight "
                f"{tuple(weight.shape)}"
            ) from None
        Z = math.prod(batch)
        x = x.expand(*batch, din).reshape(Z, din)
        if not shared:
            weight = weight.expand(*batch, self.weight_numel).reshape(Z, self.weight_numel)
        out = self._main(x, weight, shared, Z)  # [Z, irreps_out.dim]
        return out.reshape(*batch, self.irreps_out.dim)

    def _check_dtypes(self, x: Tensor, weight: Tensor | None) -> None:
        """``TypeError`` unless the input, the weights given and the module's parameters share
        one floating dtype (the dtype policy: inputs are never cast silently)."""
        dtypes = {"the input": x.dtype}
        if weight is not None:
            dtypes["weight"] = weight.dtype
        for name in ("weight", "bias"):
            p = getattr(self, name)
            if p is not None:
                dtypes[f"the module's {name}"] = p.dtype
        if not x.is_floating_point() or len(set(dtypes.values())) > 1:
            got = ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items())
            raise TypeError(
                f"Linear inputs and parameters must share one floating dtype, got {got}: "
                "convert the input (x.to(dtype)) or the module (linear.to(dtype))"
            )

    def _main(self, x: Tensor, weight: Tensor, shared: bool, Z: int) -> Tensor:
        xb = [
            t.reshape(Z, m, ir.dim)
            for t, (m, ir) in zip(
                torch.split(x, [mi.dim for mi in self.irreps_in], dim=1), self.irreps_in
            )
        ]
        blocks: list[Tensor | None] = [None] * len(self.irreps_out)
        for ir, ins, outs in self._groups:
            X = torch.cat([xb[a] for a in ins], dim=1) if len(ins) > 1 else xb[ins[0]]
            Wm = self._matrix(weight, ins, outs)  # [(Z,) sumU, sumW]
            d = ir.dim
            if shared:
                if d == 1:
                    Y = (X.flatten(1) @ Wm).unsqueeze(-1)  # [Z, sumW, 1]
                else:
                    Y = (X.transpose(1, 2).reshape(Z * d, X.shape[1]) @ Wm).reshape(
                        Z, d, Wm.shape[-1]
                    )
                    Y = Y.transpose(1, 2)  # [Z, sumW, d]
            else:
                Y = torch.bmm(Wm.transpose(1, 2), X)  # [Z, sumW, d]
            parts = torch.split(Y, [self.irreps_out[c].mul for c in outs], dim=1)
            for c, part in zip(outs, parts):
                blocks[c] = part.flatten(1)
        if self.bias is not None:
            biases = torch.split(self.bias, [self.irreps_out[c].mul for c in self._bias_blocks])
            for c, b in zip(self._bias_blocks, biases):
                blocks[c] = b if blocks[c] is None else blocks[c] + b
        full = []
        for c, (mul, ir) in enumerate(self.irreps_out):
            b = blocks[c]
            if b is None:
                full.append(x.new_zeros(Z, mul * ir.dim))
            elif b.ndim == 1:
                full.append(b.expand(Z, mul))
            else:
                full.append(b)
        if not full:
            return x.new_zeros(Z, 0)
        return torch.cat(full, dim=1) if len(full) > 1 else full[0].contiguous()

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, weight_numel={self.weight_numel}"
