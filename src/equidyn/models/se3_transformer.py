r"""SE(3)-Transformer (Fuchs et al. 2020): equivariant self-attention for particle dynamics.

Node features :math:`h_i` are steerable (``hidden_irreps``), split into ``num_heads`` heads
along the channels of every irrep block. With :math:`r_{ij} = x_i - x_j`, spherical harmonics
:math:`Y` and radial features :math:`\rho_{ij} = G(|r_{ij}|) \oplus e_{ij}` (Gaussians and the
scalar edge attributes, e.g. ``q_i q_j``), layer ``l`` computes

.. math::
    k_{ij} &= W_K\big(h_j \otimes_{w_K(\rho_{ij})} Y(\hat r_{ij})\big), \qquad
    v_{ij} = W_V\big(h_j \otimes_{w_V(\rho_{ij})} Y(\hat r_{ij})\big), \qquad
    q_i = W_Q h_i \\
    \alpha_{ijh} &= \operatorname{softmax}_{j \ne i}\Big(
        \frac{\langle q_{i}, k_{ij} \rangle_h}{\sqrt{d_h}}\Big) \\
    h_i' &= h_i + \mathrm{NormAct}\Big(W_O \sum_{j \ne i} \alpha_{ijh}\, v_{ij} + W_S h_i\Big)

Keys and values are TFN convolutions (channelwise tensor products with radial-MLP weights,
:class:`~equidyn.models.blocks.RadialWeightedConvolution`) followed by equivariant linear maps
:math:`W` (:class:`~equidyn.o3.Linear`); :math:`\langle\cdot,\cdot\rangle_h` is the sum of the
per-irrep dot products :math:`\sum_m q_{um} k_{um}` over the channels :math:`u` of head
:math:`h` (:math:`d_h` components), invariant under O(3) because every Wigner matrix is
orthogonal; the softmax runs over the ``n − 1`` neighbours of the dense graph, and head
:math:`h`'s weight multiplies the value channels of head :math:`h`. The nonlinearity is a
norm activation :math:`x_u \mapsto \sigma(|x_u| + b_u)\,x_u` (sigmoid, learned biases). Node
input, readout and output are those of :class:`~equidyn.models.tfn.TFN`:
:math:`x_i + \delta_i` with :math:`\delta_i` a ``1o`` readout. Published charged N-body
test MSE (EGNN paper, table 2): 0.0244.

With ``predict_velocity=True`` the readout gets a second ``1o`` output :math:`u_i`, as in
:class:`~equidyn.models.tfn.TFN`: :meth:`SE3Transformer.forward_state` returns
:math:`(x_i + \delta_i,\ v_i + u_i)`, with :math:`u_i = 0` exactly at initialisation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn._deprecation import renamed_arguments
from equidyn.models.blocks import RadialWeightedConvolution
from equidyn.models.registry import register_model
from equidyn.models.steerable import (
    STEERABLE_RENAMED_ARGUMENTS,
    PointDynamicsTrunk,
    resolve_hidden_irreps,
)
from equidyn.models.tfn import default_hidden_irreps
from equidyn.nn import NormActivation
from equidyn.o3 import Irreps, Linear

__all__ = ["SE3Transformer", "SE3TransformerLayer", "head_matrix"]


@renamed_arguments(n_heads="num_heads")
def head_matrix(irreps: Irreps | str, num_heads: int) -> Tensor:
    """``(irreps.dim, num_heads)`` float64 0/1 matrix: component → head. Channel ``u`` of a block of
    multiplicity ``U`` belongs to head ``u * num_heads // U`` (all components of an irrep copy
    go to the same head, so per-head sums of ``q * k`` are invariant).

    >>> head_matrix("2x0e + 2x1o", 2).argmax(1).tolist()
    [0, 1, 0, 0, 0, 1, 1, 1]
    """
    irreps = Irreps(irreps)
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")
    heads = [u * num_heads // mul for mul, ir in irreps for u in range(mul) for _ in range(ir.dim)]
    return torch.nn.functional.one_hot(torch.tensor(heads), num_heads).to(torch.float64)


class SE3TransformerLayer(nn.Module):
    """One equivariant attention layer (equations in the module docstring).

    >>> from equidyn.models.steerable import neighbour_index
    >>> layer = SE3TransformerLayer("4x0e + 2x1o", "1x0e + 1x1o + 1x2e", radial_dim=5, num_heads=2)
    >>> h, y, rad = torch.randn(2, 3, 10), torch.randn(2, 3, 2, 9), torch.randn(2, 3, 2, 5)
    >>> layer(h, y, rad, neighbour_index(3)).shape
    torch.Size([2, 3, 10])
    """

    @renamed_arguments(n_heads="num_heads")
    def __init__(
        self,
        hidden_irreps: Irreps | str,
        irreps_sh: Irreps | str,
        radial_dim: int,
        *,
        num_heads: int = 4,
        radial_hidden: int = 32,
    ) -> None:
        super().__init__()
        hidden = Irreps(hidden_irreps)
        self.num_heads = num_heads
        keep = [ir for _, ir in hidden]
        self.conv = RadialWeightedConvolution(
            hidden, irreps_sh, keep, [radial_dim, radial_hidden, radial_hidden], num_filters=2
        )
        self.lin_k = Linear(self.conv.irreps_out, hidden)
        self.lin_v = Linear(self.conv.irreps_out, hidden)
        self.lin_q = Linear(hidden, hidden)
        self.lin_o = Linear(hidden, hidden)
        self.lin_s = Linear(hidden, hidden, biases=True)
        self.act = NormActivation(hidden, torch.sigmoid, normalize=False, bias=True)
        heads = head_matrix(hidden, num_heads).to(torch.get_default_dtype())  # [hidden.dim, H]
        scale = heads.sum(0).clamp(min=1.0).rsqrt()  # 1 / sqrt(d_h)
        self.register_buffer("heads", heads, persistent=False)
        self.register_buffer("scaled_heads", heads * scale, persistent=False)

    def attention(self, h: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """``Σ_j α_ijh v_ij`` (batch, n, hidden) from ``h`` (batch, n, hidden) and keys and
        values (batch, n, n − 1, hidden)."""
        q = self.lin_q(h)  # [batch, n, hidden]
        logits = (q[:, :, None, :] * k) @ self.scaled_heads  # [batch, n, n - 1, n_heads]
        alpha = torch.softmax(logits, dim=2)
        weights = alpha @ self.heads.T  # [batch, n, n - 1, hidden]
        return (weights * v).sum(dim=2)  # [batch, n, hidden]

    def forward(self, h: Tensor, y: Tensor, radial: Tensor, index: Tensor) -> Tensor:
        """``h`` (batch, n, hidden), ``y`` (batch, n, n − 1, sh), ``radial``
        (batch, n, n − 1, radial_dim) → (batch, n, hidden)."""
        c = self.conv.edge_messages(h[:, index], y, radial)  # [2, batch, n, n - 1, out]
        k, v = self.lin_k(c[0]), self.lin_v(c[1])  # [batch, n, n - 1, hidden] each
        agg = self.attention(h, k, v)
        return h + self.act(self.lin_o(agg) + self.lin_s(h))  # [batch, n, hidden]


@register_model(kind="particle")
class SE3Transformer(PointDynamicsTrunk):
    """SE(3)-Transformer for particle dynamics:
    ``SE3Transformer(pos, vel, node_attr, edge_attr) -> positions``.

    Args:
        num_features: channels of the hidden features, split evenly over
            ``l = 0 .. l_max`` unless ``hidden_irreps`` is given.
        num_layers: attention layers.
        node_attr_dim: scalar node attributes per particle.
        edge_attr_dim: scalar attributes per ordered pair (``q_i q_j``: 1).
        num_heads: attention heads (channels of every irrep block split among them).

    The other arguments (``l_max``, ``l_max_sh``, ``num_basis``, ``r_max``, ``radial_hidden``,
    ``hidden_irreps``, ``readout_init_scale``, ``predict_velocity``) are as in
    :class:`~equidyn.models.tfn.TFN`.

    >>> model = SE3Transformer(num_features=8, num_layers=2, node_attr_dim=0, edge_attr_dim=1)
    >>> from equidyn.models import ParticleSystem
    >>> q = torch.randint(0, 2, (3, 5, 1)) * 2.0 - 1
    >>> system = ParticleSystem(torch.randn(3, 5, 3), torch.randn(3, 5, 3), q)
    >>> model.predict(system).shape  # model(pos, vel, empty, q_i q_j)
    torch.Size([3, 5, 3])
    """

    @renamed_arguments(**STEERABLE_RENAMED_ARGUMENTS, n_heads="num_heads", lmax_sh="l_max_sh")
    def __init__(
        self,
        num_features: int = 64,
        num_layers: int = 4,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 1,
        *,
        num_heads: int = 4,
        l_max: int = 1,
        l_max_sh: int = 2,
        num_basis: int = 16,
        r_max: float = 8.0,
        radial_hidden: int = 32,
        hidden_irreps: Irreps | str | None = None,
        readout_init_scale: float = 0.1,
        predict_velocity: bool = False,
    ) -> None:
        super().__init__(node_attr_dim, edge_attr_dim)
        if num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads}")
        hidden = resolve_hidden_irreps(
            hidden_irreps, lambda: default_hidden_irreps(num_features, l_max)
        )
        self._build(
            lambda hid, sh, radial: SE3TransformerLayer(
                hid, sh, radial, num_heads=num_heads, radial_hidden=radial_hidden
            ),
            hidden,
            num_layers,
            l_max_sh=l_max_sh,
            num_basis=num_basis,
            r_max=r_max,
            readout_init_scale=readout_init_scale,
            predict_velocity=predict_velocity,
        )
