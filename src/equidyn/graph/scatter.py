r"""Segment reductions ("scatter") in plain PyTorch.

Given values :math:`x_e` (rows of ``src``) and a segment id :math:`s(e)` for each row
(``index``), the reductions are, for every segment :math:`k = 0 \dots K-1`:

.. math::

    \mathrm{sum}_k = \sum_{e:\,s(e)=k} x_e, \qquad
    \mathrm{mean}_k = \frac{\mathrm{sum}_k}{\max(1, |\{e: s(e)=k\}|)}, \qquad
    \mathrm{max}_k = \max_{e:\,s(e)=k} x_e,

    \mathrm{softmax}_e = \frac{e^{x_e - m_{s(e)}}}{\sum_{e':\,s(e')=s(e)} e^{x_{e'} - m_{s(e)}}},
    \quad m_k = \mathrm{max}_k.

Empty segments give 0 for every reduction. They are built only on ``Tensor.index_add`` and
``Tensor.scatter_reduce`` (no third-party scatter extension), work in float32 and float64,
support second derivatives (``index_add`` is linear, its backward is ``index_select``) and
trace under ``torch.compile(fullgraph=True)`` because ``dim_size`` is a Python ``int``.

>>> import torch
>>> x = torch.tensor([1.0, 2.0, 3.0, 4.0])
>>> index = torch.tensor([0, 0, 2, 2])
>>> scatter_sum(x, index, dim_size=4)
tensor([3., 0., 7., 0.])
>>> scatter_mean(x, index, dim_size=4)
tensor([1.5000, 0.0000, 3.5000, 0.0000])
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["scatter_sum", "scatter_mean", "scatter_max", "scatter_softmax", "segment_counts"]


def _check(src: Tensor, index: Tensor, dim: int, dim_size: int) -> int:
    if index.dim() != 1:
        raise ValueError(f"index must be 1-dimensional, got shape {tuple(index.shape)}")
    if src.dim() == 0:
        raise ValueError("src must have at least one dimension")
    d = dim % src.dim()
    if src.shape[d] != index.shape[0]:
        raise ValueError(
            f"src.shape[{dim}] = {src.shape[d]} must equal len(index) = {index.shape[0]}"
        )
    if dim_size < 0:
        raise ValueError(f"dim_size must be >= 0, got {dim_size}")
    return d


def _expand_index(index: Tensor, src: Tensor, dim: int) -> Tensor:
    shape = [1] * src.dim()
    shape[dim] = -1
    return index.view(shape).expand_as(src)


def scatter_sum(src: Tensor, index: Tensor, dim_size: int, dim: int = 0) -> Tensor:
    r"""Sum the slices of ``src`` along ``dim`` into ``dim_size`` segments given by ``index``.

    :math:`\mathrm{out}_k = \sum_{e:\,\mathrm{index}_e = k} \mathrm{src}_e`; empty segments are 0.

    Args:
        src: values, ``src.shape[dim] == len(index)``.
        index: ``[n]`` integer segment ids in ``[0, dim_size)``.
        dim_size: number of segments (a Python int, so the output shape is static).
        dim: the dimension of ``src`` that is reduced.

    Returns:
        ``src.shape`` with ``dim`` replaced by ``dim_size``.

    >>> scatter_sum(torch.ones(3, 2), torch.tensor([1, 1, 0]), dim_size=2)
    tensor([[1., 1.],
            [2., 2.]])
    """
    d = _check(src, index, dim, dim_size)
    shape = list(src.shape)
    shape[d] = dim_size
    return src.new_zeros(shape).index_add(d, index, src)


def segment_counts(index: Tensor, dim_size: int, dtype: torch.dtype | None = None) -> Tensor:
    r"""Number of entries of each segment, :math:`n_k = |\{e: \mathrm{index}_e = k\}|`.

    >>> segment_counts(torch.tensor([0, 0, 2]), dim_size=3)
    tensor([2., 0., 1.])
    """
    if index.dim() != 1:
        raise ValueError(f"index must be 1-dimensional, got shape {tuple(index.shape)}")
    dtype = torch.get_default_dtype() if dtype is None else dtype
    ones = torch.ones(index.shape[0], dtype=dtype, device=index.device)
    return torch.zeros(dim_size, dtype=dtype, device=index.device).index_add(0, index, ones)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int, dim: int = 0) -> Tensor:
    r"""Mean of each segment, :math:`\mathrm{sum}_k / \max(1, n_k)`; empty segments are 0.

    >>> scatter_mean(torch.tensor([1.0, 3.0, 5.0]), torch.tensor([0, 0, 1]), dim_size=2)
    tensor([2., 5.])
    """
    d = _check(src, index, dim, dim_size)
    total = scatter_sum(src, index, dim_size, d)
    count = segment_counts(index, dim_size, dtype=src.dtype).clamp(min=1)
    shape = [1] * src.dim()
    shape[d] = dim_size
    return total / count.view(shape)


def scatter_max(src: Tensor, index: Tensor, dim_size: int, dim: int = 0) -> Tensor:
    r"""Maximum of each segment, :math:`\max_{e:\,\mathrm{index}_e=k} \mathrm{src}_e`; empty → 0.

    The gradient goes to the maximal entries (split evenly between ties).

    >>> scatter_max(torch.tensor([1.0, -3.0, -5.0]), torch.tensor([0, 0, 2]), dim_size=3)
    tensor([ 1.,  0., -5.])
    """
    d = _check(src, index, dim, dim_size)
    shape = list(src.shape)
    shape[d] = dim_size
    out = src.new_zeros(shape)
    return out.scatter_reduce(d, _expand_index(index, src, d), src, "amax", include_self=False)


def scatter_softmax(src: Tensor, index: Tensor, dim_size: int, dim: int = 0) -> Tensor:
    r"""Softmax within each segment (e.g. attention over the incoming edges of each node).

    :math:`\mathrm{out}_e = \exp(x_e - m_{s(e)}) / \sum_{e':\,s(e')=s(e)} \exp(x_{e'} - m_{s(e)})`
    with :math:`m_k` the segment maximum (for numerical stability; it does not change the
    value). Output has the shape of ``src``.

    >>> p = scatter_softmax(torch.tensor([0.0, 0.0, 5.0]), torch.tensor([0, 0, 1]), dim_size=2)
    >>> p
    tensor([0.5000, 0.5000, 1.0000])
    """
    d = _check(src, index, dim, dim_size)
    m = scatter_max(src.detach(), index, dim_size, d)
    z = (src - m.index_select(d, index)).exp()
    return z / scatter_sum(z, index, dim_size, d).index_select(d, index)
