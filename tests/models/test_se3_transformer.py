"""SE(3)-Transformer (src/equidyn/models/se3_transformer.py): attention, equivariance,
training, errors."""

from __future__ import annotations

import pytest
import torch
from particle_checks import (
    check_bad_inputs,
    check_e3_and_permutations,
    check_forward_backward,
    check_training_lowers_loss,
)

from equidyn.models import SE3Transformer
from equidyn.models.se3_transformer import SE3TransformerLayer, head_matrix
from equidyn.o3 import Irreps


def test_head_matrix_keeps_irrep_copies_together():
    m = head_matrix("4x0e + 2x1o + 2x2e", 2)
    assert m.shape == (4 + 6 + 10, 2)
    assert torch.equal(m.sum(1), torch.ones(20, dtype=torch.float64))
    heads = m.argmax(1).tolist()
    assert heads[4:7] == [0, 0, 0] and heads[7:10] == [1, 1, 1]
    with pytest.raises(ValueError, match="num_heads"):
        head_matrix("2x0e", 0)


def test_attention_weights_sum_to_one_and_are_invariant():
    torch.manual_seed(0)
    layer = SE3TransformerLayer("4x0e + 4x1o", "1x0e + 1x1o", radial_dim=3, num_heads=2).double()
    hidden = Irreps("4x0e + 4x1o")
    h = torch.randn(2, 4, hidden.dim, dtype=torch.float64)
    k = torch.randn(2, 4, 3, hidden.dim, dtype=torch.float64)
    ones = torch.ones_like(k)
    # with values all one, the weighted sum of each head is sum_j alpha_ijh = 1
    assert torch.allclose(layer.attention(h, k, ones), torch.ones(2, 4, hidden.dim).double())
    R = -torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    D = hidden.D_from_matrix(R)
    v = torch.randn_like(k)
    out, out_g = layer.attention(h, k, v), layer.attention(h @ D.T, k @ D.T, v @ D.T)
    assert torch.allclose(out @ D.T, out_g, atol=1e-12)


@pytest.mark.parametrize("lmax", [1, 2])
def test_se3_transformer_equivariance_float64(lmax):
    torch.manual_seed(0)
    model = SE3Transformer(12, 2, 0, 1, num_heads=2, l_max=lmax)
    errors = check_e3_and_permutations(model, torch.float64)
    assert max(errors.values()) < 1e-10


def test_se3_transformer_equivariance_float32():
    torch.manual_seed(0)
    errors = check_e3_and_permutations(SE3Transformer(12, 2, 0, 1, num_heads=2), torch.float32)
    assert max(errors.values()) < 1e-4


def test_se3_transformer_training_lowers_loss():
    torch.manual_seed(0)
    check_training_lowers_loss(SE3Transformer(8, 2, 0, 1, num_heads=2))


def test_se3_transformer_bad_input():
    check_bad_inputs(SE3Transformer(8, 1, 0, 1, num_heads=2))
    with pytest.raises(ValueError, match="num_heads"):
        SE3Transformer(8, 1, num_heads=0)
    with pytest.raises(ValueError, match="hidden_irreps must be sorted"):
        SE3Transformer(hidden_irreps="2x1o + 2x0e")


def test_se3_transformer_forward_backward_both_dtypes():
    torch.manual_seed(0)
    check_forward_backward(SE3Transformer(8, 2, 0, 1, num_heads=2))
