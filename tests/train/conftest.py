"""Shared fixtures of the training tests: a small cached built-in data set."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the toy pair model used to test the infrastructure lives with the model tests
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("equidyn-cache")


@pytest.fixture(scope="session")
def small_set(cache_dir):
    from equidyn.data.builtin import builtin_dataset

    return builtin_dataset(n_structures=24, seed=0, r_max=3.5, cache_dir=cache_dir)
