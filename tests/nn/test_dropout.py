import pytest
import torch
from nn_checks import check_equivariance

from equidyn.nn import Dropout
from equidyn.testing import assert_equivariant

IRREPS = "3x0e + 2x1o + 2x2e + 1x0o"


def test_eval_is_identity_and_p0():
    drop = Dropout(IRREPS, p=0.3).eval()
    x = torch.randn(5, drop.irreps_in.dim)
    assert torch.equal(drop(x), x)
    assert torch.equal(Dropout(IRREPS, p=0.0)(x), x)
    assert torch.equal(Dropout(IRREPS, p=1.0)(x), torch.zeros_like(x))
    check_equivariance(drop)


def test_train_drops_whole_irreps_and_rescales():
    drop = Dropout("4x1o + 4x2e", p=0.25)
    torch.manual_seed(0)
    y = drop(torch.ones(2000, drop.irreps_in.dim))
    vec = y[:, :12].reshape(-1, 4, 3)
    ten = y[:, 12:].reshape(-1, 4, 5)
    for blk in (vec, ten):
        # every irrep copy is either dropped whole or kept whole, scaled by 1 / (1 - p)
        assert ((blk == 0).all(-1) | (blk == 1 / 0.75).all(-1)).all()
        frac_kept = (blk[..., 0] != 0).double().mean().item()
        assert frac_kept == pytest.approx(0.75, abs=0.02)
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)  # unbiased


def test_train_equivariance_with_fixed_mask():
    drop = Dropout(IRREPS, p=0.5)

    def fn(x):
        torch.manual_seed(3)  # the same mask for the input and its rotated copy
        return drop(x)

    for dtype in (torch.float64, torch.float32):
        x = torch.randn(6, drop.irreps_in.dim, dtype=dtype)
        assert_equivariant(
            fn, irreps_in=[drop.irreps_in], irreps_out=[drop.irreps_out], args_in=[x]
        )


def test_errors():
    for p in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ValueError, match="probability"):
            Dropout("1x1o", p=p)
    with pytest.raises(ValueError, match=r"shape \(4,\).*\(\.\.\., 3\).*1x1o"):
        Dropout("1x1o", p=0.1)(torch.zeros(4))
