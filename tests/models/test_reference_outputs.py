"""Saved models give the same numbers: the guard of every refactor of the model code.

``reference/outputs.pt`` holds float64 state_dicts, inputs and outputs written by
``make_reference.py`` at a known-good commit. Each model is built again by today's code, loads the
saved state_dict strictly (same keys, same shapes) and must reproduce the outputs to 1e-12.
"""

from pathlib import Path

import pytest
import torch
from make_reference import PARTICLES, POTENTIALS

REFERENCE = torch.load(Path(__file__).parent / "reference" / "outputs.pt", weights_only=True)


@pytest.mark.parametrize("name", sorted(POTENTIALS))
def test_potential_reproduces_saved_output(name):
    cls, kw = POTENTIALS[name]
    model = cls(**kw).double().eval()
    model.load_state_dict(REFERENCE[name]["state_dict"], strict=True)
    x = REFERENCE["potential_inputs"]
    y = model(x["species"], x["edge_index"], x["edge_vec"])
    torch.testing.assert_close(y, REFERENCE[name]["output"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PARTICLES))
def test_particle_model_reproduces_saved_output(name):
    cls, kw = PARTICLES[name]
    model = cls(**kw).double().eval()
    model.load_state_dict(REFERENCE[name]["state_dict"], strict=True)
    x = REFERENCE["particle_inputs"]
    y = model(x["pos"], x["vel"], x["node_attr"], x["edge_attr"])
    torch.testing.assert_close(y, REFERENCE[name]["output"], rtol=0, atol=1e-12)
