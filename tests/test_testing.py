import pytest
import torch

from equidyn.testing import assert_equivariant, default_tolerance, equivariance_error


def test_equivariant_functions_pass_in_both_dtypes():
    cross = lambda a, b: torch.linalg.cross(a, b)
    for dtype in (torch.float64, torch.float32):
        errs = assert_equivariant(cross, ["1o", "1o"], ["1e"], dtype=dtype)
        assert max(errs.values()) <= default_tolerance(dtype)


def test_wrong_parity_is_caught():
    cross = lambda a, b: torch.linalg.cross(a, b)
    # the cross product of two vectors is a pseudovector: declaring it a vector must fail
    err = equivariance_error(cross, ["1o", "1o"], ["1o"])
    assert err["proper rotation"] < 1e-12
    assert err["improper rotation"] > 0.1
    with pytest.raises(AssertionError, match="improper"):
        assert_equivariant(cross, ["1o", "1o"], ["1o"])


def test_non_equivariant_function_fails():
    first_component = lambda v: v[..., :1]
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(first_component, ["1o"], ["0e"])


def test_translations_and_permutations():
    def centre(x):  # positions relative to the centroid: translation invariant vectors
        return x - x.mean(dim=0, keepdim=True)

    def centroid(x):
        return x.mean(dim=0, keepdim=True)

    assert_equivariant(centre, ["cartesian_points"], ["1o"], translations=True, permutations=True)
    assert_equivariant(
        centroid,
        ["cartesian_points"],
        ["cartesian_points"],
        translations=True,
        permutations=True,
        node_dims_out=[None],
    )
    # declaring translation-invariant output as points must fail under translations
    with pytest.raises(AssertionError):
        assert_equivariant(centre, ["cartesian_points"], ["cartesian_points"], translations=True)

    def first_node(x):  # not permutation equivariant
        return x[:1].expand_as(x)

    with pytest.raises(AssertionError):
        assert_equivariant(first_node, ["1o"], ["1o"], permutations=True)


def test_untouched_inputs_and_args_in():
    pos = torch.randn(4, 3, dtype=torch.float64)
    charges = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    n_steps = 3

    def f(x, q, n):
        return x * q[:, None] * n

    errs = assert_equivariant(f, ["1o", None, None], ["1o"], args_in=(pos, charges, n_steps))
    assert set(errs) == {"proper rotation", "improper rotation"}


def test_bad_specs():
    with pytest.raises(ValueError, match="not understood"):
        equivariance_error(lambda x: x, ["3x1q"], ["1o"])
    with pytest.raises(ValueError, match="outputs"):
        equivariance_error(lambda x: (x, x), ["1o"], ["1o"])
    with pytest.raises(ValueError, match="irreps"):
        equivariance_error(lambda x: x, ["1o"], ["1o"], args_in=(torch.randn(3, 4),))
