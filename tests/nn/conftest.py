"""Fixtures for the tests of equidyn.nn."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests use small tensors: one thread avoids thread-pool contention on the shared
    CI cores (a 7x40 matmul takes ~40 ms with 2 contended threads, ~10 us with one)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
