"""Test-session settings shared by tests/ and the doctests of src/equidyn.

Under pytest-xdist (``-n 2`` in pyproject's addopts) each worker gets one torch thread so the
workers do not oversubscribe the cores; a single process keeps torch's default.
"""

import os

import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
