"""Group axioms, representations and irreps of C_N and D_N."""

import itertools

import pytest
import torch

from equidyn.groups import Cyclic, Dihedral

GROUPS = [Cyclic(1), Cyclic(4), Cyclic(8), Dihedral(1), Dihedral(4), Dihedral(8), Cyclic(5)]


@pytest.mark.parametrize("G", GROUPS, ids=repr)
def test_group_axioms(G):
    els = G.elements()
    assert els[0] == 0 and len(els) == G.order
    for a in els:
        assert G.compose(0, a) == a == G.compose(a, 0)
        assert G.compose(a, G.inverse(a)) == 0 == G.compose(G.inverse(a), a)
    for a, b, c in itertools.product(els, repeat=3):
        assert G.compose(G.compose(a, b), c) == G.compose(a, G.compose(b, c))
    table = G.cayley_table
    for row in table:  # Latin square
        assert sorted(row.tolist()) == els


@pytest.mark.parametrize("G", GROUPS, ids=repr)
def test_representations_are_homomorphisms(G):
    reps = [G.matrix, G.regular_representation, *G.irreps()]
    for rho in reps:
        for a, b in itertools.product(G.elements(), repeat=2):
            torch.testing.assert_close(rho(G.compose(a, b)), rho(a) @ rho(b), atol=1e-12, rtol=0)
        torch.testing.assert_close(rho(0), torch.eye(rho(0).shape[0], dtype=torch.float64))


@pytest.mark.parametrize("G", [Dihedral(1), Dihedral(4), Dihedral(5), Dihedral(8)], ids=repr)
def test_dihedral_irreps_are_complete_and_orthogonal(G):
    irreps = G.irreps()
    assert sum(ir.dim**2 for ir in irreps) == G.order
    chars = torch.stack([torch.stack([ir(g).trace() for g in G.elements()]) for ir in irreps])
    gram = chars @ chars.T / G.order
    torch.testing.assert_close(gram, torch.eye(len(irreps), dtype=torch.float64))


def test_cyclic_real_irreps():
    assert [ir.dim for ir in Cyclic(4).irreps()] == [1, 1, 2]
    assert [ir.dim for ir in Cyclic(5).irreps()] == [1, 2, 2]
    # the regular representation contains each 1-d irrep once and each 2-d real irrep once
    # (a pair of complex characters): its character is |G| at the identity, 0 elsewhere
    G = Cyclic(8)
    chi = sum(ir(g).trace() for ir in G.irreps() for g in [1])
    assert abs(chi) < 1e-12 and G.regular_representation(1).trace() == 0


def test_matrices():
    C4, D4 = Cyclic(4), Dihedral(4)
    assert torch.equal(C4.matrix(1), torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64))
    assert torch.equal(D4.matrix(D4.element(0, 1)), torch.diag(torch.tensor([1.0, -1.0])).double())
    assert torch.linalg.det(D4.matrix(D4.element(3, 1))) == -1
    assert D4.element_name(D4.element(2, 1)) == "r^2 f" and D4.element_name(0) == "e"


def test_bad_input():
    with pytest.raises(ValueError, match="integer >= 1"):
        Cyclic(0)
    with pytest.raises(ValueError, match="not an element of Cyclic"):
        Cyclic(4).compose(4, 0)
    with pytest.raises(ValueError, match="flip exponent"):
        Cyclic(4).element(1, 1)
    assert Dihedral(4) == Dihedral(4) != Cyclic(4) and len({Cyclic(4), Cyclic(4)}) == 1
