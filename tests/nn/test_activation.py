import math

import pytest
import torch

from equidyn.nn import NormalizedActivation, normalize2mom, parity
from equidyn.nn.activation import chi_moment, second_moment


def test_second_moment_closed_forms():
    assert second_moment(torch.relu) == pytest.approx(0.5, abs=1e-9)
    assert second_moment(lambda x: x) == pytest.approx(1.0, abs=1e-9)
    assert second_moment(torch.abs) == pytest.approx(1.0, abs=1e-9)
    # E[cos(z)^2] = (1 + exp(-2)) / 2
    assert second_moment(torch.cos) == pytest.approx((1 + math.exp(-2)) / 2, abs=1e-9)


def test_normalize2mom_unit_second_moment_statistically():
    z = torch.randn(400_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for act in (torch.tanh, torch.sigmoid, torch.nn.functional.silu, torch.relu, torch.nn.GELU()):
        m2 = normalize2mom(act)(z).pow(2).mean().item()
        assert m2 == pytest.approx(1.0, abs=0.01), act


def test_normalize2mom_is_cached_and_idempotent():
    a = normalize2mom(torch.tanh)
    assert normalize2mom(a) is a
    assert normalize2mom(torch.tanh).cst == a.cst
    assert isinstance(a, NormalizedActivation)


def test_chi_moment_closed_forms():
    for k in (1, 3, 5, 7):
        # E|x|^2 = k and E|x|^4 = k(k + 2) for x ~ N(0, I_k)
        assert chi_moment(torch.ones_like, k, power=1) == pytest.approx(k, rel=1e-9)
        assert chi_moment(lambda n: n, k, power=1) == pytest.approx(k * (k + 2), rel=1e-9)
        assert chi_moment(torch.ones_like, k) == pytest.approx(1.0, rel=1e-9)


def test_parity():
    assert parity(torch.tanh) == -1
    assert parity(torch.abs) == 1
    assert parity(torch.nn.functional.silu) == 0
    assert parity(torch.sigmoid) == 0


def test_bad_activations():
    with pytest.raises(ValueError, match="second moment"):
        normalize2mom(torch.zeros_like)
    with pytest.raises(TypeError, match="callable"):
        normalize2mom(3.0)
