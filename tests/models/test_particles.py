"""The particle-model contract (equidyn.models.particles): every particle model is a
ParticleModel, registered as such, builds its inputs from a raw ParticleSystem, and accepts its
old argument names for one release with a FutureWarning."""

from __future__ import annotations

import warnings

import pytest
import torch
from make_reference import PARTICLES

from equidyn.dynamics import NeuralODE, PairForceField
from equidyn.models import (
    EGNN,
    GNN,
    SEGNN,
    TFN,
    EGNNLayer,
    LinearDynamics,
    RadialField,
    SE3Transformer,
)
from equidyn.models.particles import (
    ParticleInputs,
    ParticleModel,
    ParticleSystem,
    neighbour_index,
    off_diagonal,
    pair_features,
    relative_positions,
)
from equidyn.models.registry import build_model, model_config, model_kind, registered_models
from equidyn.models.se3_transformer import SE3TransformerLayer, head_matrix
from equidyn.models.segnn import balanced_irreps
from equidyn.models.tfn import default_hidden_irreps


def system(batch: int = 2, n: int = 5, seed: int = 0) -> ParticleSystem:
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(batch, n, 3, generator=g, dtype=torch.float64)
    vel = torch.randn(batch, n, 3, generator=g, dtype=torch.float64)
    q = (torch.randint(0, 2, (batch, n, 1), generator=g) * 2 - 1).to(torch.float64)
    return ParticleSystem(pos, vel, q)


def test_every_particle_model_is_registered_and_rebuilds_from_its_config():
    names = {cls.__name__ for cls, _ in PARTICLES.values()}
    assert names <= set(registered_models("particle"))
    for name, (cls, kw) in PARTICLES.items():
        assert model_kind(cls.__name__) == "particle"
        torch.manual_seed(0)
        model = cls(**kw)
        assert isinstance(model, ParticleModel), name
        config = model_config(model)
        torch.manual_seed(0)
        again = build_model(cls.__name__, config, kind="particle")
        assert model_config(again) == config
        for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
            same = torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b  # extra state
            assert k == k2 and same, (name, k)


OLD_NAMES = [
    (EGNN, dict(hidden_dim=8, n_layers=2), dict(num_features=8, num_layers=2)),
    (GNN, dict(hidden_dim=8, n_layers=2), dict(num_features=8, num_layers=2)),
    (RadialField, dict(hidden_dim=8, n_layers=1), dict(num_features=8, num_layers=1)),
    (PairForceField, dict(hidden_dim=8, n_layers=1), dict(num_features=8, num_layers=1)),
    (
        NeuralODE,
        dict(hidden_dim=8, n_layers=1, step_size=0.5),
        dict(num_features=8, num_layers=1, step_size=0.5),
    ),
    (
        SEGNN,
        dict(hidden_features=8, n_layers=1, lmax_hidden=1, lmax_attr=2),
        dict(num_features=8, num_layers=1, l_max=1, l_max_attr=2),
    ),
    (
        TFN,
        dict(hidden_features=4, n_layers=1, lmax_hidden=1, lmax_sh=1),
        dict(num_features=4, num_layers=1, l_max=1, l_max_sh=1),
    ),
    (
        SE3Transformer,
        dict(hidden_features=4, n_layers=1, n_heads=2, lmax_hidden=1, lmax_sh=1),
        dict(num_features=4, num_layers=1, num_heads=2, l_max=1, l_max_sh=1),
    ),
]


@pytest.mark.parametrize("cls, old, new", OLD_NAMES, ids=lambda v: getattr(v, "__name__", ""))
def test_old_argument_names_warn_and_build_the_same_model(cls, old, new):
    torch.manual_seed(0)
    with pytest.warns(FutureWarning) as caught:
        legacy = cls(**old).double()
    messages = {str(w.message) for w in caught}
    for o, n in zip(old, new):
        if o != n:
            assert f"{cls.__name__}: argument {o!r} is deprecated, use {n!r}" in messages
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = cls(**new).double()
    assert model_config(legacy) == model_config(model)  # saved under the new names
    s = system()
    with torch.no_grad():
        torch.testing.assert_close(legacy.predict(s), model.predict(s), rtol=0, atol=0)
    with pytest.raises(TypeError, match="give only"):
        cls(**{**new, **old})


