"""Canonicalized models are invariant / equivariant for any backbone; gradients stay finite;
degenerate inputs never give NaN; frames that are not group elements are refused."""

import pytest
import torch

from equidyn.canonical import (
    Canonicalized,
    DiscreteFrame,
    ImageCanonicalizer,
    PointCanonicalizer,
    gram_schmidt_frame,
)
from equidyn.groups import Cyclic, Dihedral, act_on_image
from equidyn.testing import assert_equivariant, assert_group_equivariant, equivariance_error

C4, D4 = Cyclic(4), Dihedral(4)


def rand(*shape, dtype=torch.float64, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def image_model(G, output="invariant"):
    torch.manual_seed(0)
    if output == "invariant":  # flatten + linear: no symmetry at all
        backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 81, 4))
    else:  # a plain convolution with generic (non-symmetric) filters
        backbone = torch.nn.Conv2d(2, 3, 3, padding=1)
    canon = ImageCanonicalizer(G, in_channels=2, channels=4, kernel_size=3, output=output)
    return Canonicalized(canon, backbone)


@pytest.mark.parametrize("G", [C4, D4], ids=repr)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_image_canonicalization_makes_any_backbone_invariant(G, dtype):
    model = image_model(G).to(dtype)
    x = rand(5, 2, 9, 9, dtype=dtype)
    errs = assert_group_equivariant(model, G, "image", "trivial", args_in=[x])
    assert len(errs) == G.order
    plain = {g: (model.backbone(act_on_image(G, g, x)) - model.backbone(x)).abs().max()
             for g in G.elements()[1:]}  # fmt: skip
    assert min(plain.values()) > 1e-3  # the backbone alone is not invariant


@pytest.mark.parametrize("G", [C4, D4], ids=repr)
def test_image_canonicalization_equivariant_outputs(G):
    model = image_model(G, output="image").double()
    assert_equivariant(model, ["image"], ["image"], group=G, args_in=[rand(3, 2, 9, 9)])


def test_gradients_through_the_argmax_are_finite_and_reach_the_canonicalizer():
    model = image_model(D4).double()
    x = rand(6, 2, 9, 9)
    out, frame = model.forward_with_frame(x)
    loss = out.square().mean() + 0.1 * model.canonicalizer.prior_loss(frame)
    loss.backward()
    grads = [p.grad for p in model.canonicalizer.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert max(g.abs().max() for g in grads) > 0
    assert torch.equal(frame.weights.detach(), torch.nn.functional.one_hot(frame.index, 8).double())


def test_prior_loss_is_cross_entropy_towards_identity():
    canon = ImageCanonicalizer(C4, in_channels=1, channels=2, kernel_size=3).double()
    frame = canon.frame(rand(4, 1, 7, 7))
    expected = -torch.log_softmax(frame.scores, -1)[:, 0].mean()
    torch.testing.assert_close(canon.prior_loss(frame), expected)


class NotAGroupElement(ImageCanonicalizer):
    def frame(self, x):
        s = self.scores(x)
        return DiscreteFrame(torch.softmax(s, -1), s, s.argmax(-1))  # soft: not an element


def test_frames_that_are_not_group_elements_are_refused():
    canon = NotAGroupElement(C4, in_channels=1, channels=2, kernel_size=3)
    model = Canonicalized(canon, torch.nn.Flatten())
    with pytest.raises(ValueError, match="not a group element"):
        model(torch.randn(2, 1, 5, 5))
    with pytest.raises(TypeError, match="Canonicalizer"):
        Canonicalized(torch.nn.Identity(), torch.nn.Identity())
    with pytest.raises(ValueError, match="output must be"):
        ImageCanonicalizer(C4, in_channels=1, output="vector")


# --- point sets -------------------------------------------------------------------------


class PlainMLP(torch.nn.Module):
    """A deliberately non-equivariant backbone: flattens positions, velocities and charges."""

    def __init__(self, n=5):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(7 * n, 32), torch.nn.SiLU(), torch.nn.Linear(32, 3 * n)
        )

    def forward(self, pos, vel, q):
        h = torch.cat([pos, vel, q], -1).flatten(1)
        return pos + self.net(h).unflatten(-1, (-1, 3))  # positions ("points")


