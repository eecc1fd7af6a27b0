r"""ESTAG: equivariant spatio-temporal attentive graph network (Wu et al., NeurIPS 2023).

A forecast model (:mod:`equidyn.models.forecasting`): from the window
:math:`x^{(1)}, \dots, x^{(T)}` of ``n`` particles it predicts their positions ahead.

**Equivariant Fourier transform.** Each particle's trajectory is centred on its own temporal
mean, :math:`\tilde x_i^{(t)} = x_i^{(t)} - \bar x_i`, and transformed over time,

.. math::

    X_i(k) = \frac{1}{T}\sum_{t=1}^{T} \tilde x_i^{(t)}\, e^{-2\pi \mathrm{i}\, k t / T}
    \in \mathbb{C}^3, \qquad k = 1, \dots, F .

:math:`X_i(k)` is invariant to translations and rotates with :math:`x` (:math:`R` is real),
so :math:`c_i(k) = w_k \|X_i(k)\|` and
:math:`e_{ij}(k) = w'_k\, |\langle X_i(k), X_j(k) \rangle|` (Hermitian product) are E(3)
invariants: spectral node and edge features with a learned frequency filter :math:`w, w'`.

**Layers.** Node features start as
:math:`h_i^{(t)} = \phi_{in}(a_i, c_i, |x_i^{(t)} - x_i^{(1)}|) + p_t` (the distance travelled
since the first frame, and a learned embedding :math:`p_t` of the frame index).
Each of ``num_layers`` layers
applies, to every frame, an EGNN layer (:class:`~equidyn.models.EGNNLayer`: messages from
:math:`h`, :math:`|x_i - x_j|^2`, the pair attributes and :math:`e_{ij}`; coordinate
update :math:`\sum_j (x_i - x_j)\phi_x(m_{ij})`), then, for every particle, causal
attention over time (:class:`ESTAGTemporal`)

.. math::

    \alpha_{ts} = \operatorname{softmax}_{s \le t}\big(q(h^{(t)}) \cdot k(h^{(s)})/\sqrt{d}\big),
    \quad
    h^{(t)} \mathrel{+}= \phi_h\big(h^{(t)}, \textstyle\sum_{s\le t} \alpha_{ts} v(h^{(s)})\big),
    \quad
    x^{(t)} \mathrel{+}= \textstyle\sum_{s \le t} \alpha_{ts}\, \phi_x(v(h^{(s)}))\,
    (x^{(s)} - x^{(t)}).

**Output.** :math:`\hat x = x^{(T)} + \sum_{t<T} \theta_t (x^{(t)} - x^{(T)})` with learned
scalars :math:`\theta_t`, of the positions after the last layer. Every vector enters only
through differences and invariant weights, so the prediction is E(3)-equivariant and
permutation-equivariant; frame :math:`t`'s state after the layers depends on the frames
:math:`s \le t` only, except through the spectral features (the transform sees the whole
window by construction, ``num_freqs=0`` switches it off).

>>> import torch
>>> model = ESTAG(window=6, num_features=16, num_layers=2, node_attr_dim=1, edge_attr_dim=1)
>>> x, q = torch.randn(3, 6, 5, 3), torch.randn(3, 5, 1)
>>> model(x, q, q[:, :, None] * q[:, None, :]).shape
torch.Size([3, 5, 3])
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from equidyn.models.egnn import EGNNLayer
from equidyn.models.forecasting import ForecastModel
from equidyn.models.particles import check_sizes, mlp, neighbour_index, off_diagonal
from equidyn.models.registry import register_model

__all__ = ["ESTAG", "ESTAGTemporal", "spectral_features"]


def spectral_features(pos_window: Tensor, num_freqs: int) -> tuple[Tensor, Tensor]:
    r"""The invariants of the equivariant Fourier transform (module docstring), unfiltered.

    ``pos_window`` (batch, T, n, 3) → node amplitudes :math:`\|X_i(k)\|` (batch, n, F) and
    pair magnitudes :math:`|\langle X_i(k), X_j(k)\rangle|` (batch, n, n, F) for
    :math:`k = 1 .. F`, ``F = num_freqs <= T // 2``.

    >>> t = torch.arange(8.0)
    >>> circle = torch.stack([t.cos() * 0, (2 * math.pi * t / 8).cos(), t * 0], -1)
    >>> node, pair = spectral_features(circle[None, :, None].expand(1, 8, 2, 3), 2)
    >>> node[0, 0].tolist()  # all the motion is at frequency k = 1: |X(1)| = 1/2
    [0.5, 0.0]
    """
    T = pos_window.shape[1]
    if not 0 <= num_freqs <= T // 2:
        raise ValueError(f"num_freqs must be in 0..{T // 2} for a window of {T}, got {num_freqs}")
    centred = pos_window - pos_window.mean(1, keepdim=True)  # [batch, T, n, 3]
    X = torch.fft.rfft(centred, dim=1)[:, 1 : num_freqs + 1] / T  # [batch, F, n, 3] complex
    node = X.abs().pow(2).sum(-1).clamp_min(1e-24).sqrt()  # [batch, F, n]
    inner = torch.einsum("bfid,bfjd->bfij", X, X.conj())  # [batch, F, n, n]
    pair = (inner.real.pow(2) + inner.imag.pow(2) + 1e-24).sqrt()
    return node.transpose(1, 2), pair.permute(0, 2, 3, 1)


class ESTAGTemporal(nn.Module):
    """Causal equivariant attention over the frames of each particle (module docstring).

    ``h`` (batch, T, n, d), ``x`` (batch, T, n, 3) → the same shapes; the output at frame
    ``t`` depends on the frames ``s <= t`` only.

    >>> layer = ESTAGTemporal(8)
    >>> h, x = torch.randn(2, 5, 3, 8), torch.randn(2, 5, 3, 3)
    >>> h2, x2 = layer(h, x)
    >>> x3 = x.clone(); x3[:, 4] += 1.0  # change the last frame ...
    >>> bool(torch.allclose(layer(h, x3)[1][:, :4], x2[:, :4]))  # ... earlier ones do not see it
    True
    """

    def __init__(self, num_features: int, coord_init_scale: float = 1e-3) -> None:
        super().__init__()
        d = num_features
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.phi_h = mlp([2 * d, d, d], False)
        self.phi_x = mlp([d, d, 1], False)
        last = self.phi_x[-1]
        assert isinstance(last, nn.Linear)
        with torch.no_grad():  # start close to the identity
            last.weight.mul_(coord_init_scale)
            last.bias.zero_()

    def forward(self, h: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        T = h.shape[1]
        ht, xt = h.transpose(1, 2), x.transpose(1, 2)  # [batch, n, T, d], [batch, n, T, 3]
        scores = self.query(ht) @ self.key(ht).transpose(-1, -2) / math.sqrt(ht.shape[-1])
        future = torch.ones(T, T, dtype=torch.bool, device=h.device).triu(1)
        attn = scores.masked_fill(future, float("-inf")).softmax(-1)  # [batch, n, T, T]
        v = self.value(ht)
        h_new = ht + self.phi_h(torch.cat([ht, attn @ v], dim=-1))
        w = attn * self.phi_x(v)[..., 0][:, :, None, :]  # [batch, n, T(t), T(s)]
        # sum_s w_ts (x_s - x_t) = (w @ x)_t - (sum_s w_ts) x_t
        x_new = xt + w @ xt - w.sum(-1, keepdim=True) * xt
        return h_new.transpose(1, 2), x_new.transpose(1, 2)


@register_model(kind="forecast")
class ESTAG(ForecastModel):
    """ESTAG (module docstring): ``ESTAG(pos_window, node_attr, edge_attr) -> positions``.

    Args:
        window: ``T``, frames per input window.
        num_features: width of the node features and MLPs.
        num_layers: spatial + temporal layer pairs.
        node_attr_dim: per-particle scalars (species one-hot, charges, ...).
        edge_attr_dim: scalars per ordered pair (bonds, charge products, ...).
        num_freqs: frequencies ``k = 1 .. F`` of the spectral features; default ``T // 2``,
            ``0`` for none.
        coord_init_scale: initial scale of the coordinate updates (start near the identity).
    """

    def __init__(
        self,
        window: int = 8,
        num_features: int = 64,
        num_layers: int = 2,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 0,
        *,
        num_freqs: int | None = None,
        coord_init_scale: float = 1e-3,
    ) -> None:
        super().__init__(window, node_attr_dim, edge_attr_dim)
        check_sizes(num_features=num_features, num_layers=num_layers)
        num_freqs = window // 2 if num_freqs is None else num_freqs
        if not 0 <= num_freqs <= window // 2:
            raise ValueError(f"num_freqs must be in 0..{window // 2}, got {num_freqs}")
        self.num_freqs = num_freqs
        self.node_filter = nn.Parameter(torch.ones(num_freqs))
        self.edge_filter = nn.Parameter(torch.ones(num_freqs))
        self.embed = nn.Linear(node_attr_dim + num_freqs + 1, num_features)
        self.frame_embedding = nn.Parameter(torch.zeros(window, num_features))
        self.spatial = nn.ModuleList(
            EGNNLayer(
                num_features,
                edge_attr_dim + num_freqs,
                velocity=False,
                coord_init_scale=coord_init_scale,
            )
            for _ in range(num_layers)
        )
        self.temporal = nn.ModuleList(
            ESTAGTemporal(num_features, coord_init_scale) for _ in range(num_layers)
        )
        self.theta = nn.Parameter(torch.zeros(window - 1))

    def encode(
        self, pos_window: Tensor, node_attr: Tensor, edge_attr: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Features (batch, T, n, d) and positions (batch, T, n, 3) of every frame after the
        layers (inputs unchecked: :meth:`forward` checks them)."""
        B, T, n, _ = pos_window.shape
        index = neighbour_index(n, pos_window.device)
        node_s, pair_s = spectral_features(pos_window, self.num_freqs)
        node_s, pair_s = node_s * self.node_filter, pair_s * self.edge_filter
        pairs = pair_s if edge_attr is None else torch.cat([edge_attr, pair_s], dim=-1)
        pair_attr = off_diagonal(pairs, index)  # [B, n, n - 1, e + F]
        pair_attr = pair_attr[:, None].expand(B, T, *pair_attr.shape[1:]).flatten(0, 1)
        travel = pos_window - pos_window[:, :1]  # since the first frame: causal, invariant
        travel = ((travel * travel).sum(-1, keepdim=True) + 1e-12).sqrt()  # [B, T, n, 1]
        static = torch.cat([node_attr, node_s], dim=-1)[:, None].expand(B, T, n, -1)
        h = self.embed(torch.cat([static, travel], dim=-1)) + self.frame_embedding[:, None]
        x = pos_window
        for spatial, temporal in zip(self.spatial, self.temporal):
            h, x = spatial(h.flatten(0, 1), x.flatten(0, 1), None, pair_attr, index)
            h, x = temporal(h.view(B, T, n, -1), x.view(B, T, n, 3))
        return h, x

    def _forecast(self, pos_window: Tensor, node_attr: Tensor, edge_attr: Tensor | None) -> Tensor:
        _, x = self.encode(pos_window, node_attr, edge_attr)
        last = x[:, -1]  # [B, n, 3]
        return last + torch.einsum("t,btnd->bnd", self.theta, x[:, :-1] - last[:, None])
