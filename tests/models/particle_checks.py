"""Shared checks of the dense-particle dynamics models built from steerable layers (SEGNN,
TFN, SE(3)-Transformer): E(3) and permutation equivariance of the predicted positions (and,
with a velocity head, of the predicted velocities), training on simulated charged N-body data
lowers the loss, clear errors on bad input, forward + backward in both dtypes."""

from __future__ import annotations

import pytest
import torch

from equidyn.dynamics.systems import simulate_charged_nbody
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
