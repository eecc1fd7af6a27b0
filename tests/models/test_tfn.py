"""TFN (src/equidyn/models/tfn.py): equivariance, training, errors; the dense pair embedding."""

from __future__ import annotations

import pytest
import torch
from particle_checks import (
    check_bad_inputs,
    check_e3_and_permutations,
    check_forward_backward,
    check_training_lowers_loss,
)

from equidyn.models import TFN
from equidyn.models.steerable import PairEdgeEmbedding, neighbour_index
from equidyn.models.tfn import default_hidden_irreps


def test_edge_embedding_radial_features_are_invariant():
    emb = PairEdgeEmbedding(lmax_sh=2, num_basis=6, r_max=5.0, edge_attr_dim=1).double()
    pos = torch.randn(2, 4, 3, dtype=torch.float64)
    qq = torch.randn(2, 4, 4, 1, dtype=torch.float64)
    index = neighbour_index(4)
    y, rad = emb(pos, qq, index)
    R = -torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    if torch.det(R) > 0:
        R = -R  # an improper element
    y2, rad2 = emb(pos @ R.T + 1.5, qq, index)
    assert torch.allclose(rad, rad2, atol=1e-12)
    D = emb.irreps_sh.D_from_matrix(R)
    assert torch.allclose(y @ D.T, y2, atol=1e-12)


def test_default_hidden_irreps():
    assert str(default_hidden_irreps(64, 1)) == "32x0e+32x1o"
    with pytest.raises(ValueError):
        default_hidden_irreps(0, 1)


@pytest.mark.parametrize("lmax", [1, 2])
def test_tfn_equivariance_float64(lmax):
    torch.manual_seed(0)
    model = TFN(12, 2, 0, 1, l_max=lmax, l_max_sh=2)
    errors = check_e3_and_permutations(model, torch.float64)
    assert max(errors.values()) < 1e-10


def test_tfn_equivariance_float32():
    torch.manual_seed(0)
    errors = check_e3_and_permutations(TFN(12, 2, 0, 1), torch.float32)
    assert max(errors.values()) < 1e-4


def test_tfn_training_lowers_loss():
    torch.manual_seed(0)
    check_training_lowers_loss(TFN(8, 2, 0, 1))


def test_tfn_bad_input():
    check_bad_inputs(TFN(8, 1, 0, 1))
    with pytest.raises(ValueError, match="hidden_irreps must be sorted"):
        TFN(hidden_irreps="4x1o")
    with pytest.raises(ValueError, match="num_layers"):
        TFN(8, 0)


def test_tfn_forward_backward_both_dtypes():
    torch.manual_seed(0)
    check_forward_backward(TFN(8, 2, 0, 1))
