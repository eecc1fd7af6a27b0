"""A fast run of examples/tetris.py: short training, then 100 % on rotated and reflected copies."""

import importlib.util
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tetris.py"


@pytest.fixture(scope="module")
def tetris():
    spec = importlib.util.spec_from_file_location("tetris_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_shapes_are_distinct_and_screws_are_a_chiral_pair(tetris):
    """Brute force over the 48 signed permutation matrices: only the two screws are related,
    and only by an improper one (mirror images, not rotations of each other)."""
    import itertools

    def canon(pts):
        pts = torch.as_tensor(pts)
        pts = pts - pts.min(0).values
        return sorted(map(tuple, pts.tolist()))

    mats = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product([1, -1], repeat=3):
            M = torch.zeros(3, 3, dtype=torch.long)
            M[range(3), perm] = torch.tensor(signs)
            mats.append(M)
    names = tetris.NAMES
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            pa, pb = torch.tensor(tetris.SHAPES[a]), canon(tetris.SHAPES[b])
            dets = {round(torch.det(M.double()).item()) for M in mats if canon(pa @ M.T) == pb}
            if i == j:
                assert 1 in dets
            elif {a, b} == {"chiral_a", "chiral_b"}:
                assert dets == {-1}
            else:
                assert not dets, (a, b)
    assert tetris.MIRROR.tolist() == [1, 0, 2, 3, 4, 5, 6, 7]


def test_invariance_of_untrained_net(tetris):
    """Even logits invariant, pseudoscalar flips sign under reflection (float64, at init)."""
    torch.manual_seed(0)
    net = tetris.TetrisNet().double()
    data = tetris.tetris_graph(torch.float64)
    ref = net(**data)
    R = tetris.o3.rand_matrix(dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for Q, sign in ((R, 1.0), (-R, -1.0)):
        out = net(data["pos"] @ Q.T + 0.3, data["src"], data["dst"], data["batch"])
        torch.testing.assert_close(out[:, :7], ref[:, :7], atol=1e-10, rtol=0)
        torch.testing.assert_close(out[:, 7], sign * ref[:, 7], atol=1e-10, rtol=0)
    assert ref[:2, 7].abs().min() > 1e-6  # the screws already get a nonzero pseudoscalar
    torch.testing.assert_close(ref[2:, 7], torch.zeros(6, dtype=torch.float64), atol=1e-10, rtol=0)


def test_fast_training_reaches_100_percent(tetris):
    net = tetris.train(steps=50, seed=0)
    res = tetris.evaluate(net, n_trials=10, seed=1)
    assert res["train"] == 1.0
    assert res["rotated"] == 1.0
    assert res["reflected"] == 1.0
    assert res["max_equivariance_error"] < 1e-3
