"""Segment reductions against a Python loop, empty segments, derivatives, compile."""

from __future__ import annotations

import pytest
import torch

from equidyn.graph import scatter_max, scatter_mean, scatter_softmax, scatter_sum, segment_counts


def loop_reference(src, index, dim_size, how):
    out = torch.zeros((dim_size,) + src.shape[1:], dtype=src.dtype)
    for k in range(dim_size):
        rows = src[index == k]
        if len(rows) == 0:
            continue
        out[k] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0).values}[how]
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("how", ["sum", "mean", "max"])
def test_matches_loop_with_empty_segments(dtype, how):
    g = torch.Generator().manual_seed(0)
    src = torch.randn(20, 3, 2, generator=g, dtype=dtype)
    index = torch.randint(0, 7, (20,), generator=g)
    index[index == 3] = 4  # segment 3 empty, and segments 7, 8 beyond the data
    fn = {"sum": scatter_sum, "mean": scatter_mean, "max": scatter_max}[how]
    out = fn(src, index, dim_size=9)
    assert out.shape == (9, 3, 2) and out.dtype == dtype
    assert torch.allclose(out, loop_reference(src, index, 9, how), atol=1e-6)
    assert (out[3] == 0).all() and (out[7:] == 0).all()


def test_other_dim_and_counts():
    src = torch.arange(12.0).reshape(3, 4)
    index = torch.tensor([1, 0, 1, 1])
    assert torch.equal(scatter_sum(src, index, 2, dim=1), scatter_sum(src.T, index, 2).T)
    assert torch.equal(scatter_sum(src, index, 2, dim=-1), scatter_sum(src, index, 2, dim=1))
    assert torch.equal(scatter_mean(src, index, 2, dim=1), scatter_mean(src.T, index, 2).T)
    assert torch.equal(segment_counts(index, 3), torch.tensor([1.0, 3.0, 0.0]))
    assert scatter_sum(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), 2).shape == (2, 3)


def test_softmax_normalised_per_segment():
    g = torch.Generator().manual_seed(1)
    src = torch.randn(30, 4, generator=g, dtype=torch.float64) * 50  # large: needs the shift
    index = torch.randint(0, 5, (30,), generator=g)
    p = scatter_softmax(src, index, 5)
    assert torch.isfinite(p).all()
    present = torch.unique(index)
    assert torch.allclose(
        scatter_sum(p, index, 5)[present], torch.ones(len(present), 4, dtype=torch.float64)
    )
    for k in present.tolist():
        assert torch.allclose(p[index == k], torch.softmax(src[index == k], dim=0))


def test_first_and_second_derivatives():
    g = torch.Generator().manual_seed(2)
    src = torch.randn(10, 3, generator=g, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 0, 1, 1, 1, 3, 3, 3, 3, 0])
    for fn in (scatter_sum, scatter_mean, scatter_max, scatter_softmax):
        f = lambda x, fn=fn: fn(x, index, 5) ** 2
        assert torch.autograd.gradcheck(f, (src,), fast_mode=True)
        assert torch.autograd.gradgradcheck(f, (src,), fast_mode=True)


def test_bad_input():
    with pytest.raises(ValueError, match="len\\(index\\)"):
        scatter_sum(torch.ones(3), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match="1-dimensional"):
        scatter_sum(torch.ones(3), torch.zeros(1, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="dim_size"):
        scatter_mean(torch.ones(3), torch.zeros(3, dtype=torch.long), -1)
