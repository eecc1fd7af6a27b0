r"""Tensor field network (TFN, Thomas et al. 2018) for particle dynamics.

Node features :math:`h_i` are steerable (``hidden_irreps``). With :math:`r_{ij} = x_i - x_j`,
spherical harmonics :math:`Y` up to ``lmax_sh`` and invariant radial features
:math:`\rho_{ij} = G(|r_{ij}|) \oplus e_{ij}` (Gaussians and the scalar edge attributes,
e.g. ``q_i q_j``), layer ``l`` computes

.. math::
    c_i &= \frac{1}{n-1} \sum_{j \ne i} h_j \otimes_{w(\rho_{ij})} Y(\hat r_{ij})
        \quad \text{(convolution: channelwise tensor product, radial-MLP weights)} \\
    h_i' &= h_i + \mathrm{Gate}\big(W_c\, c_i + W_s\, h_i\big)
        \quad \text{(self-interaction and gate nonlinearity)}

with :math:`W_c, W_s` equivariant linear maps (:class:`~equidyn.o3.Linear`) onto
``scalars + gates + gated``. The node input :math:`|v_i| \oplus v_i \oplus (x_i - \bar x)
\oplus a_i` (``1x0e + 2x1o`` plus scalar attributes) is embedded by a
:class:`~equidyn.o3.Linear`; the readout is a :class:`~equidyn.o3.Linear` onto one ``1o``
vector :math:`\delta_i` and the model returns :math:`x_i + \delta_i`, which is E(3)- and
permutation-equivariant. Published charged N-body test MSE (EGNN paper, table 2): 0.0155.

With ``predict_velocity=True`` the readout gets a second ``1o`` output :math:`u_i` (its own
:class:`~equidyn.o3.Linear` of the last features) and :meth:`TFN.forward_state` also returns
the velocity :math:`v_i' = v_i + u_i`. Its weights start at zero, so :math:`v_i' = v_i`
exactly at initialisation; :math:`u_i` is a translation-invariant ``1o`` vector, so
:math:`v'` is O(3)-equivariant and translation invariant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from equidyn._deprecation import renamed_arguments
from equidyn.models.blocks import RadialWeightedConvolution, gate_irreps
from equidyn.models.registry import register_model
from equidyn.models.steerable import (
    STEERABLE_RENAMED_ARGUMENTS,
    PointDynamicsTrunk,
    resolve_hidden_irreps,
)
from equidyn.nn import Gate
from equidyn.o3 import Irrep, Irreps, Linear

__all__ = ["TFN", "TFNLayer", "default_hidden_irreps"]


@renamed_arguments(hidden_features="num_features", lmax_hidden="l_max")
def default_hidden_irreps(num_features: int, l_max: int) -> Irreps:
    """``num_features`` channels split evenly over ``0e, 1o, 2e, ...`` up to ``l_max``
    (parity :math:`(-1)^l`, at least one channel each).

    >>> default_hidden_irreps(64, 1)
    32x0e+32x1o
    >>> default_hidden_irreps(64, 2)
    21x0e+21x1o+21x2e
    """
    if num_features < 1 or l_max < 0:
        raise ValueError(f"need num_features >= 1 and l_max >= 0, got {num_features}, {l_max}")
    k = max(1, num_features // (l_max + 1))
    return Irreps([(k, Irrep(l, (-1) ** l)) for l in range(l_max + 1)])


class TFNLayer(nn.Module):
    """One TFN layer: convolution, self-interaction, gate, residual (module docstring).

    >>> from equidyn.models.steerable import neighbour_index
    >>> layer = TFNLayer("4x0e + 2x1o", "1x0e + 1x1o + 1x2e", radial_dim=5)
    >>> h, y, rad = torch.randn(2, 3, 10), torch.randn(2, 3, 2, 9), torch.randn(2, 3, 2, 5)
    >>> layer(h, y, rad, neighbour_index(3)).shape
    torch.Size([2, 3, 10])
    """

    def __init__(
        self,
        hidden_irreps: Irreps | str,
        irreps_sh: Irreps | str,
        radial_dim: int,
        *,
        radial_hidden: int = 32,
    ) -> None:
        super().__init__()
        hidden = Irreps(hidden_irreps)
        scalars, gates, gated = gate_irreps(hidden)
        self.gate = Gate(scalars, nn.functional.silu, gates, torch.sigmoid, gated)
        keep = [ir for _, ir in hidden]
        self.conv = RadialWeightedConvolution(
            hidden, irreps_sh, keep, [radial_dim, radial_hidden, radial_hidden]
        )
        self.lin_conv = Linear(self.conv.irreps_out, self.gate.irreps_in)
        self.lin_self = Linear(hidden, self.gate.irreps_in, biases=True)

    def forward(self, h: Tensor, y: Tensor, radial: Tensor, index: Tensor) -> Tensor:
        """``h`` (batch, n, hidden), ``y`` (batch, n, n − 1, sh), ``radial``
        (batch, n, n − 1, radial_dim) → (batch, n, hidden)."""
        c = self.conv.edge_messages(h[:, index], y, radial)  # [batch, n, n - 1, conv.out]
        c = c.mean(dim=2)  # [batch, n, conv.irreps_out.dim]
        return h + self.gate(self.lin_conv(c) + self.lin_self(h))


@register_model(kind="particle")
class TFN(PointDynamicsTrunk):
    """TFN for particle dynamics: ``TFN(pos, vel, node_attr, edge_attr) -> positions``.

    Args:
        num_features: channels of the hidden features, split evenly over
            ``l = 0 .. l_max`` (:func:`default_hidden_irreps`) unless ``hidden_irreps``.
        num_layers: convolution layers.
        node_attr_dim: scalar node attributes per particle.
        edge_attr_dim: scalar attributes per ordered pair (``q_i q_j``: 1).
        l_max: highest ``l`` of the hidden features.
        l_max_sh: highest ``l`` of the filters' spherical harmonics.
        num_basis, r_max: Gaussian radial basis on ``[0, r_max]``.
        radial_hidden: width of the radial MLP (two hidden layers).
        hidden_irreps: explicit hidden irreps (sorted, one block per irrep, with ``0e``).
        readout_init_scale: factor on the initial weights of the readout (small initial
            displacements ``δ_i``).
        predict_velocity: add the velocity output used by :meth:`forward_state` (chained
            rollouts); ``forward`` and the other parameters are unchanged by it.

    >>> model = TFN(num_features=8, num_layers=2, node_attr_dim=0, edge_attr_dim=1)
    >>> model.hidden_irreps
    4x0e+4x1o
    >>> from equidyn.models import ParticleSystem
    >>> q = torch.randint(0, 2, (3, 5, 1)) * 2.0 - 1
    >>> system = ParticleSystem(torch.randn(3, 5, 3), torch.randn(3, 5, 3), q)
    >>> model.predict(system).shape  # the edge attributes: q_i q_j
    torch.Size([3, 5, 3])
    """

    @renamed_arguments(**STEERABLE_RENAMED_ARGUMENTS, lmax_sh="l_max_sh")
    def __init__(
        self,
        num_features: int = 64,
        num_layers: int = 4,
        node_attr_dim: int = 0,
        edge_attr_dim: int = 1,
        *,
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
        hidden = resolve_hidden_irreps(
            hidden_irreps, lambda: default_hidden_irreps(num_features, l_max)
        )
        self._build(
            lambda hid, sh, radial: TFNLayer(hid, sh, radial, radial_hidden=radial_hidden),
            hidden,
            num_layers,
            l_max_sh=l_max_sh,
            num_basis=num_basis,
            r_max=r_max,
            readout_init_scale=readout_init_scale,
            predict_velocity=predict_velocity,
        )
