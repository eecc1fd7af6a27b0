"""Resolution and checks of the weights of a product or linear module (shared by
:class:`~equidyn.o3.TensorProduct` and :class:`~equidyn.o3.Linear`)."""

from __future__ import annotations

from torch import Tensor


def resolve_weight(
    weight: Tensor | None,
    *,
    owner: str,
    call_internal: str,
    call_external: str,
    internal_weights: bool,
    shared_weights: bool | None,
    weight_numel: int,
    parameter: Tensor | None,
    like: Tensor,
) -> tuple[Tensor, bool]:
    """Return ``(weight, shared)`` for a call, or raise ValueError naming what is expected.

    ``weight`` is what the caller passed; ``parameter`` the module's internal weight (used when
    ``internal_weights``); ``shared`` is True for a single ``(weight_numel,)`` vector and False
    for per-sample weights ``(..., weight_numel)``.
    """
    if weight is None:
        if not internal_weights:
            if weight_numel > 0:
                raise ValueError(
                    f"this {owner} has external weights: call {call_external} with "
                    f"weight of shape (..., {weight_numel})"
                )
            weight = like.new_zeros(0)
        else:
            weight = parameter  # type: ignore[assignment]  # set whenever internal_weights
    elif internal_weights:
        raise ValueError(f"this {owner} has internal weights: call it as {call_internal}")
    if weight.ndim < 1 or weight.shape[-1] != weight_numel:
        raise ValueError(f"weight has shape {tuple(weight.shape)}, expected (..., {weight_numel})")
    shared = weight.ndim == 1
    if shared_weights is True and not shared:
        raise ValueError(
            f"shared_weights=True needs weight of shape ({weight_numel},), "
            f"got {tuple(weight.shape)}"
        )
    if shared_weights is False and shared:
        raise ValueError(
            f"shared_weights=False needs per-sample weight of shape (..., {weight_numel}), "
            f"got {tuple(weight.shape)}"
        )
    return weight, shared
