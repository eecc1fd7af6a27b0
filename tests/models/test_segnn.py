"""SEGNN and the shared steerable building blocks (src/equidyn/models/segnn.py, _steerable.py).

Battery: E(3) (rotations, reflections, translations) and permutation equivariance of the
predicted positions in float64 and float32, a short training run on simulated charged N-body
data lowers the loss, clear errors on bad input, forward + backward in both dtypes.
"""

from __future__ import annotations

import pytest
import torch

from equidyn import o3
from equidyn.dynamics.systems import simulate_charged_nbody
from equidyn.models import SEGNN
from equidyn.models._steerable import (
    IrrepsConcat,
    SteerableLayer,
    neighbour_index,
    node_inputs,
    off_diagonal,
)
from equidyn.models.segnn import balanced_irreps
from equidyn.testing import assert_equivariant, equivariance_error


def make_inputs(batch: int = 3, n: int = 5, dtype: torch.dtype = torch.float64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    vel = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    q = (torch.randint(0, 2, (batch, n, 1), generator=g) * 2 - 1).to(dtype)
    return pos, vel, q


def check_e3_and_permutations(model: torch.nn.Module, dtype: torch.dtype) -> dict[str, float]:
    """E(3) + permutation equivariance of ``model(pos, vel, {}, q_i q_j)``; returns errors."""
    model = model.to(dtype)
    pos, vel, q = make_inputs(dtype=dtype)

    def fn(p: torch.Tensor, v: torch.Tensor, charges: torch.Tensor) -> torch.Tensor:
        empty = p.new_zeros(*p.shape[:2], 0)
        return model(p, v, empty, charges[:, :, None] * charges[:, None])

    return assert_equivariant(
        fn,
        irreps_in=["cartesian_points", "1o", "1x0e"],
        irreps_out=["cartesian_points"],
        args_in=[pos, vel, q],
        translations=True,
        permutations=True,
        node_dims_in=1,
        node_dims_out=1,
    )


def nbody_batch(n_traj: int = 16):
    """Tiny charged N-body set: frame 0 -> frame 5 (500 steps of dt 0.001)."""
    d = simulate_charged_nbody(n_traj, n_steps=601, seed=3)
    pos, vel = d["pos"][:, 0].float(), d["vel"][:, 0].float()
    q = d["charges"].float()[..., None]
    return pos, vel, q[:, :, None] * q[:, None], d["pos"][:, 5].float()


def check_training_lowers_loss(model: torch.nn.Module, steps: int = 15, lr: float = 5e-3) -> None:
    torch.manual_seed(0)
    pos, vel, qq, target = nbody_batch()
    empty = pos.new_zeros(*pos.shape[:2], 0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = ((model(pos, vel, empty, qq) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.6 * losses[0], losses


def check_bad_inputs(model: torch.nn.Module) -> None:
    pos, vel, q = make_inputs(dtype=torch.float32)
    qq = q[:, :, None] * q[:, None]
    empty = pos.new_zeros(3, 5, 0)
    with pytest.raises(ValueError, match="pos must have shape"):
        model(pos[..., :2], vel, empty, qq)
    with pytest.raises(ValueError, match="vel must have the shape"):
        model(pos, vel[:, :4], empty, qq)
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        model(pos, vel, empty, qq[:, :4, :4])  # a particle count that differs from the data
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        model(pos, vel, empty, None)
    with pytest.raises(ValueError, match="node_attr must have shape"):
        model(pos, vel, pos.new_zeros(3, 5, 2), qq)
    bad = pos.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model(bad, vel, empty, qq)


def check_forward_backward(model: torch.nn.Module) -> None:
    for dtype in (torch.float32, torch.float64):
        model = model.to(dtype)
        pos, vel, q = make_inputs(dtype=dtype)
        pos.requires_grad_(True)
        out = model(pos, vel, pos.new_zeros(3, 5, 0), q[:, :, None] * q[:, None])
        assert out.dtype == dtype and out.shape == (3, 5, 3)
        out.square().sum().backward()
        assert pos.grad is not None and torch.isfinite(pos.grad).all()
        assert all(p.grad is not None for p in model.parameters() if p.numel() > 0)
        model.zero_grad()


def check_state_equivariance(model: torch.nn.Module, dtype: torch.dtype) -> dict[str, float]:
    """E(3) + permutation equivariance of both outputs of ``model.forward_state``: positions
    rotate, reflect and shift; velocities rotate and reflect (``1o``) but do not shift."""
    model = model.to(dtype)
    with torch.no_grad():  # a velocity output far from v' = v, so that a bug would show
        for p in model.velocity_readout.parameters():
            p.normal_()
    pos, vel, q = make_inputs(dtype=dtype)

    def fn(p: torch.Tensor, v: torch.Tensor, charges: torch.Tensor):
        empty = p.new_zeros(*p.shape[:2], 0)
        return model.forward_state(p, v, empty, charges[:, :, None] * charges[:, None])

    with torch.no_grad():
        assert float((fn(pos, vel, q)[1] - vel).abs().max()) > 1e-2
    spec = dict(node_dims_in=1, node_dims_out=1, translations=True, permutations=True)
    errors = assert_equivariant(
        fn,
        irreps_in=["cartesian_points", "1o", "1x0e"],
        irreps_out=["cartesian_points", "1o"],
        args_in=[pos, vel, q],
        **spec,
    )
    # the test can fail: reading the velocity as three scalars, or as a point that moves
    # with translations, is caught
    for wrong in ("3x0e", "cartesian_points"):
        bad = equivariance_error(
            fn,
            irreps_in=["cartesian_points", "1o", "1x0e"],
            irreps_out=["cartesian_points", wrong],
            args_in=[pos, vel, q],
            **spec,
        )
        assert max(bad.values()) > 1e-3, wrong
    return errors


def check_state_init(make) -> None:
    """``make(predict_velocity)`` builds a model. At initialisation ``forward_state`` returns
    ``(forward(...), vel)`` exactly; the flag adds parameters but changes no other one (a
    state_dict of a model without the flag loads, and ``forward`` is the same); without the
    flag ``forward_state`` raises ValueError."""
    pos, vel, q = make_inputs(dtype=torch.float32)
    args = (pos, vel, pos.new_zeros(3, 5, 0), q[:, :, None] * q[:, None])
    torch.manual_seed(0)
    plain = make(False)
    torch.manual_seed(0)
    model = make(True)
    with torch.no_grad():
        x, v = model.forward_state(*args)
        assert torch.equal(v, vel)
        assert torch.equal(x, model(*args))
        assert torch.equal(model(*args), plain(*args))
        with pytest.raises(ValueError, match="predict_velocity=True"):
            plain.forward_state(*args)
        missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
        assert not unexpected
        assert missing and all(k.startswith("velocity_readout.") for k in missing)
        assert set(plain.state_dict()) == set(model.state_dict()) - set(missing)
        make(False).load_state_dict(plain.state_dict())  # strict


def check_state_training_lowers_loss(
    model: torch.nn.Module, steps: int = 10, lr: float = 1e-2
) -> None:
    """A few Adam steps on ``|x' − x*|² + |v' − v*|²`` lower it, the velocity part included.

    The target is a smooth equivariant map of the inputs, ``x* = x + v / 2`` and
    ``v* = 0.7 v − 0.3 (x − x̄)``, learnable in a few steps (the velocity change of simulated
    N-body data over a few frames is dominated by close encounters and is not)."""
    pos, vel, q = make_inputs(batch=8, dtype=torch.float32, seed=1)
    qq, empty = q[:, :, None] * q[:, None], pos.new_zeros(8, 5, 0)
    target_pos = pos + 0.5 * vel
    target_vel = 0.7 * vel - 0.3 * (pos - pos.mean(dim=1, keepdim=True))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        x, v = model.forward_state(pos, vel, empty, qq)
        loss_pos, loss_vel = ((x - target_pos) ** 2).mean(), ((v - target_vel) ** 2).mean()
        opt.zero_grad()
        (loss_pos + loss_vel).backward()
        opt.step()
        losses.append((float(loss_pos.detach()), float(loss_vel.detach())))
    assert all(torch.isfinite(torch.tensor(losses)).flatten())
    assert sum(losses[-1]) < 0.6 * sum(losses[0]), losses
    assert losses[-1][1] < 0.7 * losses[0][1], losses


# ---------------------------------------------------------------- building blocks


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
    model = SEGNN(12, 2, 0, 1, lmax_hidden=lmax, lmax_attr=lmax)
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
    with pytest.raises(ValueError, match="n_layers"):
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


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_segnn_forward_state_equivariance(dtype):
    torch.manual_seed(0)
    errors = check_state_equivariance(SEGNN(8, 1, 0, 1, predict_velocity=True), dtype)
    assert max(errors.values()) < (1e-10 if dtype == torch.float64 else 1e-4)


def test_segnn_forward_state_init_and_state_dict():
    check_state_init(lambda flag: SEGNN(8, 1, 0, 1, predict_velocity=flag))


def test_segnn_forward_state_training_lowers_loss():
    torch.manual_seed(0)
    check_state_training_lowers_loss(SEGNN(8, 1, 0, 1, predict_velocity=True))