def point_model(group="O3"):
    torch.manual_seed(0)
    canon = PointCanonicalizer(inputs=["points", "vectors", "scalars"], outputs=["points"],
                               scalar_dims=[1], group=group, hidden=16)  # fmt: skip
    return Canonicalized(canon, PlainMLP())


def point_inputs(dtype=torch.float64):
    return [rand(4, 5, 3, dtype=dtype), rand(4, 5, 3, dtype=dtype, seed=1),
            rand(4, 5, 1, dtype=dtype, seed=2).sign()]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_o3_canonicalization_is_e3_equivariant(dtype):
    model = point_model("O3").to(dtype)
    errs = assert_equivariant(model, ["cartesian_points", "1o", None], ["cartesian_points"],
                              args_in=point_inputs(dtype), translations=True)  # fmt: skip
    assert set(errs) == {"proper rotation", "improper rotation"}
    bare = equivariance_error(model.backbone, ["cartesian_points", "1o", None],
                              ["cartesian_points"], args_in=point_inputs(dtype))  # fmt: skip
    assert bare["proper rotation"] > 1e-3


def test_so3_canonicalization_is_not_reflection_equivariant():
    model = point_model("SO3").double()
    err = equivariance_error(model, ["cartesian_points", "1o", None], ["cartesian_points"],
                             args_in=point_inputs(), translations=True)  # fmt: skip
    assert err["proper rotation"] < 1e-10 < 1e-3 < err["improper rotation"]


def test_degenerate_point_sets_never_give_nan():
    model = point_model("O3").double()
    line = torch.linspace(-1, 1, 5, dtype=torch.float64)[:, None] * torch.tensor([1.0, 2, 3])
    pos = torch.stack([line, torch.zeros(5, 3, dtype=torch.float64)])  # collinear; coincident
    pos.requires_grad_(True)
    vel = torch.zeros(2, 5, 3, dtype=torch.float64)
    q = torch.ones(2, 5, 1, dtype=torch.float64)
    out, frame = model.forward_with_frame(pos, vel, q)
    assert frame.degenerate.all() and torch.isfinite(out).all()
    R = frame.rotation
    torch.testing.assert_close(
        R.transpose(-1, -2) @ R, torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    )
    out.sum().backward()
    assert torch.isfinite(pos.grad).all()
    assert not point_model("O3").double().canonicalizer.frame(*point_inputs()).degenerate.any()


def test_gram_schmidt_fallbacks_and_errors():
    v = torch.tensor([[[0.0, 0, 0], [0, 0, 0], [0, 0, 0]],   # everything vanishes
                      [[1.0, 1, 0], [2, 2, 0], [0, 0, 5]],   # v2 parallel to v1: use v3
                      [[1.0, 0, 0], [0, 1, 0], [1, 1, 0]]])  # v3 in the plane: e1 x e2  # fmt: skip
    R, bad = gram_schmidt_frame(v, proper=False)
    # case 2 used v3 for e2, so e3 had to come from the cross product: flagged (not O(3)-exact)
    assert torch.isfinite(R).all() and bad.tolist() == [True, True, True]
    torch.testing.assert_close(R.transpose(-1, -2) @ R, torch.eye(3).expand(3, 3, 3))
    torch.testing.assert_close(R[1][:, 1], torch.tensor([0.0, 0, 1]))
    R_so3, bad_so3 = gram_schmidt_frame(v[1:], proper=True)  # for SO(3), v3 is a valid e2
    assert bad_so3.tolist() == [False, False]
    torch.testing.assert_close(torch.linalg.det(R_so3), torch.ones(2))
    with pytest.raises(ValueError, match=">= 3"):
        gram_schmidt_frame(torch.randn(2, 2, 3), proper=False)
    with pytest.raises(ValueError, match="kinds"):
        PointCanonicalizer(inputs=["points", "spinors"], outputs=["points"])
    with pytest.raises(ValueError, match="scalar_dims"):
        PointCanonicalizer(inputs=["points", "scalars"], outputs=["points"])


def test_canonical_nbody_quick(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "canonical_nbody.py"
    spec = importlib.util.spec_from_file_location("canonical_nbody", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for backbone in ("gnn", "mlp"):
        result = bench.main(["--quick", "--backbone", backbone, "--out", str(tmp_path / "cn")])
        assert (tmp_path / "cn_quick" / f"result_{backbone}_seed0.json").exists()
        assert result["test"] > 0 and max(result["equivariance_error"].values()) < 1e-10
