"""Actions on points, images and regular feature maps agree with each other and compose."""

import itertools
import math

import pytest
import torch

from equidyn.groups import (
    Cyclic,
    Dihedral,
    act_on_image,
    act_on_points,
    act_on_regular,
    interpolation_matrix,
    rotate_image,
)


def pixel_point(i, j, size):
    c = (size - 1) / 2
    return torch.tensor([j - c, c - i], dtype=torch.float64)


@pytest.mark.parametrize("G", [Cyclic(4), Dihedral(4), Cyclic(2), Dihedral(2)], ids=repr)
@pytest.mark.parametrize("size", [5, 6])
def test_image_action_moves_pixels_like_points(G, size):
    for g in G.elements():
        for i, j in [(0, 1), (size - 1, 2), (1, size - 2)]:
            x = torch.zeros(size, size, dtype=torch.float64)
            x[i, j] = 1.0
            ((ii, jj),) = (act_on_image(G, g, x) == 1).nonzero().tolist()
            expected = act_on_points(G, g, pixel_point(i, j, size))
            torch.testing.assert_close(pixel_point(ii, jj, size), expected)


@pytest.mark.parametrize("G", [Cyclic(4), Dihedral(4)], ids=repr)
def test_actions_compose(G):
    x = torch.randn(2, 3, 5, 5)
    f = torch.randn(2, 3, G.order, 5, 5)
    for g, h in itertools.product(G.elements(), repeat=2):
        gh = G.compose(g, h)
        assert torch.equal(act_on_image(G, g, act_on_image(G, h, x)), act_on_image(G, gh, x))
        assert torch.equal(act_on_regular(G, g, act_on_regular(G, h, f)), act_on_regular(G, gh, f))


def test_interpolated_rotation_is_approximate_but_close_on_smooth_images():
    size = 21
    i, j = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    x = torch.exp(-((i - 8.0) ** 2 + (j - 11.0) ** 2) / 8.0).double()  # smooth blob
    C8 = Cyclic(8)
    y = act_on_image(C8, 1, act_on_image(C8, 1, x))  # two 45° turns vs one 90° turn
    exact = act_on_image(Cyclic(4), 1, x)
    assert 0 < (y - exact).abs().max() < 0.1 * x.max()
    torch.testing.assert_close(rotate_image(x, math.pi / 2), exact)  # exact at 90°
    S = interpolation_matrix(7, C8.matrix(1))
    assert (S.sum(-1) <= 1 + 1e-12).all()  # convex weights, zero outside


def test_bad_input():
    with pytest.raises(ValueError, match="square"):
        act_on_image(Cyclic(4), 1, torch.zeros(5, 6))
    act_on_image(Cyclic(4), 2, torch.zeros(5, 6))  # half turns need no square
    with pytest.raises(ValueError, match=r"\(\.\.\., 8, H, W\)"):
        act_on_regular(Dihedral(4), 1, torch.zeros(2, 4, 5, 5))
    with pytest.raises(ValueError, match="last dim 2"):
        act_on_points(Cyclic(4), 1, torch.zeros(3, 3))
