r"""Tetris: an equivariant network tells 3D shapes apart in any orientation, mirror images too.

The eight shapes made of four unit cubes ("tetracubes") are the data set: square, line, corner,
L, T, zigzag, and a **chiral pair** — two "screws" that are mirror images of each other but
cannot be rotated into each other. We train on a single orientation of each shape and test on
random rotations and reflections.

The network only sees relative positions through spherical harmonics, and every layer is
equivariant, so its outputs transform in a known way:

* 7 even scalars (``7x0e``), the logits of 7 classes where both screws share the class
  "chiral": invariant under rotations *and* reflections;
* 1 odd scalar (``1x0o``), a **pseudoscalar**: invariant under rotations, sign flipped by a
  reflection. It is trained to be +1 on one screw and -1 on the other.

What "correct" means under a reflection: the mirror image of an achiral shape is that same
shape (rotated), so its label must not change; the mirror image of one screw **is** the other
screw, so a reflected screw must be classified as its mirror partner. The pseudoscalar does
this by construction: a reflection flips its sign and swaps the two answers. An invariant
network (``0e`` outputs only) could not tell the screws apart at all. Conversely, the
pseudoscalar of every achiral shape is exactly zero whatever the weights: such a shape is its
own mirror image up to a rotation, so its output must equal minus itself.

Layers (all from equidyn): three convolutions
``h_i' = Linear(sum_j ChannelwiseTP(h_j, Y(r_ij); MLP(Bessel(|r_ij|)) * cutoff(|r_ij|)))``
on the complete graph of each shape, with a :class:`equidyn.nn.Gate` nonlinearity after the
first two, then a sum over the four points.

Run: ``python examples/tetris.py`` (about 100 Adam steps; well under a minute on a laptop CPU).
"""

from __future__ import annotations

import argparse
import time

import torch

from equidyn import nn, o3

