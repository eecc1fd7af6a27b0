"""Fixtures for the tests of equidyn.fields."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Small grids: one thread avoids thread-pool contention on shared cores (the ClimODE
    training test takes ~1 s with one thread, ~25 s with two contended ones)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
