"""Fuzzing the particle models (EGNN, SEGNN, GATr): random n, magnitudes, NaN, dtypes."""

from __future__ import annotations

import math

import pytest
import torch
from fuzz_property import LONG, error_or_finite
from hypothesis import given, settings
from hypothesis import strategies as st

from equidyn.models import build_model

NAMES = ["pos", "vel", "node_attr", "edge_attr", "particles", "dtype", "overflowed"]


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    kwargs = {"EGNN": {"num_features": 8, "num_layers": 2, "edge_attr_dim": 1},
              "SEGNN": {}, "GATr": {}}[name]  # fmt: skip
    return build_model(name, kwargs, kind="particle")


MODELS = {name: _model(name) for name in ("EGNN", "SEGNN", "GATr")}
MODELS64 = {name: _model(name).double() for name in MODELS}
special = st.sampled_from([math.nan, math.inf, -math.inf, 5e19, 1e300])


@st.composite
def particle_inputs(draw):
    name = draw(st.sampled_from(sorted(MODELS)))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    model = (MODELS if dtype == torch.float32 else MODELS64)[name]
    n = draw(st.integers(0, 5))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = {
        "pos": torch.randn(1, n, 3, generator=g, dtype=torch.float64),
        "vel": torch.randn(1, n, 3, generator=g, dtype=torch.float64),
        "node_attr": torch.randn(1, n, model.node_attr_dim, generator=g, dtype=torch.float64),
        "edge_attr": torch.randn(1, n, n, model.edge_attr_dim, generator=g, dtype=torch.float64)
        if model.edge_attr_dim
        else None,
    }
    for key in ("pos", "vel", "node_attr", "edge_attr"):
        if x[key] is not None and draw(st.booleans()):
            x[key] = x[key] * 10.0 ** draw(st.integers(-10, 40))
    key = draw(st.sampled_from(["pos", "vel", "node_attr", "edge_attr", None]))
    if key and x[key] is not None and x[key].numel():
        x[key].view(-1)[0] = draw(special)
    x = {k: None if v is None else v.to(draw(st.sampled_from([dtype, dtype, torch.float64])))
         for k, v in x.items()}  # fmt: skip
    return model, x


def _run(model, x):
    with torch.no_grad():
        return model(**x)


@given(particle_inputs())
def test_particle_models(case):
    model, x = case
    error_or_finite(lambda: _run(model, x), NAMES)


@pytest.mark.slow
@settings(LONG)
@given(particle_inputs())
def test_particle_models_long(case):
    model, x = case
    error_or_finite(lambda: _run(model, x), NAMES)