SHAPES: dict[str, list[tuple[int, int, int]]] = {
    "chiral_a": [(0, 0, 0), (1, 0, 0), (1, 1, 0), (1, 1, 1)],  # a right-handed screw
    "chiral_b": [(0, 0, 0), (1, 0, 0), (1, 1, 0), (1, 1, -1)],  # its mirror image
    "square": [(0, 0, 0), (1, 0, 0), (0, 1, 0), (1, 1, 0)],
    "line": [(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)],
    "corner": [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)],
    "L": [(0, 0, 0), (1, 0, 0), (2, 0, 0), (2, 1, 0)],
    "T": [(0, 0, 0), (1, 0, 0), (2, 0, 0), (1, 1, 0)],
    "zigzag": [(0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 1, 0)],
}
NAMES = list(SHAPES)
# class of each shape among the 7 even logits (both screws share class 0) ...
CLASS7 = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6])
# ... and the target of the pseudoscalar output
PSEUDO = torch.tensor([1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
# label of the mirror image of each shape: the screws swap, the others keep theirs
MIRROR = torch.tensor([1, 0, 2, 3, 4, 5, 6, 7])

IRREPS_SH = o3.Irreps.spherical_harmonics(2)  # 1x0e + 1x1o + 1x2e
IRREPS_HIDDEN = o3.Irreps("8x0e + 8x0o + 8x1o + 8x1e + 4x2e + 4x2o")
IRREPS_OUT = o3.Irreps("7x0e + 1x0o")


def tetris_graph(dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The 8 shapes as one batch: positions, complete graph of each shape, shape index."""
    pos = torch.tensor([p for pts in SHAPES.values() for p in pts], dtype=dtype)  # [32, 3]
    n_shapes = len(SHAPES)
    pairs = [
        (4 * g + i, 4 * g + j)
        for g in range(n_shapes)
        for i in range(4)
        for j in range(4)
        if i != j
    ]
    src, dst = torch.tensor(pairs, dtype=torch.long).T  # [96] each: message j -> i
    batch = torch.arange(n_shapes).repeat_interleave(4)  # [32]
    return {"pos": pos, "src": src, "dst": dst, "batch": batch}


def gate_for(irreps: o3.Irreps) -> nn.Gate:
    """A Gate whose output is ``irreps``: scalars pass through silu (0e) or tanh (0o, odd so
    it stays 0o); every l > 0 irrep is scaled by a sigmoid of an extra 0e gate."""
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in irreps if ir.l > 0])
    acts = [torch.nn.functional.silu if ir.p == 1 else torch.tanh for _, ir in scalars]
    return nn.Gate(scalars, acts, f"{gated.num_irreps}x0e", torch.sigmoid, gated)


class Convolution(torch.nn.Module):
    r""":math:`h_i' = \mathrm{Linear}\big(\frac{1}{\sqrt{3}}\sum_j \mathrm{TP}(h_j, Y(\hat r_{ij});
    w(|r_{ij}|))\big)`, radial weights :math:`w` from an MLP on the Bessel embedding."""

    def __init__(self, irreps_in: o3.Irreps, irreps_out: o3.Irreps, num_basis: int) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(irreps_in), o3.Irreps(irreps_out)
        self.tp = o3.ChannelwiseTensorProduct(
            self.irreps_in, IRREPS_SH, [ir for _, ir in self.irreps_out], internal_weights=False
        )
        self.radial = nn.MLP([num_basis, 16, self.tp.weight_numel], torch.nn.functional.silu)
        self.linear = o3.Linear(self.tp.irreps_out, self.irreps_out)

    def forward(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        emb: torch.Tensor,
        src: torch.Tensor,
        dst: torch.Tensor,
    ) -> torch.Tensor:
        msg = self.tp(h[src], sh, self.radial(emb))  # [n_edges, tp.irreps_out.dim]
        agg = torch.zeros(h.shape[0], msg.shape[1], dtype=msg.dtype, device=msg.device)
        agg = agg.index_add(0, dst, msg) / 3**0.5  # 3 neighbours per point
        return self.linear(agg)  # [n_nodes, irreps_out.dim]


class TetrisNet(torch.nn.Module):
    """Positions of points -> ``7x0e + 1x0o`` per shape (sum over its points)."""

    def __init__(self, r_max: float = 3.5, num_basis: int = 8, num_layers: int = 3) -> None:
        super().__init__()
        self.basis = nn.BesselBasis(r_max, num_basis)
        self.cutoff = nn.PolynomialCutoff(r_max, p=6)
        self.convs = torch.nn.ModuleList()
        self.gates = torch.nn.ModuleList()
        irreps = o3.Irreps("1x0e")  # every point starts with the same scalar, 1
        for _ in range(num_layers - 1):
            gate = gate_for(IRREPS_HIDDEN)
            self.convs.append(Convolution(irreps, gate.irreps_in, num_basis))
            self.gates.append(gate)
            irreps = gate.irreps_out
        self.convs.append(Convolution(irreps, IRREPS_OUT, num_basis))

    def forward(
        self, pos: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, batch: torch.Tensor
    ) -> torch.Tensor:
        vec = pos[src] - pos[dst]  # [n_edges, 3]
        r = vec.norm(dim=-1)  # [n_edges]
        sh = o3.spherical_harmonics([0, 1, 2], vec, normalize=True, normalization="component")
        emb = self.basis(r) * self.cutoff(r)[:, None]  # [n_edges, num_basis]
        h = torch.ones(pos.shape[0], 1, dtype=pos.dtype, device=pos.device)  # [n_nodes, 1]
        for i, conv in enumerate(self.convs):
            h = conv(h, sh, emb, src, dst)
            if i < len(self.gates):
                h = self.gates[i](h)
        n_shapes = int(batch.max()) + 1
        out = torch.zeros(n_shapes, h.shape[1], dtype=h.dtype, device=h.device)
        return out.index_add(0, batch, h)  # [n_shapes, 7x0e + 1x0o]


def predict(out: torch.Tensor) -> torch.Tensor:
    """Labels 0..7 from the outputs: the best even class; for "chiral", the sign of the
    pseudoscalar picks the screw."""
    c = out[:, :7].argmax(dim=1)
    screw = torch.where(out[:, 7] > 0, 0, 1)
    return torch.where(c == 0, screw, c + 1)


def loss_fn(out: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the 7 even logits + squared error of the pseudoscalar."""
    ce = torch.nn.functional.cross_entropy(out[:, :7], CLASS7)
    return ce + (out[:, 7] - PSEUDO.to(out.dtype)).pow(2).mean()


def train(steps: int = 100, seed: int = 0, lr: float = 1e-2, verbose: bool = False) -> TetrisNet:
    """Train on the single orientation of :data:`SHAPES`."""
    torch.manual_seed(seed)
    data = tetris_graph()
    net = TetrisNet()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for step in range(steps):
        loss = loss_fn(net(**data))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if verbose and (step % 20 == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {loss.item():.2e}")
    return net


@torch.no_grad()
def evaluate(net: TetrisNet, n_trials: int = 100, seed: int = 1) -> dict[str, float]:
    """Accuracy on random rotations (labels unchanged) and on random improper rotations
    ``-R`` (a rotation and a reflection: each screw must become its mirror partner), each with a
    random translation; also the largest change of the even outputs and of |pseudoscalar|."""
    g = torch.Generator().manual_seed(seed)
    data = tetris_graph()
    ref = net(**data)
    labels = torch.arange(len(SHAPES))
    correct = {"rotated": 0, "reflected": 0}
    drift = 0.0
    for _ in range(n_trials):
        R = o3.rand_matrix(generator=g)
        t = torch.randn(3, generator=g)
        for kind, Q, expected in (("rotated", R, labels), ("reflected", -R, MIRROR)):
            out = net(data["pos"] @ Q.T + t, data["src"], data["dst"], data["batch"])
            correct[kind] += int((predict(out) == expected).sum())
            sign = 1.0 if kind == "rotated" else -1.0
            expected_out = torch.cat([ref[:, :7], sign * ref[:, 7:]], dim=1)
            drift = max(drift, float((out - expected_out).abs().max()))
    n = n_trials * len(SHAPES)
    return {
        "rotated": correct["rotated"] / n,
        "reflected": correct["reflected"] / n,
        "train": float((predict(ref) == labels).float().mean()),
        "max_equivariance_error": drift,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--trials", type=int, default=100, help="random orientations tested")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # tiny tensors: threads only add synchronisation
    t0 = time.perf_counter()
    net = train(args.steps, seed=args.seed, verbose=True)
    t_train = time.perf_counter() - t0
    res = evaluate(net, n_trials=args.trials)
    with torch.no_grad():
        out = net(**tetris_graph())
    print("\nshape      pseudoscalar (0o)  prediction")
    for name, o, p in zip(NAMES, out[:, 7].tolist(), predict(out).tolist(), strict=True):
        print(f"{name:10s} {o:+.3f}             {NAMES[p]}")
    print(f"\ntrained {args.steps} steps in {t_train:.1f} s")
    print(f"accuracy, training orientation:           {100 * res['train']:.1f} %")
    print(f"accuracy, {args.trials} random rotations:           {100 * res['rotated']:.1f} %")
    print(
        f"accuracy, {args.trials} random reflections (screws swap): {100 * res['reflected']:.1f} %"
    )
    print(f"largest equivariance error of the outputs: {res['max_equivariance_error']:.1e}")


if __name__ == "__main__":
    main()
