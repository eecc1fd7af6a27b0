r"""Gaussian-mixture path marginals that meet both end states by construction.

A path distribution from a fixed start :math:`A` to a fixed end :math:`B` over a time
:math:`T` is described by its marginals :math:`q_t`; with :math:`s = t/T`, component
:math:`k` of the mixture is :math:`\mathcal{N}(\mu_k(s), \sigma_k(s)^2 I)` with

.. math::

    \mu_k(s) = (1-s)A + sB + s(1-s)\,f_k(s), \qquad
    \sigma_k(s) = \sqrt{2DT\,s(1-s)}\;e^{g_k(s)},

where :math:`f, g` are one small network of :math:`s`; so :math:`q_0 = \delta_A` and
:math:`q_T = \delta_B` exactly, whatever the weights, and with :math:`f = g = 0` the marginal
is that of the Brownian bridge of diffusion :math:`D`. The weights :math:`w_k` of the
components are learned and constant in time.

The drift that makes an SDE :math:`dx = u_t(x)\,dt + \sqrt{2D}\,dW` have these marginals is
(Fokker–Planck, per component, then averaged with the posterior responsibilities
:math:`r_k(x,t) = w_k q_{k,t}(x) / q_t(x)`)

.. math::

    u_t(x) = \sum_k r_k(x, t)\Big[\dot\mu_k + \Big(\frac{\dot\sigma_k}{\sigma_k}
    - \frac{D}{\sigma_k^2}\Big)(x - \mu_k)\Big],

the probability-flow velocity of the Gaussian plus :math:`D\nabla\log q_t`.

>>> import torch
>>> q = GaussianPathMarginal(torch.zeros(2), torch.ones(2), duration=1.0, diffusion=0.1)
>>> t = torch.tensor([0.0, 0.5, 1.0])
>>> mu, sigma = q.mean_std(t)[:2]
>>> mu[0, 0].tolist(), mu[2, 0].tolist(), sigma[:, 0].tolist()[::2]   # the ends are exact
([0.0, 0.0], [1.0, 1.0], [0.0, 0.0])
"""

from __future__ import annotations

import math

import torch
from torch.func import jvp

from equidyn.paths._checks import check_int, check_positive

__all__ = ["GaussianPathMarginal"]


