"""The generated tracers: shape, splits by year, determinism, the atomic cache, the winds."""

from __future__ import annotations

import pytest
import torch

from equidyn.fields.sphere import LatLonGrid
from equidyn.fields.tracers import (
    TracerConfig,
    climatology,
    generate,
    tracer_dataset,
    tracer_winds,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return tracer_dataset(steps_per_year=12, years=3, spinup=4,
                          cache_dir=tmp_path_factory.mktemp("c"))  # fmt: skip


def test_shape_splits_and_values(small):
    assert small.fields.shape == (36, 3, 32, 64) and small.fields.dtype == torch.float32
    sl = small.split_slices
    assert (sl["train"], sl["val"], sl["test"]) == (slice(0, 12), slice(12, 24), slice(24, 36))
    assert torch.isfinite(small.fields).all() and float(small.fields.min()) > 0
    step = (small.fields[1:] - small.fields[:-1]).std()
    assert 0.01 < float(step / small.fields.std()) < 0.5  # the fields move, not too fast


def test_cache_is_reused_and_keyed_by_parameters(tmp_path):
    a = tracer_dataset(steps_per_year=4, years=3, spinup=0, cache_dir=tmp_path)
    files = list((tmp_path / "fields").glob("tracers-*.pt"))
    assert len(files) == 1 and not list((tmp_path / "fields").glob(".*tmp"))
    b = tracer_dataset(steps_per_year=4, years=3, spinup=0, cache_dir=tmp_path)
    assert torch.equal(a.fields, b.fields)
    c = tracer_dataset(steps_per_year=4, years=3, spinup=0, seed=1, cache_dir=tmp_path)
    assert len(list((tmp_path / "fields").glob("tracers-*.pt"))) == 2
    assert not torch.equal(a.fields, c.fields)


def test_generation_is_deterministic():
    cfg = TracerConfig(steps_per_year=4, years=3, spinup=0)
    assert torch.equal(generate(cfg).fields, generate(cfg).fields)


@pytest.mark.parametrize("kwargs", [{"years": 2}, {"steps_per_year": 2}, {"spinup": -1}])
def test_bad_config(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TracerConfig(**kwargs)


def test_winds_are_divergent_and_vanish_towards_the_poles_like_cos_lat():
    grid = LatLonGrid()
    u, v = tracer_winds(3.0, grid)
    cos = torch.cos(grid.lat)[:, None]
    assert float((u / cos).abs().max()) < 0.2  # bounded angular rate: a finite Courant number
    lat_f = grid.lat_faces[1:-1, None]
    assert float((v / torch.cos(lat_f)).abs().max()) < 0.2
    # the divergence of the winds is not zero (a velocity potential is part of them)
    from equidyn.fields.sphere import flux_divergence_faces

    div = flux_divergence_faces(torch.ones(grid.shape, dtype=torch.float64), u, v, grid, "centred")
    assert float(div.abs().max()) > 1e-3


def test_climatology(small):
    clim = climatology(small, window=1)
    assert clim.shape == (12, 3, 32, 64)
    train = small.fields[:12].double()
    expect = (torch.roll(train, 1, 0) + train + torch.roll(train, -1, 0)) / 3
    assert torch.allclose(clim.double(), expect, atol=1e-6)
