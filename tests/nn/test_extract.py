import pytest
import torch

from equidyn.nn import Extract, ExtractIr, chunks, from_chunks
from equidyn.o3 import Irreps
from equidyn.testing import assert_equivariant


def test_extract_values_and_equivariance():
    irreps = Irreps("2x0e + 1x1o + 1x2e + 3x0e + 1x1o")
    ex = Extract(irreps, ["2x0e + 3x0e", "1x1o + 1x1o", "1x2e", ""], [(0, 3), (1, 4), (2,), ()])
    x = torch.arange(irreps.dim, dtype=torch.float64)[None]
    s, v, t, e = ex(x)
    assert s.tolist() == [[0, 1, 10, 11, 12]]
    assert v.tolist() == [[2, 3, 4, 13, 14, 15]]
    assert t.tolist() == [[5, 6, 7, 8, 9]]
    assert e.shape == (1, 0)
    for dtype in (torch.float64, torch.float32):
        x = torch.randn(4, irreps.dim, dtype=dtype)
        assert_equivariant(ex, irreps_in=[irreps], irreps_out=list(ex.irreps_outs), args_in=[x])


def test_extract_ir():
    ex = ExtractIr("2x0e + 1x1o + 3x0e + 1x1e", "0e")
    assert ex.irreps_out == Irreps("2x0e + 3x0e")
    x = torch.randn(3, ex.irreps_in.dim, dtype=torch.float64)
    torch.testing.assert_close(ex(x), torch.cat([x[:, :2], x[:, 5:8]], -1))
    assert_equivariant(ex, irreps_in=[ex.irreps_in], irreps_out=[ex.irreps_out], args_in=[x])


def test_chunks_roundtrip():
    irreps = Irreps("2x0e + 3x1o + 1x2e")
    x = torch.randn(2, 3, irreps.dim)
    blocks = chunks(x, irreps)
    assert [tuple(b.shape) for b in blocks] == [(2, 3, 2, 1), (2, 3, 3, 3), (2, 3, 1, 5)]
    assert torch.equal(blocks[1][0, 0, 1], x[0, 0, 5:8])  # mul outer, (2l+1) inner
    assert torch.equal(from_chunks(blocks, irreps, (2, 3)), x)


def test_errors():
    with pytest.raises(ValueError, match="takes 1x1o"):
        Extract("1x0e + 1x1o", ["1x0e"], [(1,)])
    with pytest.raises(ValueError, match="out of range"):
        Extract("1x0e + 1x1o", ["1x0e"], [(2,)])
    with pytest.raises(ValueError, match="one tuple of block indices per output"):
        Extract("1x0e", ["1x0e", "1x0e"], [(0,)])
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(\.\.\., 4\)"):
        Extract("1x0e + 1x1o", ["1x0e"], [(0,)])(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="expected"):
        from_chunks([torch.zeros(2, 1, 3)], "2x1o", (2,))