def test_inputs_from_a_raw_system():
    s = system()
    qq = s.charges[:, :, None] * s.charges[:, None]  # [batch, n, n, 1]
    node, edge = LinearDynamics(0, 0).inputs(s)
    assert node.shape == (2, 5, 0) and edge is None
    node, edge = GNN(8, 1, node_attr_dim=1, edge_attr_dim=1).inputs(s)
    assert torch.equal(node, s.charges) and torch.equal(edge, qq)
    node, edge = EGNN(8, 1, 0, 2).inputs(s)  # the EGNN paper's N-body edges
    r2 = ((s.pos[:, :, None] - s.pos[:, None]) ** 2).sum(-1)
    assert torch.equal(edge[..., 0], qq[..., 0]) and torch.allclose(edge[..., 1], r2)
    ode = NeuralODE(PairForceField(8, 1, 0, 1), edge_attr_dim=1)
    assert ode.field.kind == "acceleration"  # the field's output
    node, edge = ode.inputs(s)
    assert node.shape == (2, 5, 0) and torch.equal(edge, qq)
    ode = NeuralODE(EGNN(8, 1, 0, 2, velocity=False), edge_attr_dim=2)
    assert ode.field.kind == "position"
    assert torch.equal(ode.inputs(s)[1], EGNN(8, 1, 0, 2).inputs(s)[1])  # the field's inputs
    with pytest.raises(ValueError, match="edge_attr_dim=3"):
        RadialField(8, 1, 0, 3).inputs(s)
    with pytest.raises(ValueError, match="without"):
        GNN(8, 1, 0, 1).inputs(ParticleSystem(s.pos, s.vel))


def test_predict_and_predict_state_use_the_models_inputs():
    s = system()
    torch.manual_seed(0)
    model = EGNN(8, 1, 0, 2, predict_velocity=True).double()
    with torch.no_grad():
        x, v = model.predict_state(s)
        assert torch.equal(x, model(s.pos, s.vel, *model.inputs(s)))
        assert torch.equal(model.predict(s), x)
        assert float((v - s.vel).abs().max()) < 1e-2  # the velocity head starts near v' = v
    with pytest.raises(ValueError, match="predict_velocity=True"):
        EGNN(8, 1, 0, 2).predict_state(s)
    ode = NeuralODE(num_features=8, num_layers=1, step_size=0.5).double()
    assert ode.predicts_velocity and ode.predict_state(s)[0].shape == (2, 5, 3)


class Drift(ParticleModel):
    """The smallest particle model: x + v, and v unchanged."""

    def _predict(self, inputs: ParticleInputs, velocity: bool):
        return inputs.pos + inputs.vel, inputs.vel if velocity else None


def test_a_minimal_particle_model_gets_checks_and_entry_points():
    s = system()
    model = Drift(0, 1)
    assert torch.equal(model.predict(s), s.pos + s.vel)
    with pytest.raises(ValueError, match="forward_state needs"):
        model.predict_state(s)  # no velocity_readout
    with pytest.raises(ValueError, match="edge_attr must have shape"):
        model(s.pos, s.vel, s.empty(), None)
    with pytest.raises(ValueError, match="attribute dimensions must be >= 0"):
        Drift(-1, 0)


def test_pair_layout():
    x = torch.randn(2, 4, 3)
    index = neighbour_index(4)
    rel = relative_positions(x, index)  # [2, 4, 3, 3]
    dense = x[:, :, None] - x[:, None]  # [2, 4, 4, 3]
    assert torch.equal(rel, off_diagonal(dense, index))
    h = torch.randn(2, 4, 5)
    f = pair_features(h, index, None, rel)
    assert f.shape == (2, 4, 3, 13)
    assert torch.equal(f[:, 1, 0, :5], h[:, 1]) and torch.equal(f[:, 1, 0, 5:10], h[:, 0])
    inputs = ParticleInputs(x, x, x[..., :0], torch.randn(2, 4, 4, 2))
    idx, pair_attr = inputs.pairs()
    assert torch.equal(idx, index) and torch.equal(pair_attr, off_diagonal(inputs.edge_attr, index))


