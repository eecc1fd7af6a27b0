"""SEGNN and the shared steerable building blocks (src/equidyn/models/segnn.py, steerable.py).

Battery (tests/models/particle_checks.py): E(3) (rotations, reflections, translations) and
permutation equivariance of the predicted positions in float64 and float32, a short training
run on simulated charged N-body data lowers the loss, clear errors on bad input, forward +
backward in both dtypes. The velocity head of SEGNN, TFN and SE(3)-Transformer is tested in
test_velocity_head.py.
"""

from __future__ import annotations

import pytest
import torch
from particle_checks import (
    check_bad_inputs,
    check_e3_and_permutations,
    check_forward_backward,
    check_training_lowers_loss,
    make_inputs,
)

from equidyn import o3
from equidyn.models import SEGNN
from equidyn.models.segnn import balanced_irreps
from equidyn.models.steerable import (
    IrrepsConcat,
    SteerableLayer,
    neighbour_index,
    node_inputs,
    off_diagonal,
)
from equidyn.testing import assert_equivariant, equivariance_error


def test_neighbour_index_and_off_diagonal():
    idx = neighbour_index(4)
    assert idx.shape == (4, 3)
    for i in range(4):
        assert sorted(idx[i].tolist()) == [j for j in range(4) if j != i]
    t = torch.arange(2 * 16.0).reshape(2, 4, 4)
    off = off_diagonal(t, idx)
    assert torch.equal(off[1, 2], torch.tensor([24.0, 25.0, 27.0]))


def test_irreps_concat_is_equivariant_and_regroups():
    cat = IrrepsConcat(["2x1o + 1x0e", "1x2e + 3x0e", "1x1o"])
    assert cat.irreps_out == o3.Irreps("4x0e + 3x1o + 1x2e")
    assert_equivariant(cat, irreps_in=list(cat.irreps_in), irreps_out=[cat.irreps_out])


def test_steerable_layer_equivariant_and_bias_on_scalars_only():
    layer = SteerableLayer("3x0e + 2x1o", "1x0e + 1x1o + 1x2e", "4x0e + 2x1o + 1x2e").double()
    with torch.no_grad():
        layer.bias.normal_()
    assert_equivariant(
        layer, irreps_in=["3x0e + 2x1o", "1x0e + 1x1o + 1x2e"], irreps_out=[layer.irreps_out]
    )
    ungated = SteerableLayer("2x0e", "1x0e", "1x0e + 1x1o", gate=False).double()
    with torch.no_grad():
        ungated.bias.fill_(2.0)
    y = ungated(torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64))
    assert y.tolist() == [[2.0, 0.0, 0.0, 0.0]]


def test_node_inputs_layout():
    pos = torch.tensor([[[1.0, 0.0, 0.0], [3.0, 0.0, 0.0]]])
    vel = torch.tensor([[[0.0, 3.0, 4.0], [0.0, 0.0, 0.0]]])
    x = node_inputs(pos, vel, torch.zeros(1, 2, 0))
    assert x[0, 0].tolist() == [5.0, 0.0, 3.0, 4.0, -1.0, 0.0, 0.0]


def test_balanced_irreps_weight_count():
    hidden = balanced_irreps(64, 1, 1)
    tp = o3.FullyConnectedTensorProduct(hidden, o3.Irreps.spherical_harmonics(1), hidden)
    assert abs(tp.weight_numel - 64 * 64) / (64 * 64) < 0.05


# ---------------------------------------------------------------- SEGNN


@pytest.mark.parametrize("lmax", [1, 2])
def test_segnn_equivariance_float64(lmax):
    torch.manual_seed(0)
    model = SEGNN(12, 2, 0, 1, l_max=lmax, l_max_attr=lmax)
    errors = check_e3_and_permutations(model, torch.float64)
    assert max(errors.values()) < 1e-10


def test_segnn_equivariance_float32():
    torch.manual_seed(0)
    errors = check_e3_and_permutations(SEGNN(12, 2, 0, 1), torch.float32)
    assert max(errors.values()) < 1e-4


def test_segnn_node_attributes_and_no_edge_attributes():
    torch.manual_seed(0)
    model = SEGNN(8, 1, node_attr_dim=2, edge_attr_dim=0).double()
    pos, vel, _ = make_inputs()
    attr = torch.randn(3, 5, 2, dtype=torch.float64)
    errs = equivariance_error(
        lambda p, v, a: model(p, v, a),
        irreps_in=["cartesian_points", "1o", "2x0e"],
        irreps_out=["cartesian_points"],
        args_in=[pos, vel, attr],
        translations=True,
        permutations=True,
        node_dims_in=1,
        node_dims_out=1,
    )
    assert max(errs.values()) < 1e-10
    # a non-equivariant input would be caught: treating vel as a scalar breaks the test
    with pytest.raises(AssertionError):
        assert_equivariant(
            lambda p, v: model(p, v, attr),
            irreps_in=["cartesian_points", "3x0e"],
            irreps_out=["cartesian_points"],
            args_in=[pos, vel],
        )


def test_segnn_training_lowers_loss():
    torch.manual_seed(0)
    check_training_lowers_loss(SEGNN(8, 1, 0, 1))


def test_segnn_bad_input():
    model = SEGNN(8, 1, 0, 1)
    check_bad_inputs(model)
    with pytest.raises(ValueError, match="hidden_irreps must be sorted"):
        SEGNN(hidden_irreps="4x1o + 4x0e")
    with pytest.raises(ValueError, match="num_layers"):
        SEGNN(8, 0)


def test_segnn_forward_backward_both_dtypes():
    torch.manual_seed(0)
    check_forward_backward(SEGNN(8, 2, 0, 1))


def test_segnn_layer_norm_keeps_initial_steps_bounded_for_spread_systems():
    # |x_i - x_j|^2 enters the messages unscaled; the per-layer LayerNorm keeps the features
    # (and the initial displacement) bounded when the particles are far apart
    torch.manual_seed(0)
    pos, vel, q = make_inputs(dtype=torch.float32)
    qq = q[:, :, None] * q[:, None]
    empty = pos.new_zeros(3, 5, 0)
    with torch.no_grad():
        for scale in (1.0, 10.0):
            step = SEGNN(16, 4, 0, 1)(scale * pos, vel, empty, qq) - scale * pos
            assert float(step.norm(dim=-1).max()) < 2.0  # 270 without the norm at scale 10
