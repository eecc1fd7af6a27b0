"""torch.compile(fullgraph=True) of a P4MCNN gives the eager numbers (slow: compilation takes
~20 s of CPU; the eager path is covered by test_conv.py)."""

import pytest
import torch

from equidyn.groups import P4MCNN


@pytest.mark.slow
def test_p4mcnn_compiles_fullgraph():
    torch.manual_seed(0)
    model = P4MCNN(in_channels=1, num_classes=3, channels=2, num_layers=2).eval()
    x = torch.randn(2, 1, 9, 9)
    compiled = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(compiled(x), model(x), atol=1e-5, rtol=1e-5)
