"""Exact equivariance of every group layer and model (float64 and float32), and bad input."""

import pytest
import torch

from equidyn.groups import (
    GCNN,
    P4CNN,
    P4MCNN,
    Z2CNN,
    Cyclic,
    Dihedral,
    GroupBatchNorm,
    GroupConv,
    GroupPool,
    LiftingConv,
    SpatialMaxPool,
    act_on_image,
    act_on_regular,
)
from equidyn.testing import assert_equivariant, assert_group_equivariant, group_equivariance_error

C4, D4 = Cyclic(4), Dihedral(4)
GROUPS = [C4, D4, Cyclic(2), Dihedral(1)]


def images(*shape, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=dtype)


@pytest.mark.parametrize("G", GROUPS, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lifting_and_group_conv(G, dtype):
    torch.manual_seed(0)
    lift = LiftingConv(G, 2, 3, kernel_size=3).to(dtype)
    conv = GroupConv(G, 3, 4, kernel_size=5).to(dtype)
    errs = assert_group_equivariant(
        lift, G, "image", "regular", args_in=[images(2, 2, 7, 7, dtype=dtype)]
    )
    assert len(errs) == G.order
    assert_group_equivariant(
        conv, G, "regular", "regular", args_in=[images(2, 3, G.order, 7, 7, dtype=dtype)]
    )
    # even sizes are fine at stride 1 with "same" padding
    assert_group_equivariant(
        conv, G, "regular", "regular", args_in=[images(1, 3, G.order, 6, 6, dtype=dtype)]
    )


def test_pooling_and_batch_norm():
    x = images(4, 3, 8, 9, 9)
    assert_group_equivariant(GroupPool("max"), D4, "regular", "image", args_in=[x])
    assert_group_equivariant(GroupPool("mean"), D4, "regular", "image", args_in=[x])
    assert_group_equivariant(SpatialMaxPool(), D4, "regular", "regular", args_in=[x])
    bn = GroupBatchNorm(3).double()
    assert_group_equivariant(bn.train(), D4, "regular", "regular", args_in=[x])
    bn(x * 3 + 1)
    assert_group_equivariant(bn.eval(), D4, "regular", "regular", args_in=[x])
    # group pooling then spatial pooling: invariant
    inv = lambda f: GroupPool("max")(f).amax(dim=(-2, -1))
    assert_group_equivariant(inv, D4, "regular", "trivial", args_in=[x])


@pytest.mark.parametrize("make,G", [(P4CNN, C4), (P4MCNN, D4)], ids=["P4CNN", "P4MCNN"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_models_are_invariant(make, G, dtype):
    torch.manual_seed(0)
    model = make(in_channels=2, num_classes=5, channels=3, num_layers=3, pool_after=(0, 1))
    model = model.to(dtype)
    x = images(3, 2, 9, 9, dtype=dtype)
    for mode in (model.train(), model.eval()):
        assert_equivariant(mode, ["image"], ["trivial"], group=G, args_in=[x])
    assert_group_equivariant(model.features, G, "image", "regular", args_in=[x])


def test_p4cnn_is_not_flip_invariant_and_z2cnn_not_rotation_invariant():
    torch.manual_seed(0)
    x = images(3, 1, 9, 9)
    p4 = P4CNN(in_channels=1, num_classes=5, channels=3, num_layers=2).double().eval()
    err = group_equivariance_error(p4, D4, "image", "trivial", args_in=[x])
    assert max(err[n] for n in ["e", "r^1", "r^2", "r^3"]) < 1e-12 and err["f"] > 1e-6
    z2 = Z2CNN(in_channels=1, num_classes=5, channels=3, num_layers=2).double().eval()
    assert group_equivariance_error(z2, C4, "image", "trivial", args_in=[x])["r^1"] > 1e-6


def test_c8_is_approximately_equivariant_on_smooth_images():
    torch.manual_seed(0)
    C8 = Cyclic(8)
    lift = LiftingConv(C8, 1, 2).double()
    i, j = torch.meshgrid(torch.arange(15), torch.arange(15), indexing="ij")
    x = torch.exp(-((i - 7.0) ** 2 + (j - 5.0) ** 2) / 10.0).double()[None, None]
    err = group_equivariance_error(lift, C8, "image", "regular", args_in=[x])
    assert err["r^2"] < 1e-12 and 1e-6 < err["r^1"] < 0.3  # 90° exact, 45° approximate
    assert GroupConv(C8, 2, 2).double()(lift(x)).shape == (1, 2, 8, 15, 15)


def test_stride_on_even_sizes_breaks_exactness():
    torch.manual_seed(0)
    conv = LiftingConv(C4, 1, 2, stride=2).double()
    odd = group_equivariance_error(conv, C4, "image", "regular", args_in=[images(1, 1, 9, 9)])
    even = group_equivariance_error(conv, C4, "image", "regular", args_in=[images(1, 1, 8, 8)])
    assert max(odd.values()) < 1e-12 and even["r^1"] > 1e-3


def test_bad_input():
    model = P4CNN(in_channels=1, num_classes=3, channels=2, num_layers=2)
    with pytest.raises(ValueError, match="odd image sizes"):
        model(torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="square"):
        model(torch.randn(1, 1, 9, 11))
    two_pools = P4CNN(in_channels=1, num_classes=3, channels=2, num_layers=2, pool_after=(0, 1))
    two_pools(torch.randn(1, 1, 9, 9))  # 9 -> 5 -> 3
    with pytest.raises(ValueError, match="spatial size 6"):  # 11 -> 6 after the first pool
        two_pools(torch.randn(1, 1, 11, 11))
    GCNN(C4, in_channels=1, num_classes=3, channels=2, num_layers=2, exact=False)(
        torch.randn(1, 1, 8, 8)
    )  # accepted when exactness is not requested
    with pytest.raises(ValueError, match="another size"):
        GroupConv(D4, 2, 2)(torch.randn(1, 2, 4, 5, 5))  # C4 features into a D4 layer
    with pytest.raises(ValueError, match=r"\(batch, 1, H, W\)"):
        LiftingConv(C4, 1, 2)(torch.randn(1, 2, 5, 5))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        P4CNN(in_channels=1, num_classes=2, kernel_size=4)
    with pytest.raises(ValueError, match="positive integer"):
        GroupConv(C4, 0, 2)


def test_parameter_count_and_filter_bank():
    conv = GroupConv(D4, 3, 4, kernel_size=3)
    assert sum(p.numel() for p in conv.parameters()) == 4 * 3 * 8 * 9 + 4
    bank = conv.stacked_filters()
    assert bank.shape == (4 * 8, 3 * 8, 3, 3)
    # the filters for element g are L_g of the filters for the identity
    w = bank.reshape(4, 8, 3, 8, 3, 3)
    for g in D4.elements():
        torch.testing.assert_close(w[:, g], act_on_regular(D4, g, w[:, 0]))
    lift = LiftingConv(D4, 1, 2).stacked_filters().reshape(2, 8, 1, 3, 3)
    torch.testing.assert_close(lift[:, 5], act_on_image(D4, 5, lift[:, 0]))
