r"""Equivariance tests for any callable: public, so users test their own models.

A function :math:`f` with declared input and output representations is equivariant under a
group element :math:`g` when

.. math::  f(\rho_{in}(g)\,x) = \rho_{out}(g)\, f(x).

:func:`equivariance_error` measures :math:`\max |f(\rho_{in}(g) x) - \rho_{out}(g) f(x)|` over
random elements of E(3) = O(3) ⋉ R³ — proper rotations *and* improper ones (a rotation composed
with the inversion :math:`x \mapsto -x`, which together give every element of O(3)) — optionally
composed with random translations of Cartesian points and random permutations of a node axis.
:func:`assert_equivariant` raises an ``AssertionError`` when the error exceeds a tolerance chosen
per dtype (1e-10 for float64, 1e-4 for float32, relative to the size of the outputs).

Each entry of ``irreps_in`` / ``irreps_out`` says how the matching argument / output transforms:

* an :class:`~equidyn.o3.Irreps` (or a string such as ``"1x0e + 2x1o"``): features ``(..., dim)``
  transformed with ``irreps.D_from_matrix(R)``;
* ``"cartesian_points"``: positions ``(..., 3)`` rotated by ``R`` and shifted by the translation;
* ``None``: left untouched (integers, masks, edge lists, ...), and never permuted.

>>> import torch
>>> from equidyn.testing import assert_equivariant
>>> cross = lambda a, b: torch.linalg.cross(a, b)
>>> errors = assert_equivariant(cross, irreps_in=["1o", "1o"], irreps_out=["1e"])
>>> sorted(errors)
['improper rotation', 'proper rotation']

For a finite group of the plane (:mod:`equidyn.groups`), pass ``group=`` and describe each
argument / output by its action instead of irreps: ``"image"`` (``(..., H, W)``),
``"regular"`` (feature maps over the group, ``(..., |G|, H, W)``), ``"points"``
(``(..., 2)``), ``"trivial"`` or ``None`` (unchanged), or a callable ``(group, g, x) -> x``.
Every element of the group is tested (see :func:`group_equivariance_error`).

>>> from equidyn.groups import Dihedral
>>> blur = lambda x: torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)
>>> errors = assert_equivariant(blur, ["image"], ["image"], group=Dihedral(4),
...                             args_in=[torch.randn(2, 5, 5, dtype=torch.float64)])
>>> len(errors)
8
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import torch

from equidyn.groups.actions import act_on_image, act_on_points, act_on_regular
from equidyn.groups.finite import FiniteGroup
from equidyn.o3.irreps import Irreps
from equidyn.o3.rotations import rand_matrix

__all__ = [
    "assert_equivariant",
    "equivariance_error",
    "default_tolerance",
    "group_equivariance_error",
    "assert_group_equivariant",
]

CARTESIAN = "cartesian_points"
Spec = Irreps | str | None


def default_tolerance(dtype: torch.dtype) -> float:
    """Tolerance of :func:`assert_equivariant` for ``dtype``: 1e-10 (float64), 1e-4 (float32),
    1e-2 (half precisions).

    >>> default_tolerance(torch.float64)
    1e-10
    """
    return {torch.float64: 1e-10, torch.float32: 1e-4}.get(dtype, 1e-2)


def _parse_specs(specs: Sequence[Spec] | Spec, what: str) -> list[Irreps | str | None]:
    if specs is None or isinstance(specs, (str, Irreps)):
        specs = [specs]
    out: list[Irreps | str | None] = []
    for s in specs:
        if s is None or s == CARTESIAN:
            out.append(s)
        else:
            try:
                out.append(Irreps(s))
            except (ValueError, TypeError) as e:
                raise ValueError(
                    f"{what} entry {s!r} is not understood: expected an Irreps, "
                    f"'{CARTESIAN}' or None ({e})"
                ) from None
    return out


def _parse_dims(dims: int | Sequence[int | None] | None, n: int, what: str) -> list[int | None]:
    if dims is None or isinstance(dims, int):
        return [dims] * n
    dims = list(dims)
    if len(dims) != n:
        raise ValueError(f"{what} has {len(dims)} entries, expected one per argument ({n})")
    return dims


def _as_tuple(x: Any) -> tuple[Any, ...]:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _cast(a: Any, dtype: torch.dtype) -> Any:
    if isinstance(a, torch.Tensor) and a.is_floating_point():
        return a.to(dtype)
    return a


def _random_input(spec: Irreps | str | None, dtype: torch.dtype, gen: torch.Generator) -> Any:
    if spec is None:
        raise ValueError("an input declared None cannot be generated: pass args_in")
    dim = 3 if spec == CARTESIAN else spec.dim  # type: ignore[union-attr]
    return torch.randn(5, dim, dtype=dtype, generator=gen)


def _transform(
    x: Any,
    spec: Irreps | str | None,
    R: torch.Tensor,
    t: torch.Tensor | None,
    perm: torch.Tensor | None,
    node_dim: int | None,
) -> Any:
    if spec is None:
        return x
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a tensor for declared irreps {spec}, got {type(x).__name__}")
    R = R.to(dtype=x.dtype, device=x.device)
    if spec == CARTESIAN:
        if x.shape[-1] != 3:
            raise ValueError(
                f"a '{CARTESIAN}' tensor must have last dim 3, got shape {tuple(x.shape)}"
            )
        y = x @ R.T
        if t is not None:
            y = y + t.to(dtype=x.dtype, device=x.device)
    else:
        if x.shape[-1] != spec.dim:  # type: ignore[union-attr]
            raise ValueError(
                f"tensor of shape {tuple(x.shape)} does not match irreps {spec} "
                f"(expected last dim {spec.dim})"  # type: ignore[union-attr]
            )
        D = spec.D_from_matrix(R)  # type: ignore[union-attr]
        y = x @ D.T
    if perm is not None and node_dim is not None:
        y = y.index_select(node_dim, perm.to(x.device))
    return y


def equivariance_error(
    fn: Callable[..., Any],
    irreps_in: Sequence[Spec] | Spec,
    irreps_out: Sequence[Spec] | Spec,
    *,
    args_in: Sequence[Any] | None = None,
    n_samples: int = 2,
    translations: bool = False,
    permutations: bool = False,
    node_dims_in: int | Sequence[int | None] | None = 0,
    node_dims_out: int | Sequence[int | None] | None = 0,
    dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, float]:
    r"""Largest equivariance error of ``fn`` over random group elements, relative to the outputs.

    Args:
        fn: called as ``fn(*args)``; returns a tensor or a tuple of tensors.
        irreps_in: how each argument transforms (see the module docstring).
        irreps_out: how each output transforms.
        args_in: the arguments; by default random ``(5, dim)`` tensors for every input.
        n_samples: random elements of each kind tested.
        translations: also translate every ``"cartesian_points"`` argument and output.
        permutations: also permute the node axis ``node_dims_in[i]`` of each argument and
            ``node_dims_out[j]`` of each output (``None`` entries are not permuted).
        dtype: dtype of generated inputs (default: that of ``args_in``, else float64).
        generator: torch generator for reproducible group elements.

    Returns:
        ``{"proper rotation": err, "improper rotation": err, ...}``: for each kind of element,
        :math:`\max_g \max |f(g x) - g f(x)| / \max(1, \max|f(x)|)`.

    >>> import torch
    >>> norm = lambda v: v.norm(dim=-1, keepdim=True)
    >>> err = equivariance_error(norm, irreps_in=["1o"], irreps_out=["0e"])
    >>> max(err.values()) < 1e-12
    True
    """
    specs_in = _parse_specs(irreps_in, "irreps_in")
    specs_out = _parse_specs(irreps_out, "irreps_out")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    if args_in is None:
        dt = dtype or torch.float64
        args = [_random_input(s, dt, gen) for s in specs_in]
    else:
        args = list(_as_tuple(args_in))
        if len(args) != len(specs_in):
            raise ValueError(f"got {len(args)} args_in but {len(specs_in)} irreps_in entries")
        if dtype is not None:
            args = [_cast(a, dtype) for a in args]
    dims_in = _parse_dims(node_dims_in, len(specs_in), "node_dims_in")
    dims_out = _parse_dims(node_dims_out, len(specs_out), "node_dims_out")

    out = _as_tuple(fn(*args))
    if len(out) != len(specs_out):
        raise ValueError(f"fn returned {len(out)} outputs but {len(specs_out)} irreps_out entries")
    scale = max([1.0] + [float(o.detach().abs().max()) for o in out if o.numel() > 0])

    n_nodes = None
    if permutations:
        for a, d, s in zip(args, dims_in, specs_in):
            if s is not None and d is not None and isinstance(a, torch.Tensor):
                n_nodes = a.shape[d]
                break
        if n_nodes is None:
            raise ValueError("permutations=True but no argument has a node axis to permute")

    kinds = ["proper rotation", "improper rotation"]
    errors: dict[str, float] = {}
    for kind in kinds:
        worst = 0.0
        for _ in range(n_samples):
            R = rand_matrix(dtype=torch.float64, generator=gen)
            if kind == "improper rotation":
                R = -R
            t = torch.randn(3, dtype=torch.float64, generator=gen) if translations else None
            perm = torch.randperm(n_nodes, generator=gen) if permutations else None  # type: ignore[arg-type]
            g_args = [_transform(a, s, R, t, perm, d) for a, s, d in zip(args, specs_in, dims_in)]
            out_g = _as_tuple(fn(*g_args))
            g_out = [_transform(o, s, R, t, perm, d) for o, s, d in zip(out, specs_out, dims_out)]
            for a, b in zip(out_g, g_out):
                if isinstance(a, torch.Tensor) and a.numel() > 0:
                    worst = max(worst, float((a.detach() - b.detach()).abs().max()) / scale)
        errors[kind] = worst
    return errors


def assert_equivariant(
    fn: Callable[..., Any],
    irreps_in: Sequence[Spec] | Spec,
    irreps_out: Sequence[Spec] | Spec,
    *,
    args_in: Sequence[Any] | None = None,
    n_samples: int = 2,
    translations: bool = False,
    permutations: bool = False,
    node_dims_in: int | Sequence[int | None] | None = 0,
    node_dims_out: int | Sequence[int | None] | None = 0,
    dtype: torch.dtype | None = None,
    atol: float | None = None,
    generator: torch.Generator | None = None,
    group: FiniteGroup | None = None,
) -> dict[str, float]:
    """Assert that ``fn`` is equivariant; returns the errors of :func:`equivariance_error`.

    With ``group`` (a finite group of :mod:`equidyn.groups`), ``irreps_in`` / ``irreps_out``
    are group actions and this is :func:`assert_group_equivariant` (``args_in`` required).

    The tolerance ``atol`` defaults to :func:`default_tolerance` of the floating dtype of the
    inputs (1e-10 in float64, 1e-4 in float32), relative to ``max(1, max|f(x)|)``.

    >>> import torch
    >>> double = lambda x: 2 * x
    >>> _ = assert_equivariant(double, irreps_in=["2x1o + 1x2e"], irreps_out=["2x1o + 1x2e"])
    """
    if group is not None:
        if args_in is None:
            raise ValueError("assert_equivariant with a group needs args_in (the input tensors)")
        # with a group, irreps_in / irreps_out name group actions ("image", "points", ...)
        actions_in, actions_out = cast(Any, irreps_in), cast(Any, irreps_out)
        return assert_group_equivariant(
            fn, group, actions_in, actions_out, args_in=args_in, dtype=dtype, atol=atol
        )
    errors = equivariance_error(
        fn,
        irreps_in,
        irreps_out,
        args_in=args_in,
        n_samples=n_samples,
        translations=translations,
        permutations=permutations,
        node_dims_in=node_dims_in,
        node_dims_out=node_dims_out,
        dtype=dtype,
        generator=generator,
    )
    return _check_errors(errors, atol, args_in, dtype, "equivariant")


def _check_errors(
    errors: dict[str, float],
    atol: float | None,
    args_in: Sequence[Any] | None,
    dtype: torch.dtype | None,
    what: str,
) -> dict[str, float]:
    """Raise ``AssertionError`` if an error exceeds ``atol`` (default: per floating dtype)."""
    if atol is None:
        floats = [
            a
            for a in _as_tuple(args_in if args_in is not None else ())
            if isinstance(a, torch.Tensor) and a.is_floating_point()
        ]
        dt = dtype or (floats[0].dtype if floats else torch.float64)
        atol = default_tolerance(dt)
    bad = {k: v for k, v in errors.items() if not v <= atol}
    if bad:
        raise AssertionError(
            f"not {what}: relative error {bad} exceeds tolerance {atol:g} (all errors: {errors})"
        )
    return errors


GroupAction = str | Callable[[FiniteGroup, int, Any], Any] | None
_GROUP_ACTIONS: dict[str, Callable[[FiniteGroup, int, torch.Tensor], torch.Tensor]] = {
    "image": act_on_image,
    "regular": act_on_regular,
    "points": act_on_points,
}


def _parse_actions(actions: Sequence[GroupAction] | GroupAction, what: str) -> list[Any]:
    if actions is None or isinstance(actions, str) or callable(actions):
        actions = [actions]
    out: list[Any] = []
    for a in actions:
        if a is None or a == "trivial":
            out.append(None)
        elif isinstance(a, str):
            if a not in _GROUP_ACTIONS:
                raise ValueError(
                    f"{what} entry {a!r} is not a group action: expected one of "
                    f"{sorted(_GROUP_ACTIONS) + ['trivial']}, None or a callable (group, g, x)"
                )
            out.append(_GROUP_ACTIONS[a])
        elif callable(a):
            out.append(a)
        else:
            raise TypeError(f"{what} entry {a!r} is not a group action")
    return out


def group_equivariance_error(
    fn: Callable[..., Any],
    group: FiniteGroup,
    actions_in: Sequence[GroupAction] | GroupAction,
    actions_out: Sequence[GroupAction] | GroupAction,
    *,
    args_in: Sequence[Any],
    dtype: torch.dtype | None = None,
) -> dict[str, float]:
    r"""Equivariance error of ``fn`` for **every** element ``g`` of a finite group:
    :math:`\max |f(g \cdot x) - g \cdot f(x)| / \max(1, \max|f(x)|)`, keyed by element name.

    >>> import torch
    >>> from equidyn.groups import Cyclic
    >>> total = lambda x: x.sum(dim=(-2, -1))
    >>> err = group_equivariance_error(total, Cyclic(4), ["image"], ["trivial"],
    ...                                args_in=[torch.randn(3, 5, 5, dtype=torch.float64)])
    >>> sorted(err), max(err.values()) < 1e-12
    (['e', 'r^1', 'r^2', 'r^3'], True)
    """
    acts_in = _parse_actions(actions_in, "actions_in")
    acts_out = _parse_actions(actions_out, "actions_out")
    args = list(_as_tuple(args_in))
    if len(args) != len(acts_in):
        raise ValueError(f"got {len(args)} args_in but {len(acts_in)} actions_in entries")
    if dtype is not None:
        args = [_cast(a, dtype) for a in args]
    out = _as_tuple(fn(*args))
    if len(out) != len(acts_out):
        raise ValueError(f"fn returned {len(out)} outputs but {len(acts_out)} actions_out entries")
    scale = max([1.0] + [float(o.detach().abs().max()) for o in out if o.numel() > 0])
    act = lambda a, g, x: x if a is None else a(group, g, x)
    errors: dict[str, float] = {}
    for g in group.elements():
        out_g = _as_tuple(fn(*[act(a, g, x) for a, x in zip(acts_in, args)]))
        g_out = [act(a, g, y) for a, y in zip(acts_out, out)]
        errs = [float((a.detach() - b.detach()).abs().max()) / scale
                for a, b in zip(out_g, g_out) if a.numel() > 0]  # fmt: skip
        errors[group.element_name(g)] = max(errs, default=0.0)
    return errors


def assert_group_equivariant(
    fn: Callable[..., Any],
    group: FiniteGroup,
    actions_in: Sequence[GroupAction] | GroupAction,
    actions_out: Sequence[GroupAction] | GroupAction,
    *,
    args_in: Sequence[Any],
    dtype: torch.dtype | None = None,
    atol: float | None = None,
) -> dict[str, float]:
    """Assert :func:`group_equivariance_error` is below ``atol`` (default: per dtype, as
    :func:`assert_equivariant`) for every element; returns the errors.

    >>> import torch
    >>> from equidyn.groups import Dihedral
    >>> _ = assert_group_equivariant(torch.relu, Dihedral(4), "image", "image",
    ...                              args_in=[torch.randn(2, 7, 7, dtype=torch.float64)])
    """
    errors = group_equivariance_error(
        fn, group, actions_in, actions_out, args_in=args_in, dtype=dtype
    )
    return _check_errors(errors, atol, args_in, dtype, f"{group!r}-equivariant")
