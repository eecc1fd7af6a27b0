"""Fuzzing the O(3) core: irreps strings, spherical harmonics, Wigner matrices, products.

The low-level layers do not scan their inputs for NaN (that would synchronise every call);
like torch's own layers they propagate it. The property on them is: finite inputs give a
finite answer or a clear error, and any input gives no other exception type.
"""

from __future__ import annotations

import math

import pytest
import torch
from fuzz_property import LONG, error_or_finite
from hypothesis import given, settings
from hypothesis import strategies as st

from equidyn import o3

irreps_text = st.text(alphabet="0123456789xeoy+ -.", max_size=16)


def _irreps(text: str) -> None:
    irreps = o3.Irreps(text)
    assert irreps.dim >= 0 and o3.Irreps(str(irreps)) == irreps


@given(irreps_text)
def test_irreps_parsing(text):
    error_or_finite(lambda: _irreps(text), [repr(text)])


@pytest.mark.slow
@settings(LONG)
@given(st.text(max_size=24))
def test_irreps_parsing_any_text(text):
    error_or_finite(lambda: _irreps(text), [repr(text)])


small_irreps = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.sampled_from("eo")), max_size=3
).map(lambda terms: o3.Irreps("+".join(f"{m}x{l}{p}" for m, l, p in terms)))
dtypes = st.sampled_from([torch.float32, torch.float64])
exponents = st.integers(-30, 30)


@given(
    st.lists(st.integers(-1, 4), min_size=1, max_size=3),
    st.integers(0, 3),
    exponents,
    dtypes,
    st.booleans(),
    st.sampled_from(["integral", "component", "norm", "bogus"]),
)
def test_spherical_harmonics(ls, n, exponent, dtype, normalize, normalization):
    x = torch.randn(n, 3, dtype=dtype, generator=torch.Generator().manual_seed(n)) * 10.0**exponent
    lmax = max(ls)
    if not normalize and n and float(x.abs().max()) ** max(lmax, 1) > torch.finfo(dtype).max / 1e3:
        return  # an unnormalised polynomial of degree l overflows like |x|^l: no claim
    error_or_finite(
        lambda: o3.spherical_harmonics(ls, x, normalize=normalize, normalization=normalization),
        ["l", "normalization", "bogus"],
    )


@given(st.integers(-1, 5), st.integers(0, 3), st.floats(0.0, 2.0), st.booleans(), dtypes)
def test_wigner_D_with_a_matrix(l, batch, noise, reflect, dtype):
    R = o3.rand_matrix(batch, generator=torch.Generator().manual_seed(batch)).to(dtype)
    if reflect:
        R = -R
    R = R + noise * torch.ones_like(R) * (noise > 1.0)
    out = error_or_finite(lambda: o3.wigner_D(l, R), ["l", "R", "orthogonal"])
    if out is not None and noise <= 1.0 and not reflect:
        assert out.shape == (batch, 2 * l + 1, 2 * l + 1)


def test_wigner_D_nan_matrix_is_an_error():
    with pytest.raises(ValueError, match="R is not orthogonal"):
        o3.wigner_D(1, torch.full((3, 3), math.nan))


@given(st.integers(-1, 6), st.integers(-1, 6), st.integers(-1, 8))
def test_wigner_3j(l1, l2, l3):
    out = error_or_finite(lambda: o3.wigner_3j(l1, l2, l3), ["l1", "l2", "l3", "triangle"])
    if out is not None:
        assert math.isclose(float(out.norm()), 1.0, rel_tol=1e-5)


@given(small_irreps, small_irreps, small_irreps, st.integers(0, 3), dtypes, dtypes, st.booleans())
def test_fully_connected_tensor_product(ir1, ir2, ir_out, batch, d1, d2, with_nan):
    g = torch.Generator().manual_seed(batch)
    x1 = torch.randn(batch, ir1.dim, dtype=d1, generator=g)
    x2 = torch.randn(batch, ir2.dim, dtype=d2, generator=g)
    if with_nan and x1.numel():
        x1[0, 0] = math.nan

    def run():
        tp = o3.FullyConnectedTensorProduct(ir1, ir2, ir_out).to(d1)
        return tp(x1, x2)

    try:
        error_or_finite(run, ["dtype", "irreps", "shape"])
    except AssertionError:
        if not with_nan:  # NaN inputs propagate (no synchronising check in a layer)
            raise


@given(small_irreps, small_irreps, st.integers(0, 3), st.integers(0, 3), dtypes, dtypes)
def test_linear(ir_in, ir_out, batch, extra, d_in, d_module):
    g = torch.Generator().manual_seed(batch)
    x = torch.randn(batch, ir_in.dim + (extra if extra == 3 else 0), dtype=d_in, generator=g)

    def run():
        return o3.Linear(ir_in, ir_out).to(d_module)(x)

    out = error_or_finite(run, ["dtype", "shape", "irreps"])
    if out is not None:
        assert out.shape == (batch, ir_out.dim)
