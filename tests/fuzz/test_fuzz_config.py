"""Fuzzing the YAML config loader with random dictionaries and values."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fuzz_property import LONG, error_or_finite
from hypothesis import given, settings
from hypothesis import strategies as st

yaml = pytest.importorskip("yaml")
from equidyn.train.config import load_config  # noqa: E402

SECTIONS = {
    "model_class": None,
    "model": ["r_max", "l_max", "num_features", "num_layers", "num_basis", "bogus"],
    "data": ["source", "n_structures", "n_train", "n_val", "n_test", "split_seed", "bogus"],
    "training": ["epochs", "batch_size", "lr", "ema_decay", "seed", "dtype", "bogus"],
}
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["four", "NequIP", "MACE", "float32", "float16", "builtin:cuau-emt", ""]),
    st.lists(st.integers(0, 3), max_size=2),
)


@st.composite
def configs(draw):
    d = {}
    for section, keys in SECTIONS.items():
        if not draw(st.booleans()):
            continue
        if keys is None:
            d[section] = draw(st.sampled_from(["NequIP", "MACE", "Nope", 3]))
        elif draw(st.integers(0, 5)) == 0:
            d[section] = draw(values)  # a section that is not a mapping
        else:
            d[section] = {k: draw(values) for k in draw(st.lists(st.sampled_from(keys)))}
    if draw(st.integers(0, 5)) == 0:
        d[draw(st.sampled_from(["extra", "Model", "trainng"]))] = {}
    return d


def _load(d):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(d))
        return load_config(path)


def _names(d):
    """An error must name a section, a key or the model class it refuses."""
    words = ["empty", "mapping", "model"]
    for section, body in d.items():
        words.append(section)
        if isinstance(body, dict):
            words += list(body)
    return words


@given(configs())
def test_load_config(d):
    error_or_finite(lambda: _load(d), _names(d))


@pytest.mark.slow
@settings(LONG)
@given(configs())
def test_load_config_long(d):
    error_or_finite(lambda: _load(d), _names(d))
