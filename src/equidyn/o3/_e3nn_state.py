"""Loading e3nn 0.6 state dicts into the matching equidyn modules.

An e3nn tensor product or ``Linear`` saves, next to its ``weight`` (and ``bias``) with the
same layout as ours, entries that describe its code generation rather than parameters:
the buffer ``output_mask``, the constants of its generated code
(``_compiled_main_left_right._w3j_1_1_0``, ...), and an empty ``weight`` / ``bias`` when it
has none. :func:`drop_e3nn_entries` removes exactly those from a state dict before
``nn.Module._load_from_state_dict`` reads it, so ``load_state_dict(e3nn_module.state_dict())``
works with ``strict=True``; every other key is left for the usual strict checks.
"""

from __future__ import annotations

from typing import Any

from torch import nn

__all__ = ["E3nnStateMixin", "drop_e3nn_entries"]

_E3NN_BUFFERS = ("output_mask",)
_E3NN_CODEGEN = ("_compiled_main_left_right.", "_compiled_main_right.", "_compiled_main.")


def drop_e3nn_entries(module: nn.Module, state_dict: dict[str, Any], prefix: str) -> None:
    """Remove e3nn's non-parameter entries under ``prefix`` from ``state_dict`` in place: its
    buffers (``output_mask``), the constants of its generated code, and an empty ``weight``
    or ``bias`` where ``module`` has no such parameter."""
    for key in list(state_dict):
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        if name in _E3NN_BUFFERS and name not in module._buffers:
            del state_dict[key]
        elif name.startswith(_E3NN_CODEGEN) and name.split(".", 1)[0] not in module._modules:
            del state_dict[key]
        elif name in ("weight", "bias") and getattr(module, name, None) is None:
            value = state_dict[key]
            if hasattr(value, "numel") and value.numel() == 0:
                del state_dict[key]


class E3nnStateMixin(nn.Module):
    """Accept e3nn state dicts: drops e3nn's extra entries (:func:`drop_e3nn_entries`) before
    the usual loading."""

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        drop_e3nn_entries(self, state_dict, prefix)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