@pytest.mark.parametrize(
    "build, old",
    [
        (lambda **kw: EGNNLayer(edge_attr_dim=1, **kw), dict(hidden_dim=4)),
        (lambda **kw: SE3TransformerLayer("2x0e + 2x1o", "1x0e + 1x1o", 3, **kw), dict(n_heads=2)),
        (lambda **kw: balanced_irreps(**kw), dict(hidden_features=8, lmax_hidden=1, lmax_attr=1)),
        (lambda **kw: default_hidden_irreps(**kw), dict(hidden_features=8, lmax_hidden=1)),
        (lambda **kw: head_matrix("2x0e + 2x1o", **kw), dict(n_heads=2)),
    ],
    ids=["EGNNLayer", "SE3TransformerLayer", "balanced_irreps", "default_hidden_irreps", "heads"],
)
def test_old_names_of_layers_and_helpers_warn(build, old):
    with pytest.warns(FutureWarning, match="is deprecated, use"):
        build(**old)


@pytest.mark.parametrize("name", ["EGNN", "SEGNN"])
def test_mixed_dtypes_name_the_fix(name):
    """Issue 12: float64 positions into a float32 model gave torch's "expected m1 and m2 to
    have the same dtype"; the policy (models follow .to(), inputs are never cast silently)
    gives an error that says what to convert."""
    from equidyn.models import build_model

    model = build_model(name, {"num_features": 4, "num_layers": 1, "edge_attr_dim": 0})
    pos = torch.randn(1, 4, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"float32 parameters but pos is torch\.float64"):
        model(pos, pos, pos.new_zeros(1, 4, 0), None)


def test_huge_coordinates_are_refused_not_nan():
    """Issue 12: coordinates ~1e20 returned all-NaN (squared distances overflow float32)."""
    from equidyn.models import EGNN

    model = EGNN(4, 1, 0, 0)
    pos = torch.randn(1, 4, 3) * 1e20
    with pytest.raises(ValueError, match="squared distances would overflow"):
        model(pos, torch.zeros_like(pos), pos.new_zeros(1, 4, 0), None)
    out = model.double()(
        pos.double(), torch.zeros_like(pos).double(), pos.new_zeros(1, 4, 0).double(), None
    )
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    "name, where, scale, match",
    [
        ("EGNN", "pos", 1e16, r"EGNN overflowed torch\.float32 .*\|pos\| up to [23]\.\d+e\+16"),
        ("EGNN", "vel", 1e17, r"overflowed torch\.float32 .*\|vel\| up to \d\.\d+e\+17"),
        ("GATr", "pos", 1e15, r"GATr overflowed torch\.float32 .*\|pos\| up to \d\.\d+e\+15"),
        ("GATr", "node_attr", 5e19, r"node_attr has entries up to 5e\+19, beyond 1\.15e\+18"),
        ("EGNN", "edge_attr", 5e19, r"edge_attr has entries up to \d\.\d+e\+(19|20)"),
    ],
)
def test_float32_overflow_inside_the_bound_is_an_error_not_nan(name, where, scale, match):
    """Issue 12: inputs below the bound of the input check (1e15-1e17 in float32) still
    overflowed inside deep models and returned NaN, and so did attributes ~5e19; now a
    ValueError names the magnitude."""
    from equidyn.models import build_model

    torch.manual_seed(0)
    kwargs = {"edge_attr_dim": 1} if name == "EGNN" else {}
    model = build_model(name, kwargs)
    pos, vel = torch.randn(1, 5, 3), torch.randn(1, 5, 3)
    node_attr = torch.ones(1, 5, model.node_attr_dim)
    edge_attr = torch.randn(1, 5, 5, 1) if name == "EGNN" else None
    inputs = {"pos": pos, "vel": vel, "node_attr": node_attr, "edge_attr": edge_attr}
    inputs[where] = inputs[where] * scale
    with pytest.raises(ValueError, match=match):
        model(**inputs)
    for key in inputs:
        if inputs[key] is not None:
            inputs[key] = inputs[key] / scale if key == where else inputs[key]
    assert torch.isfinite(model(**inputs)).all()


def test_non_finite_attribute_is_named_with_its_index():
    from equidyn.models import EGNN

    model = EGNN(4, 1, 0, 1)
    pos = torch.randn(1, 4, 3)
    edge_attr = torch.ones(1, 4, 4, 1)
    edge_attr[0, 1, 2, 0] = float("inf")
    with pytest.raises(ValueError, match=r"edge_attr\[\(0, 1, 2, 0\)\] = inf"):
        model(pos, pos, pos.new_zeros(1, 4, 0), edge_attr)