class GaussianPathMarginal(torch.nn.Module):
    r"""A K-component Gaussian-mixture path marginal from ``start`` to ``end`` (see the
    module).

    Args:
        start, end: the end states :math:`A, B`, ``(d,)`` tensors (any dtype; the module
            follows ``.to()``).
        duration: the path time :math:`T > 0`.
        diffusion: the reference diffusion :math:`D > 0` that sets the bridge-shaped width.
        num_components: :math:`K \ge 1` (several let the paths take different channels).
        hidden: width of the two hidden layers of the network of :math:`s`.
        spread: standard deviation of the random initial offsets :math:`f_k` that break the
            symmetry between components (0 for one component).
    """

    start: torch.Tensor
    end: torch.Tensor

    def __init__(
        self,
        start: torch.Tensor,
        end: torch.Tensor,
        duration: float,
        diffusion: float,
        num_components: int = 1,
        hidden: int = 64,
        spread: float = 0.0,
    ) -> None:
        super().__init__()
        start, end = torch.as_tensor(start), torch.as_tensor(end)
        if start.dim() != 1 or start.shape != end.shape:
            raise ValueError(
                f"start and end must be (d,) tensors of one shape, got {tuple(start.shape)} "
                f"and {tuple(end.shape)}"
            )
        check_positive("duration", duration)
        check_positive("diffusion", diffusion)
        check_int("num_components", num_components)
        self.dim = start.shape[0]
        self.num_components = num_components
        self.duration = float(duration)
        self.diffusion = float(diffusion)
        dtype = torch.get_default_dtype() if not start.is_floating_point() else start.dtype
        self.register_buffer("start", start.to(dtype))
        self.register_buffer("end", end.to(dtype))
        k, d = num_components, self.dim
        self.net = torch.nn.Sequential(
            torch.nn.Linear(1, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(),
            torch.nn.Linear(hidden, k * (d + 1)),
        ).to(dtype)
        with torch.no_grad():  # start as the Brownian bridge, components apart by `spread`
            last = self.net[-1]
            assert isinstance(last, torch.nn.Linear)
            last.weight.mul_(0.01)
            last.bias.zero_()
            offsets = torch.randn(k, d, dtype=dtype) * spread
            last.bias.view(k, d + 1)[:, :d].copy_(offsets * 4.0)  # s(1-s) f peaks at f/4
        self.logits = torch.nn.Parameter(torch.zeros(k, dtype=dtype))

    def _raw(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s (n,) -> f (n, K, d), g (n, K)``."""
        out = self.net(s[:, None] * 2.0 - 1.0).view(-1, self.num_components, self.dim + 1)
        return out[..., : self.dim], out[..., self.dim]

    def _mean_std_of_s(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, g = self._raw(s)
        s_ = s[:, None, None]
        line = (1 - s_) * self.start + s_ * self.end
        mu = line + s_ * (1 - s_) * f  # (n, K, d)
        bridge = torch.sqrt(2 * self.diffusion * self.duration * s * (1 - s)).clamp_min(0)
        sigma = bridge[:, None] * torch.exp(g.clamp(-8.0, 4.0))  # (n, K)
        return mu, sigma

    def weights(self) -> torch.Tensor:
        """The component weights :math:`w_k`, ``(K,)``, summing to 1."""
        return torch.softmax(self.logits, 0)

    def mean_std(
        self, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""At times ``t`` ``(n,)`` in :math:`[0, T]`: ``mu (n, K, d), sigma (n, K)`` and
        their time derivatives ``dmu (n, K, d), dsigma (n, K)`` (forward-mode, exact)."""
        if t.dim() != 1:
            raise ValueError(f"t must be a (n,) tensor of times, got shape {tuple(t.shape)}")
        s = (t / self.duration).to(self.start.dtype)
        if bool(((s < 0) | (s > 1)).any()):
            raise ValueError(f"times must lie in [0, duration={self.duration}], got {t.tolist()}")
        out = jvp(self._mean_std_of_s, (s,), (torch.ones_like(s),))
        (mu, sigma), (dmu, dsigma) = out[0], out[1]
        return mu, sigma, dmu / self.duration, dsigma / self.duration

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s = t / T`` ``(n,)`` -> ``mu (n, K, d), sigma (n, K)``."""
        return self._mean_std_of_s(s)

    def sample(
        self, t: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r"""One reparameterised draw from each component at times ``t`` ``(n,)``:
        ``x (n, K, d)`` (:math:`x = \mu_k + \sigma_k\varepsilon`) and ``eps (n, K, d)``."""
        mu, sigma = self.mean_std(t)[:2]
        eps = torch.randn(mu.shape, dtype=mu.dtype, device=mu.device, generator=generator)
        return mu + sigma[..., None] * eps, eps

    def log_density(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        r""":math:`\log q_t(x)` for ``x (n, d)`` at ``t (n,)``, with ``0 < t < T``."""
        mu, sigma = self.mean_std(t)[:2]
        return torch.logsumexp(self._log_joint(x, mu, sigma), -1)

    def _log_joint(self, x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """``log w_k + log N(x; mu_k, sigma_k^2)``, ``(n, K)``."""
        sq = ((x[:, None, :] - mu) ** 2).sum(-1)
        log_norm = -self.dim * (torch.log(sigma) + 0.5 * math.log(2 * math.pi))
        return torch.log_softmax(self.logits, 0) - sq / (2 * sigma**2) + log_norm

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        r"""The control :math:`u_t(x)` (see the module): ``x (n, d)``, ``t (n,)`` with
        :math:`0 < t < T` -> ``(n, d)``."""
        if x.dim() != 2 or x.shape[-1] != self.dim or x.shape[0] != t.shape[0]:
            raise ValueError(
                f"x must be (n, {self.dim}) with n = len(t) = {t.shape[0]}, got {tuple(x.shape)}"
            )
        mu, sigma, dmu, dsigma = self.mean_std(t)
        resp = torch.softmax(self._log_joint(x, mu, sigma), -1)  # (n, K)
        rate = dsigma / sigma - self.diffusion / sigma**2  # (n, K)
        per_component = dmu + rate[..., None] * (x[:, None, :] - mu)  # (n, K, d)
        return (resp[..., None] * per_component).sum(1)
