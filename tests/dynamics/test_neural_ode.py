"""NeuralODE (src/equidyn/dynamics/neural_ode.py): equivariance, ODE consistency, training."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchdiffeq")

from equidyn.dynamics import NeuralODE  # noqa: E402
from equidyn.testing import assert_equivariant  # noqa: E402


def make_inputs(batch=2, n=4, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    vel = torch.randn(batch, n, 3, generator=g, dtype=dtype)
    q = (torch.randint(0, 2, (batch, n, 1), generator=g) * 2 - 1).to(dtype)
    return pos, vel, q


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_flow_is_e3_and_permutation_equivariant(dtype):
    torch.manual_seed(0)
    ode = NeuralODE(num_features=8, num_layers=1, edge_attr_dim=1, step_size=0.5).to(dtype)
    with torch.no_grad():
        ode.field.net.layers[0].phi_x[-1].weight.mul_(300.0)

    def fn(pos, vel, q):
        node, edge = pos.new_zeros(*pos.shape[:2], 0), q[:, :, None, :] * q[:, None, :, :]
        return ode.forward_state(pos, vel, node, edge)

    assert_equivariant(
        fn,
        irreps_in=["cartesian_points", "1o", "0e"],
        irreps_out=["cartesian_points", "1o"],
        args_in=make_inputs(dtype=dtype),
        translations=True,
        permutations=True,
        node_dims_in=1,
        node_dims_out=1,
    )


def test_trajectory_is_consistent_and_starts_linear():
    torch.manual_seed(0)
    ode = NeuralODE(num_features=8, num_layers=1, edge_attr_dim=0, step_size=0.25).double()
    pos, vel, _ = make_inputs()
    node = pos.new_zeros(2, 4, 0)
    times = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    xs, vs = ode.trajectory(pos, vel, node, None, times)
    assert xs.shape == (3, 2, 4, 3)
    torch.testing.assert_close(xs[0], pos)
    x1, v1 = ode.forward_state(pos, vel, node)
    torch.testing.assert_close(x1, xs[-1])
    # the field starts small: the flow is close to free motion x + v t
    assert (x1 - (pos + vel)).abs().max() < 0.05
    # dx/dt = v: the positions are the integral of the velocities (Simpson on 3 points)
    simpson = pos + (vs[0] + 4 * vs[1] + vs[2]) / 6
    assert (simpson - x1).abs().max() < 1e-3


def test_training_lowers_loss_and_bad_input():
    torch.manual_seed(0)
    ode = NeuralODE(num_features=8, num_layers=1, edge_attr_dim=0, step_size=0.5)
    pos, vel, _ = make_inputs(batch=8, dtype=torch.float32)
    node = pos.new_zeros(8, 4, 0)
    center = pos.mean(1, keepdim=True)
    target = pos + vel - 0.3 * (pos - center)  # a harmonic pull towards the centre
    opt = torch.optim.Adam(ode.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = ((ode(pos, vel, node) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    with pytest.raises(ValueError, match="unsupported method"):
        NeuralODE(method="rk45")
    with pytest.raises(ValueError, match="times must be 1-D"):
        ode.trajectory(pos, vel, node, None, torch.tensor([0.0]))
    with pytest.raises(ValueError, match="vel must have the shape"):
        ode(pos, vel[:, :3], node)


@pytest.mark.parametrize("method", ["semi_implicit_euler", "velocity_verlet"])
def test_loop_integrators_with_acceleration_field_match_the_simulator(method):
    """With the exact Coulomb field, the ODE's loop integrator is the simulator's integrator."""
    from equidyn.dynamics import ChargedNBody, integrate

    pos, vel, q = make_inputs(batch=3, n=5)
    system = ChargedNBody(q[..., 0], clamp=100.0)

    class Exact(torch.nn.Module):
        def forward(self, x, v, node_attr, edge_attr):
            return system.acceleration(x, v)

    ode = NeuralODE(
        Exact(),
        field_kind="acceleration",
        edge_attr_dim=0,
        method=method,
        step_size=0.01,
        t_span=0.5,
    )
    x1, v1 = ode.forward_state(pos, vel, pos.new_zeros(3, 5, 0))
    xs, vs = integrate(pos, vel, system.acceleration, 0.01, 50, integrator=method)
    torch.testing.assert_close(x1, xs[-1])
    torch.testing.assert_close(v1, vs[-1])


def test_compiled_loop_equals_eager_and_pickles():
    import pickle

    from equidyn.dynamics import PairForceField

    torch.manual_seed(0)
    field = PairForceField(8, 1, edge_attr_dim=1)
    with torch.no_grad():
        field.phi[-1].weight.normal_()
    kwargs = dict(
        field_kind="acceleration", edge_attr_dim=1, method="semi_implicit_euler", step_size=0.1
    )
    eager = NeuralODE(field, **kwargs).double()
    compiled = NeuralODE(field, **kwargs, compile="aot_eager", compile_chunk=3).double()
    pos, vel, q = make_inputs(n=5)
    args = (pos, vel, pos.new_zeros(2, 5, 0), q[:, :, None] * q[:, None])
    torch.testing.assert_close(compiled(*args), eager(*args))  # 10 steps = 3 chunks + 1
    again = pickle.loads(pickle.dumps(compiled))
    torch.testing.assert_close(again(*args), eager(*args))


def test_loop_method_errors():
    with pytest.raises(ValueError, match="compile=True needs"):
        NeuralODE(method="rk4", compile=True)
    with pytest.raises(ValueError, match="field_kind"):
        NeuralODE(field_kind="force")
    with pytest.raises(ValueError, match="pass a field"):
        NeuralODE(field_kind="acceleration")
    with pytest.raises(ValueError, match="step_size"):
        NeuralODE(step_size=2.0)
    ode = NeuralODE(
        num_features=4, num_layers=1, edge_attr_dim=0, method="velocity_verlet", step_size=0.5
    ).double()
    pos, vel, _ = make_inputs()
    with pytest.raises(ValueError, match="strictly increasing"):
        ode.trajectory(pos, vel, pos.new_zeros(2, 4, 0), None, torch.tensor([0.0, 0.0]))


def test_user_input_checked_once_not_on_every_solver_step(monkeypatch):
    """NaN in the user's input is a clear error; the solver's own states are not re-checked
    for finiteness on each of its steps (one synchronising reduction per tensor each)."""
    ode = NeuralODE(num_features=8, num_layers=1, edge_attr_dim=0, step_size=0.05).double()
    pos, vel, _ = make_inputs()
    node = pos.new_zeros(2, 4, 0)
    bad = pos.clone()
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="pos contains NaN"):
        ode(bad, vel, node)
    calls = []
    real = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: calls.append(1) or real(t))
    out = ode(pos, vel, node)
    # pos, vel, node_attr and the output (ParticleModel.check_outputs): once each
    assert ode.field.n_evals >= 80 and len(calls) <= 4
    assert bool(real(out).all())
    # outside a solve, a model called directly still checks its inputs
    with pytest.raises(ValueError, match="pos contains NaN"):
        ode.field.net(bad, vel, node, None)
