"""torch.compile(fullgraph=True) gives the eager numbers (forward and gradients)."""

import copy

import pytest
import torch

from equidyn.nn import (
    BatchNorm,
    BesselBasis,
    Dropout,
    Gate,
    LayerNorm,
    NormActivation,
    PolynomialCutoff,
)


def _compare(module, x, backend):
    eager = copy.deepcopy(module)
    compiled = torch.compile(module, fullgraph=True, backend=backend)
    xe = x.clone().requires_grad_()
    xc = x.clone().requires_grad_()
    ye, yc = eager(xe), compiled(xc)
    torch.testing.assert_close(yc, ye, rtol=1e-5, atol=1e-6)
    (ge,) = torch.autograd.grad(ye.pow(2).sum(), xe)
    (gc,) = torch.autograd.grad(yc.pow(2).sum(), xc)
    torch.testing.assert_close(gc, ge, rtol=1e-5, atol=1e-6)
    return eager, module


@pytest.fixture(autouse=True)
def _reset_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_gate_aot_eager():
    gate = Gate(
        "4x0e + 1x0o", [torch.nn.functional.silu, torch.tanh], "2x0e", torch.sigmoid, "1x1o + 1x2e"
    )
    _compare(gate, torch.randn(6, gate.irreps_in.dim), backend="aot_eager")


@pytest.mark.slow  # ~40 s of C++ compilation on 2 shared cores; test_gate_aot_eager covers capture
def test_gate_inductor():
    gate = Gate(
        "4x0e + 1x0o", [torch.nn.functional.silu, torch.tanh], "2x0e", torch.sigmoid, "1x1o + 1x2e"
    )
    _compare(gate, torch.randn(6, gate.irreps_in.dim), backend="inductor")


def test_batchnorm_aot_eager():
    bn = BatchNorm("3x0e + 2x1o + 1x2e + 1x0o")
    eager, compiled = _compare(bn, torch.randn(8, 15), backend="aot_eager")
    # the running statistics are updated identically under compile
    torch.testing.assert_close(compiled.running_var, eager.running_var)
    torch.testing.assert_close(compiled.running_mean, eager.running_mean)


@pytest.mark.slow  # ~5 s per layer on 2 shared cores; the fast tests cover Gate and BatchNorm
def test_more_layers_aot_eager():
    x = torch.randn(8, 15)
    irreps = "3x0e + 2x1o + 1x2e + 1x0o"
    _compare(NormActivation(irreps, torch.sigmoid, bias=True), x, backend="aot_eager")
    _compare(LayerNorm(irreps), x, backend="aot_eager")
    _compare(Dropout(irreps, p=0.5).eval(), x, backend="aot_eager")

    class Radial(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.basis, self.cut = BesselBasis(4.0, 8), PolynomialCutoff(4.0, 6)

        def forward(self, r):
            return self.basis(r) * self.cut(r)[..., None]

    _compare(Radial(), torch.rand(20) * 5, backend="aot_eager")
