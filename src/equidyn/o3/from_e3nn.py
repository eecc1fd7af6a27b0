r"""Convert e3nn 0.6 modules (with their weights) to equidyn modules with equal outputs.

:func:`from_e3nn` reads only what an e3nn module exposes (its irreps, its instructions with
their final normalization coefficients, its flags and weights); e3nn itself is not imported.

* ``FullyConnectedTensorProduct`` becomes :class:`~equidyn.o3.FullyConnectedTensorProduct`
  with the normalizations whose coefficients equal e3nn's (any other becomes the general
  product below).
* ``TensorSquare`` becomes :class:`~equidyn.o3.TensorSquare` with e3nn's paths.
* Any other e3nn ``TensorProduct`` (``FullTensorProduct``, ``ElementwiseTensorProduct``, custom
  instructions, ``in1_var``...) becomes :class:`~equidyn.o3.TensorProduct` with one
  :class:`~equidyn.o3.Path` per instruction whose ``path_weight`` is the square of e3nn's
  coefficient (normalizations ``"none"``): the same numbers whatever produced them.
* ``Linear`` becomes :class:`~equidyn.o3.Linear` when it is the default fully connected map
  (``path_normalization="element"``) with biases on all or none of its ``0e`` outputs;
  anything else raises ``ValueError`` naming what differs.

The result has the dtype and device of the e3nn module and a copy of its weights.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from equidyn.o3.irreps import Irrep, Irreps
from equidyn.o3.linear import Linear
from equidyn.o3.tensor_product import (
    FullyConnectedTensorProduct,
    Path,
    TensorProduct,
    TensorSquare,
)

__all__ = ["from_e3nn"]


def _is_e3nn(module: object, name: str) -> bool:
    return any(
        c.__name__ == name and c.__module__.startswith("e3nn.") for c in type(module).__mro__
    )


def _dtype_device(module: nn.Module) -> tuple[torch.dtype, torch.device]:
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t.dtype, t.device
    return torch.get_default_dtype(), torch.device("cpu")


def _paths(module: Any) -> list[Path]:
    return [
        Path(
            ins.i_in1, ins.i_in2, ins.i_out, ins.connection_mode, bool(ins.has_weight),
            float(ins.path_weight) ** 2,
        )
        for ins in module.instructions
    ]  # fmt: skip


def _same_coefficients(ours: TensorProduct, module: Any) -> bool:
    theirs = [float(ins.path_weight) for ins in module.instructions]
    return len(theirs) == len(ours._coeffs) and all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(ours._coeffs, theirs)
    )


def _flags(module: Any) -> dict[str, Any]:
    internal = bool(module.internal_weights)
    if internal:
        return {"internal_weights": True, "shared_weights": True}
    shared = bool(module.shared_weights) if module.weight_numel > 0 else None
    return {"internal_weights": False, "shared_weights": shared}


def _fully_connected(module: Any) -> TensorProduct | None:
    i1, i2, out = (str(module.irreps_in1), str(module.irreps_in2), str(module.irreps_out))
    wanted = [(p.in1, p.in2, p.out, p.mode, p.weighted) for p in _paths(module)]
    for irrep_normalization in ("component", "norm", "none"):
        for path_normalization in ("element", "path", "none"):
            tp = FullyConnectedTensorProduct(
                i1,
                i2,
                out,
                irrep_normalization=irrep_normalization,
                path_normalization=path_normalization,
                **_flags(module),
            )
            got = [(p.in1, p.in2, p.out, p.mode, p.weighted) for p in tp.paths]
            if got == wanted and _same_coefficients(tp, module):
                return tp
    return None


def _general(module: Any) -> TensorProduct:
    return TensorProduct(
        str(module.irreps_in1),
        str(module.irreps_in2),
        str(module.irreps_out),
        _paths(module),
        irrep_normalization="none",
        path_normalization="none",
        **_flags(module),
    )


def _square(module: Any) -> TensorSquare:
    ir, out = Irreps(str(module.irreps_in)), Irreps(str(module.irreps_out))
    return TensorSquare._with_paths(ir, out, _paths(module), **_flags(module))


def _linear(module: Any) -> Linear:
    ir_in, ir_out = Irreps(str(module.irreps_in)), Irreps(str(module.irreps_out))
    weights = [i for i in module.instructions if i.i_in != -1]
    biased = sorted(i.i_out for i in module.instructions if i.i_in == -1)
    scalars = [c for c, (_, ir) in enumerate(ir_out) if ir == Irrep("0e")]
    if biased and biased != scalars:
        raise ValueError(
            f"from_e3nn: this e3nn Linear has biases on output blocks {biased}; equidyn's "
            f"Linear has them on all 0e blocks ({scalars}) or none"
        )
    if biased and not module.internal_weights:
        raise ValueError("from_e3nn: an e3nn Linear with external weights and biases has no "
                         "equidyn counterpart (equidyn's biases are always internal)")  # fmt: skip
    ours = Linear(
        ir_in,
        ir_out,
        internal_weights=bool(module.internal_weights),
        shared_weights=True if module.internal_weights else None,
        biases=bool(biased),
    )
    got = [(i.i_in, i.i_out) for i in weights]
    if got != list(ours.pairs):
        raise ValueError(
            f"from_e3nn: this e3nn Linear has custom instructions {got}; equidyn's Linear "
            f"connects every pair of equal irreps ({list(ours.pairs)})"
        )
    for ins, (_, c) in zip(weights, ours.pairs):
        if not math.isclose(float(ins.path_weight), ours._alpha[c], rel_tol=1e-9):
            raise ValueError(
                "from_e3nn: this e3nn Linear is not normalized with "
                "path_normalization='element' (the only one of equidyn's Linear)"
            )
    if getattr(module, "weight", None) is not None and module.weight.ndim > 1:
        raise ValueError("from_e3nn: e3nn Linear with f_in/f_out is not supported")
    return ours


def from_e3nn(module: nn.Module) -> nn.Module:
    r"""The equidyn module computing the same function as the e3nn 0.6 ``module`` (a
    ``TensorProduct`` or any of its subclasses, or a ``Linear``), with its weights copied,
    in its dtype and on its device (rules in the module docstring).

    Raises ``TypeError`` for any other module and ``ValueError`` for an e3nn option that has
    no counterpart.

    >>> from_e3nn(torch.nn.Linear(2, 2))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: from_e3nn converts e3nn's TensorProduct (and subclasses) and Linear, got ...
    """
    if _is_e3nn(module, "TensorProduct"):
        tp: TensorProduct | None
        if _is_e3nn(module, "TensorSquare"):
            tp = _square(module)
        elif _is_e3nn(module, "FullyConnectedTensorProduct"):
            tp = _fully_connected(module) or _general(module)
        else:
            tp = _general(module)
        ours: nn.Module = tp
    elif _is_e3nn(module, "Linear"):
        ours = _linear(module)
    else:
        raise TypeError(
            "from_e3nn converts e3nn's TensorProduct (and subclasses) and Linear, got "
            f"{type(module).__name__} from {type(module).__module__}"
        )
    dtype, device = _dtype_device(module)
    ours = ours.to(dtype=dtype, device=device)
    with torch.no_grad():
        for name in ("weight", "bias"):
            mine = getattr(ours, name, None)
            if isinstance(mine, nn.Parameter):
                mine.copy_(getattr(module, name).detach().reshape(mine.shape))
    return ours
