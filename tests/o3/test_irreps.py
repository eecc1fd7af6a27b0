import pickle

import pytest
import torch

from equidyn import o3
from equidyn.o3 import Irrep, Irreps


def test_parse_and_properties():
    irreps = Irreps("16x0e + 8x1o + 4x2e")
    assert irreps.dim == 16 + 24 + 20
    assert irreps.num_irreps == 28
    assert irreps.lmax == 2
    assert irreps.ls == [0] * 16 + [1] * 8 + [2] * 4
    assert [(mul, ir.l, ir.p) for mul, ir in irreps] == [(16, 0, 1), (8, 1, -1), (4, 2, 1)]
    assert Irreps("1e") == Irreps("1x1e") == Irreps([(1, "1e")]) == Irreps([(1, (1, 1))])
    assert Irreps("") == Irreps() == Irreps([]) and Irreps("").dim == 0
    assert Irreps("0x1o").dim == 0
    assert Irrep("3y") == Irrep(3, -1) and Irrep("2y") == Irrep(2, 1)
    assert repr(Irreps("2x1o+3x0e")) == "2x1o+3x0e"
    assert Irreps(Irreps("1o")) == Irreps("1o")


@pytest.mark.parametrize("bad", ["3x1q", "-1x0e", "1x", "x1e", "1e++2o", "1.5x1e", "ax1o", "1 o"])
def test_parse_errors_name_the_value(bad):
    with pytest.raises(ValueError, match="invalid irrep"):
        Irreps(bad)


def test_irrep_errors():
    with pytest.raises(ValueError, match="l=-1"):
        Irrep(-1, 1)
    with pytest.raises(ValueError, match="p=2"):
        Irrep(1, 2)
    with pytest.raises(ValueError, match="multiplicity"):
        Irreps([(-2, "1o")])
    with pytest.raises(TypeError, match="Irreps"):
        Irreps(3.5)
    with pytest.raises(ValueError, match="lmax"):
        Irreps("").lmax


def test_slices_count_contains_index():
    irreps = Irreps("2x0e + 1x1o + 3x0e")
    assert irreps.slices() == [slice(0, 2), slice(2, 5), slice(5, 8)]
    assert irreps.count("0e") == 5 and irreps.count("2e") == 0
    assert "1o" in irreps and "1e" not in irreps
    assert irreps.index("1o") == 1
    assert isinstance(irreps[1:], Irreps) and irreps[1:] == Irreps("1o+3x0e")
    assert irreps[0] == (2, Irrep("0e"))


def test_simplify_sort_regroup_filter():
    irreps = Irreps("1o + 0e + 0x2e + 1e + 1o + 1o")
    assert irreps.simplify() == Irreps("1o + 0e + 1e + 2x1o")
    s = irreps.sort()
    assert s.irreps == Irreps("0e + 0x2e + 1e + 1o + 1o + 1o").sort().irreps
    # p and inv are inverse permutations and map blocks consistently
    for i, j in enumerate(s.p):
        assert s.irreps[j] == irreps[i]
        assert s.inv[j] == i
    assert irreps.regroup() == Irreps("0e + 3x1o + 1e")  # e3nn order: odd first
    assert irreps.filter(keep="1o") == Irreps("1o+1o+1o")
    assert irreps.filter(drop=["1o", "1e"]) == Irreps("0e + 0x2e")
    assert irreps.filter(lmax=0) == Irreps("0e")
    assert irreps.remove_zero_multiplicities() == Irreps("1o + 0e + 1e + 1o + 1o")


def test_arithmetic():
    assert Irreps("1o") + "2x0e" == Irreps("1o+2x0e")
    assert "2x0e" + Irreps("1o") == Irreps("2x0e+1o")
    assert 2 * Irreps("1o+0e") == Irreps("1o+0e+1o+0e") == Irreps("1o+0e") * 2
    assert 3 * Irrep("1e") == Irreps("3x1e")
    assert Irrep("1o") * Irrep("1o") == Irreps("0e+1e+2e")
    assert Irrep("2e") * Irrep("1o") == Irreps("1o+2o+3o")
    assert Irrep("0o") * Irrep("0o") == Irreps("0e")
    with pytest.raises(TypeError):
        Irreps("1o") * 1.5


def test_spherical_harmonics_irreps():
    assert Irreps.spherical_harmonics(3) == Irreps("0e+1o+2e+3o")
    assert Irreps.spherical_harmonics(2, p=1) == Irreps("0e+1e+2e")
    with pytest.raises(ValueError, match="lmax"):
        Irreps.spherical_harmonics(-1)


def test_hash_immutable_pickle():
    a, b = Irreps("2x1o+0e"), Irreps([(2, (1, -1)), (1, (0, 1))])
    assert hash(a) == hash(b) and len({a, b}) == 1
    assert pickle.loads(pickle.dumps(a)) == a
    assert pickle.loads(pickle.dumps(Irrep("1o"))) == Irrep("1o")
    with pytest.raises(TypeError):
        a[0] = (1, Irrep("1e"))  # type: ignore[index]


def test_randn():
    irreps = Irreps("3x0e + 2x1o + 1x2e")
    g = torch.Generator().manual_seed(0)
    x = irreps.randn(4000, -1, generator=g, dtype=torch.float64)
    assert x.shape == (4000, irreps.dim)
    assert abs(x.pow(2).mean().item() - 1) < 0.05
    y = irreps.randn(4000, -1, normalization="norm", generator=g, dtype=torch.float64)
    # every irrep has unit norm on average
    for mul, ir, sl in zip([m for m, _ in irreps], [ir for _, ir in irreps], irreps.slices()):
        norms = y[:, sl].reshape(-1, mul, ir.dim).pow(2).sum(-1)
        assert abs(norms.mean().item() - 1) < 0.1
    assert irreps.randn(2, -1, 3).shape == (2, irreps.dim, 3)
    with pytest.raises(ValueError, match="-1"):
        irreps.randn(2, 3)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_D_from_matrix_homomorphism_and_parity(dtype, tol):
    irreps = Irreps("2x0e + 0o + 1o + 1e + 2e + 2o + 3o")
    g = torch.Generator().manual_seed(1)
    A = o3.rand_matrix(5, dtype=dtype, generator=g)
    B = o3.rand_matrix(5, dtype=dtype, generator=g)
    for sa in (1, -1):
        for sb in (1, -1):
            D = irreps.D_from_matrix(sa * A) @ irreps.D_from_matrix(sb * B)
            assert torch.allclose(D, irreps.D_from_matrix(sa * sb * A @ B), atol=tol)
    # the inversion acts as the parity
    Dinv = irreps.D_from_matrix(-torch.eye(3, dtype=dtype))
    parities = torch.cat([torch.full((mul * ir.dim,), float(ir.p)) for mul, ir in irreps])
    assert torch.allclose(Dinv, torch.diag(parities).to(dtype), atol=tol)
    # vectors transform with R, pseudovectors with det(R) R
    R = -A[0]
    assert torch.allclose(Irrep("1o").D_from_matrix(R), R, atol=tol)
    assert torch.allclose(Irrep("1e").D_from_matrix(R), -R, atol=tol)
    D = irreps.D_from_matrix(A)
    assert torch.allclose(D @ D.transpose(-1, -2), torch.eye(irreps.dim, dtype=dtype), atol=tol)


def test_D_from_matrix_rejects_non_rotations():
    with pytest.raises(ValueError):
        Irreps("1o").D_from_matrix(torch.ones(3, 3))
    with pytest.raises(ValueError):
        Irreps("1o").D_from_matrix(torch.eye(4))
