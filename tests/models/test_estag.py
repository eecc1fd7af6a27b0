"""ESTAG and the forecasting baselines (src/equidyn/models/estag.py, forecasting.py):
E(3) and permutation equivariance over whole windows, causality of the temporal attention,
the spectral invariants, training, the registry, bad input."""

from __future__ import annotations

import pytest
import torch

from equidyn.data.trajectories import TrajectoryWindows
from equidyn.dynamics.data import charged_nbody_trajectories
from equidyn.models import (
    ESTAG,
    LastFrameEGNN,
    LinearExtrapolation,
    StackedFramesEGNN,
    build_model,
    registered_models,
)
from equidyn.models.estag import ESTAGTemporal, spectral_features
from equidyn.models.registry import model_kind
from equidyn.testing import assert_equivariant, equivariance_error

WINDOW = 6


def make_window(batch=2, n=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    start = torch.randn(batch, 1, n, 3, generator=g, dtype=dtype)
    steps = 0.3 * torch.randn(batch, WINDOW, n, 3, generator=g, dtype=dtype)
    pos = start + steps.cumsum(1)  # a random walk: frames close to each other, like MD
    q = (torch.randint(0, 2, (batch, n, 1), generator=g) * 2 - 1).to(dtype)
    return pos, q


def as_fn(model):
    """(window, charges) -> positions; pair attributes q_i q_j built from the charges, so that
    a permutation of the particles permutes every input along one axis."""

    def fn(pos, q):
        return model(pos, q, q[:, :, None, :] * q[:, None, :, :])

    return fn


def models():
    return {
        "ESTAG": ESTAG(WINDOW, 16, 2, node_attr_dim=1, edge_attr_dim=1),
        "ESTAG-no-spectrum": ESTAG(WINDOW, 16, 1, node_attr_dim=1, edge_attr_dim=1, num_freqs=0),
        "LastFrameEGNN": LastFrameEGNN(WINDOW, 16, 2, node_attr_dim=1, edge_attr_dim=1),
        "StackedFramesEGNN": StackedFramesEGNN(WINDOW, 16, 2, node_attr_dim=1, edge_attr_dim=1),
        "LinearExtrapolation": LinearExtrapolation(WINDOW, 2.5, node_attr_dim=1, edge_attr_dim=1),
    }


def _amplify(model):
    """Large coordinate updates, so that a symmetry bug would show in the output."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "phi_x" in name and name.endswith("weight"):
                p.mul_(30.0)
            if name == "theta":
                p.copy_(torch.linspace(-1.0, 1.0, p.numel()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", list(models()))
def test_e3_translation_and_permutation_equivariance(name, dtype):
    torch.manual_seed(0)
    model = models()[name].to(dtype)
    _amplify(model)
    errors = assert_equivariant(
        as_fn(model),
        irreps_in=["cartesian_points", "0e"],
        irreps_out=["cartesian_points"],
        args_in=make_window(dtype=dtype),
        translations=True,
        permutations=True,
        node_dims_in=[2, 1],
        node_dims_out=1,
    )
    # each sample combines a rotation (proper or not), a translation and a permutation
    assert set(errors) == {"proper rotation", "improper rotation"}


def test_equivariance_check_catches_a_model_that_is_not_equivariant():
    # positions used as features: the same check must fail
    model = ESTAG(WINDOW, 8, 1, node_attr_dim=1, edge_attr_dim=1).double()

    def broken(pos, q):
        return as_fn(model)(pos, q) + 0.1 * pos[:, -1, :, :1]

    err = equivariance_error(
        broken,
        ["cartesian_points", "0e"],
        ["cartesian_points"],
        args_in=make_window(),
        translations=True,
        node_dims_in=[2, 1],
        node_dims_out=1,
    )
    assert err["proper rotation"] > 1e-3


def test_temporal_attention_is_causal():
    torch.manual_seed(0)
    layer = ESTAGTemporal(8, coord_init_scale=1.0).double()
    h = torch.randn(2, WINDOW, 4, 8, dtype=torch.float64)
    x = torch.randn(2, WINDOW, 4, 3, dtype=torch.float64)
    h1, x1 = layer(h, x)
    for t in range(WINDOW - 1):
        h2, x2 = h.clone(), x.clone()
        h2[:, t + 1 :] += torch.randn_like(h2[:, t + 1 :])
        x2[:, t + 1 :] += 5.0
        h3, x3 = layer(h2, x2)
        assert torch.equal(h3[:, : t + 1], h1[:, : t + 1])
        assert torch.equal(x3[:, : t + 1], x1[:, : t + 1])
        assert not torch.allclose(x3[:, t + 1 :], x1[:, t + 1 :])


def test_whole_model_is_causal_without_the_spectrum():
    torch.manual_seed(0)
    model = ESTAG(WINDOW, 16, 2, node_attr_dim=1, edge_attr_dim=1, num_freqs=0).double()
    _amplify(model)
    pos, q = make_window()
    qq = q[:, :, None] * q[:, None]
    h1, x1 = model.encode(pos, q, qq)
    moved = pos.clone()
    moved[:, -1] += 1.0  # a later frame
    h2, x2 = model.encode(moved, q, qq)
    assert torch.allclose(x2[:, :-1], x1[:, :-1], atol=1e-12)
    assert torch.allclose(h2[:, :-1], h1[:, :-1], atol=1e-12)


def test_spectral_features_are_invariant_and_see_the_frequency():
    pos, _ = make_window()
    node, pair = spectral_features(pos, WINDOW // 2)
    assert node.shape == (2, 5, 3) and pair.shape == (2, 5, 5, 3)
    R = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    R = -R if torch.det(R) > 0 else R  # improper
    node2, pair2 = spectral_features(pos @ R.T + torch.randn(3, dtype=torch.float64), 3)
    assert torch.allclose(node, node2, atol=1e-12) and torch.allclose(pair, pair2, atol=1e-12)
    # the diagonal of the pair magnitudes is the squared node amplitude
    assert torch.allclose(pair.diagonal(dim1=1, dim2=2), node.transpose(1, 2) ** 2, atol=1e-12)
    with pytest.raises(ValueError, match="num_freqs must be in 0..3"):
        spectral_features(pos, 4)


def test_linear_extrapolation_is_exact_on_uniform_motion():
    t = torch.arange(WINDOW, dtype=torch.float64)
    v = torch.randn(3, 4, 3, dtype=torch.float64)
    x0 = torch.randn(3, 4, 3, dtype=torch.float64)
    pos = x0[:, None] + t[None, :, None, None] * v[:, None]
    pred = LinearExtrapolation(WINDOW, steps_ahead=3.0)(pos, torch.zeros(3, 4, 0))
    assert torch.allclose(pred, x0 + (WINDOW - 1 + 3) * v)


def test_training_on_nbody_windows_beats_the_untrained_model(tmp_path):
    torch.manual_seed(0)
    windows = TrajectoryWindows(
        charged_nbody_trajectories("valid", 8, cache=tmp_path), WINDOW, spacing=2, horizon=4
    )
    batch = windows.batch(torch.arange(len(windows)))
    model = ESTAG(WINDOW, 16, 1, node_attr_dim=1, edge_attr_dim=1)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        pred = model(batch["pos_window"], batch["node_attr"], batch["edge_attr"])
        loss = ((pred - batch["target"]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_registered_as_forecast_models():
    for name in ("ESTAG", "LastFrameEGNN", "StackedFramesEGNN", "LinearExtrapolation"):
        assert model_kind(name) == "forecast"
        assert name in registered_models("forecast")
    model = build_model("ESTAG", {"window": 4, "num_features": 8}, kind="forecast")
    assert model.window == 4
    with pytest.raises(ValueError, match="is a forecast model, not a particle model"):
        build_model("ESTAG", {}, kind="particle")


def test_bad_inputs_are_refused_with_the_expected_shape():
    model = ESTAG(WINDOW, 8, 1, node_attr_dim=1, edge_attr_dim=1)
    pos, q = make_window(dtype=torch.float32)
    qq = q[:, :, None] * q[:, None]
    with pytest.raises(ValueError, match=r"pos_window must have shape \(batch, window=6, n, 3\)"):
        model(pos[:, :4], q, qq)
    with pytest.raises(ValueError, match="node_attr must have shape"):
        model(pos, q[:, :3], qq)
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        model(pos, q, None)
    bad = pos.clone()
    bad[1, 2, 3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values at \(1, 2, 3, 0\)"):
        model(bad, q, qq)
    with pytest.raises(ValueError, match="window must be an integer >= 2"):
        ESTAG(1)
    with pytest.raises(ValueError, match="num_freqs must be in 0..3"):
        ESTAG(WINDOW, num_freqs=4)


def test_gradients_are_finite_in_both_dtypes():
    for dtype in (torch.float32, torch.float64):
        for model in models().values():
            model = model.to(dtype)
            pos, q = make_window(dtype=dtype)
            pos[:, :, 0] = pos[:, :, 1]  # coincident particles: the norms must stay smooth
            pos.requires_grad_(True)
            out = as_fn(model)(pos, q)
            (grad,) = torch.autograd.grad(out.square().sum(), pos)
            assert torch.isfinite(grad).all()
