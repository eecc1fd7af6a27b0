"""Simulators (src/equidyn/dynamics/systems.py): charged N-body protocol, regression, seeds."""

from __future__ import annotations

import pytest
import torch

from equidyn.dynamics.systems import (
    ChargedNBody,
    GravityNBody,
    MassSpring,
    sample_mass_spring,
    simulate,
    simulate_charged_nbody,
)


def test_protocol_shapes_and_initial_conditions():
    d = simulate_charged_nbody(3, n_steps=1001, seed=0)
    assert d["pos"].shape == (3, 10, 5, 3) and d["pos"].dtype == torch.float64
    assert set(d["charges"].unique().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(d["vel0"].norm(dim=-1), torch.full((3, 5), 0.5, dtype=torch.float64))
    # the default protocol keeps 49 frames (steps 100 .. 4900)
    assert (5000 - 1) // 100 == 49


def test_fast_path_matches_generic_simulation():
    # frame k is the state after step 100 (k + 1) of semi-implicit Euler with the clamp
    d = simulate_charged_nbody(4, n_steps=801, seed=5)
    system = ChargedNBody(d["charges"], clamp=100.0)
    pos, vel = simulate(system, d["pos0"], d["vel0"], dt=0.001, n_steps=800, save_every=100)
    torch.testing.assert_close(pos, d["pos"], rtol=0, atol=1e-12)
    torch.testing.assert_close(vel, d["vel"], rtol=0, atol=1e-12)


# generated once with this code (seed 7, 2 trajectories, steps 1 .. 2000): a regression test
# that catches any change of the random draws, the force law, the clamp or the frame indexing
EXPECTED = [
    1.8588452172342707,
    0.5365483256665954,
    0.032882107353175455,
    -0.06888009653052662,
    0.3858299630829161,
    3.0,
]


def test_frame_regression():
    d = simulate_charged_nbody(2, n_steps=2001, seed=7)
    got = [
        d["pos"][0, 0, 0, 0].item(),
        d["pos"][0, 9, 2, 1].item(),
        d["pos"][1, 19, 4, 2].item(),
        d["vel"][0, 19, 1, 0].item(),
        d["vel"][1, 5, 3, 1].item(),
        d["charges"][1].sum().item(),
    ]
    torch.testing.assert_close(
        torch.tensor(got, dtype=torch.float64),
        torch.tensor(EXPECTED, dtype=torch.float64),
        rtol=1e-9,
        atol=1e-12,
    )


def test_seeding_is_reproducible():
    a = simulate_charged_nbody(2, n_steps=201, seed=11)
    b = simulate_charged_nbody(2, n_steps=201, seed=11)
    c = simulate_charged_nbody(2, n_steps=201, seed=12)
    assert torch.equal(a["pos"], b["pos"]) and torch.equal(a["charges"], b["charges"])
    assert not torch.equal(a["pos"], c["pos"])


def test_clamp_limits_force_components():
    q = torch.ones(1, 2, dtype=torch.float64)
    x = torch.tensor([[[0.0, 0, 0], [0.01, 0, 0]]], dtype=torch.float64)
    assert ChargedNBody(q, clamp=100.0).acceleration(x, None).abs().max() == 100.0
    assert ChargedNBody(q, clamp=None).acceleration(x, None).abs().max() == pytest.approx(1e4)


def test_forces_are_minus_energy_gradient():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    systems = [
        ChargedNBody(torch.tensor([[1.0, -1, 1, 1], [-1, -1, 1, -1]], dtype=torch.float64)),
        GravityNBody(torch.rand(2, 4, generator=g, dtype=torch.float64) + 0.5, softening=0.1),
        sample_mass_spring(2, 4, seed=1)[0],
    ]
    for system in systems:
        (grad,) = torch.autograd.grad(system.potential_energy(x).sum(), x)
        m = 1.0 if isinstance(system, ChargedNBody) else system.masses[..., None]
        torch.testing.assert_close(system.acceleration(x, None) * m, -grad)


def test_bad_input():
    with pytest.raises(ValueError, match="charges"):
        ChargedNBody(torch.ones(5))
    with pytest.raises(ValueError, match=r"\(batch, 5, 3\)"):
        ChargedNBody(torch.ones(2, 5)).acceleration(torch.zeros(2, 4, 3), None)
    with pytest.raises(ValueError, match="rest_length"):
        MassSpring(torch.ones(1, 3, 3), torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match="n_trajectories"):
        simulate_charged_nbody(0)


def test_egnn_reference_initial_states_counts():
    """Issue 12: n_valid=0 failed inside NumPy; it is an empty split now, and bad counts are
    a ValueError naming the argument. Exported from equidyn.dynamics."""
    from equidyn.dynamics import egnn_reference_initial_states

    s = egnn_reference_initial_states(n_train=1, n_valid=0, n_test=1)
    assert [tuple(t.shape) for t in s["valid"]] == [(0, 5), (0, 5, 3), (0, 5, 3)]
    assert s["test"][1].shape == (1, 5, 3)
    for bad in ({"n_valid": -1}, {"n_test": 1.5}, {"seed": "43"}):
        with pytest.raises(ValueError, match="must be an int >= 0"):
            egnn_reference_initial_states(**bad)
