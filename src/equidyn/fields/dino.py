r"""DINo (Yin et al., ICLR 2023): a field decoded by an implicit neural representation whose
code follows a latent ODE, so it forecasts at any time and on any grid.

A field :math:`v_t` is represented by a code :math:`\alpha_t \in \mathbb{R}^d` through a
**multiplicative filter network** (MFN, Fathony et al. 2021) with **amplitude modulation**:

.. math::

    z_1 = g_1(x), \qquad
    z_{l+1} = g_{l+1}(x) \odot \big(W_l z_l + b_l + M_l \alpha_t\big), \qquad
    D_\phi(x; \alpha_t) = W_L z_L + b_L, \qquad g_l(x) = \sin(\Omega_l x + \varphi_l),

each layer's shift :math:`M_l \alpha_t` a linear map of the code. The codes evolve by
:math:`\mathrm d\alpha/\mathrm dt = f_\psi(\alpha)` (an MLP, solved by RK4 with torchdiffeq).

- **Training** (auto-decoding): a code per training trajectory and frame of the training
  horizon is a free parameter, fitted jointly with :math:`\phi` to the observed grid points
  (:math:`\|D_\phi(x; \alpha_t) - v_t(x)\|^2` over the observed :math:`x`), while
  :math:`\psi` fits the ODE flow from :math:`\alpha_0` to the (detached) codes
  :math:`\alpha_t`.
- **Test**: a new trajectory's :math:`\alpha_0` is fitted by a few Adam steps on the observed
  points of its first frame (decoder frozen), unrolled by the ODE to any times and decoded at
  any points (the observed ones, unseen ones, a finer grid).

Tensors: fields ``[trajectories, frames, channels, H, W]`` (as :mod:`equidyn.fields.pde`
makes them); points ``[P, 2]`` in :math:`[0, 1)^2`; decoded values ``[..., P, channels]``.

>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<...>
>>> model = DINo(code_dim=8, channels=1, width=16, layers=2, hidden=32)
>>> coords = grid_coords(16)                              # [256, 2]
>>> model.decode(coords, torch.zeros(3, 8)).shape          # 3 codes -> 3 fields
torch.Size([3, 256, 1])
>>> model.forecast(torch.zeros(3, 8), torch.linspace(0, 1, 5)).shape
torch.Size([3, 5, 8])
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from equidyn._io import atomic_save, load_checkpoint

__all__ = [
    "DINo",
    "DINoFit",
    "LatentDynamics",
    "ModulatedMFN",
    "evaluate_dino",
    "fit_codes",
    "forecast_dino",
    "grid_coords",
    "split_mse",
    "subsampling_mask",
    "train_dino",
]


def grid_coords(size: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The points ``(i / size, j / size)`` of a ``size x size`` grid, row-major ``[size², 2]``.

    >>> grid_coords(2).tolist()
    [[0.0, 0.0], [0.0, 0.5], [0.5, 0.0], [0.5, 0.5]]
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    t = torch.arange(size, dtype=dtype) / size
    return torch.stack(torch.meshgrid(t, t, indexing="ij"), dim=-1).reshape(-1, 2)


def subsampling_mask(size: int, rate: float, seed: int = 0) -> Tensor:
    """A fixed random set of observed points: ``[size, size]`` bool, ``round(rate · size²)`` true.

    >>> int(subsampling_mask(64, 0.05).sum())
    205
    """
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    n = max(1, round(rate * size * size))
    order = torch.randperm(size * size, generator=torch.Generator().manual_seed(seed))
    mask = torch.zeros(size * size, dtype=torch.bool)
    mask[order[:n]] = True
    return mask.reshape(size, size)


class ModulatedMFN(nn.Module):
    """The decoder :math:`D_\\phi(x; \\alpha)`: an MFN with code-shifted layers (see above).

    Args:
        code_dim: size ``d`` of a code.
        channels: values per point.
        width: features of every layer.
        layers: number of filters ``L`` (and of modulated linear layers ``L - 1``).
        max_frequency: the rows of each :math:`\\Omega_l` are ``2π n`` with integer ``n``
            drawn uniformly with ``|n_i| <= max_frequency / L`` and kept fixed, so every filter
            and the decoded field are periodic on the unit square and a product of the ``L``
            filters reaches ``max_frequency`` periods (the phases :math:`\\varphi_l` train).
    """

    def __init__(
        self,
        code_dim: int,
        channels: int = 1,
        width: int = 64,
        layers: int = 3,
        max_frequency: float = 16.0,
        coord_dim: int = 2,
    ) -> None:
        super().__init__()
        if min(code_dim, channels, width, layers, coord_dim) < 1:
            raise ValueError(
                f"code_dim, channels, width, layers, coord_dim must be >= 1, got {code_dim}, "
                f"{channels}, {width}, {layers}, {coord_dim}"
            )
        self.code_dim, self.channels, self.coord_dim = code_dim, channels, coord_dim
        filters = [nn.Linear(coord_dim, width) for _ in range(layers)]
        per_layer = max_frequency / layers
        for f in filters:  # integer frequencies: every filter (so the field) is periodic
            n = torch.randint(-math.ceil(per_layer), math.ceil(per_layer) + 1, f.weight.shape)
            f.weight.data.copy_(2 * math.pi * n.clamp(-per_layer, per_layer).round())
            f.weight.requires_grad_(False)
            nn.init.uniform_(f.bias, -math.pi, math.pi)
        self.filters = nn.ModuleList(filters)
        linears = [nn.Linear(width, width) for _ in range(layers - 1)]
        for lin in linears:  # MFN init: keeps the product's scale across layers
            bound = math.sqrt(6 / width)
            nn.init.uniform_(lin.weight, -bound, bound)
        self.linears = nn.ModuleList(linears)
        self.modulations = nn.ModuleList(
            nn.Linear(code_dim, width, bias=False) for _ in range(layers - 1)
        )
        self.out = nn.Linear(width, channels)

    def forward(self, coords: Tensor, codes: Tensor) -> Tensor:
        """``coords [P, coord_dim]`` (or ``[..., P, coord_dim]``), ``codes [..., code_dim]``
        -> values ``[..., P, channels]``."""
        if coords.shape[-1] != self.coord_dim:
            raise ValueError(f"coords must end in {self.coord_dim}, got {tuple(coords.shape)}")
        if codes.shape[-1] != self.code_dim:
            raise ValueError(
                f"codes must end in code_dim={self.code_dim}, got {tuple(codes.shape)}"
            )
        z = torch.sin(self.filters[0](coords))  # [..., P, width]
        for filt, lin, mod in zip(self.filters[1:], self.linears, self.modulations):
            shift = mod(codes).unsqueeze(-2)  # [..., 1, width]
            z = torch.sin(filt(coords)) * (lin(z) + shift)
        return self.out(z)  # [..., P, channels]


class LatentDynamics(nn.Module):
    """:math:`f_\\psi`: an MLP ``d -> hidden -> hidden -> d`` with SiLU, the latent ODE's field."""

    def __init__(self, code_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(code_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, code_dim),
        )  # fmt: skip

    def forward(self, t: Tensor, alpha: Tensor) -> Tensor:
        return self.net(alpha)  # [..., code_dim]


class DINo(nn.Module):
    """Decoder :class:`ModulatedMFN` plus latent ODE :class:`LatentDynamics` (see above).

    Args:
        code_dim: size ``d`` of the codes.
        channels: values per point of the field.
        width, layers, max_frequency: of the decoder.
        hidden: width of the dynamics MLP.
    """

    def __init__(
        self,
        code_dim: int = 64,
        channels: int = 1,
        width: int = 64,
        layers: int = 3,
        hidden: int = 256,
        max_frequency: float = 16.0,
    ) -> None:
        super().__init__()
        self.code_dim = code_dim
        self.decoder = ModulatedMFN(code_dim, channels, width, layers, max_frequency)
        self.dynamics = LatentDynamics(code_dim, hidden)

    def decode(self, coords: Tensor, codes: Tensor) -> Tensor:
        """``D_φ(coords; codes)``: ``[P, 2]``, ``[..., d]`` -> ``[..., P, channels]``."""
        return self.decoder(coords, codes)

    def forecast(self, alpha0: Tensor, times: Tensor) -> Tensor:
        """Codes at ``times [T]`` (increasing, ``times[0]`` the time of ``alpha0 [B, d]``) by
        RK4 on the given times: ``[B, T, d]``. Differentiable in ``alpha0`` and ``ψ``."""
        try:
            from torchdiffeq import odeint
        except ImportError as e:  # pragma: no cover - torchdiffeq is the dynamics extra
            raise ImportError("DINo needs torchdiffeq: pip install 'equidyn[dynamics]'") from e
        if alpha0.dim() != 2 or alpha0.shape[-1] != self.code_dim:
            raise ValueError(f"alpha0 must be [B, {self.code_dim}], got {tuple(alpha0.shape)}")
        times = torch.as_tensor(times, dtype=alpha0.dtype, device=alpha0.device)
        if times.dim() != 1 or len(times) < 1 or (times.diff() <= 0).any():
            raise ValueError(f"times must be a strictly increasing 1-D tensor, got {times}")
        if len(times) == 1:
            return alpha0.unsqueeze(1)
        return odeint(self.dynamics, alpha0, times, method="rk4").transpose(0, 1)  # [B, T, d]


def _check_fields(fields: Tensor, name: str = "fields") -> None:
    if fields.dim() != 5 or fields.shape[-1] != fields.shape[-2]:
        raise ValueError(
            f"{name} must be [trajectories, frames, channels, H, W] on a square grid, got "
            f"{tuple(fields.shape)}"
        )
    if not torch.isfinite(fields).all():
        raise ValueError(f"{name} holds NaN or infinite values")


def _check_mask(mask: Tensor, size: int) -> Tensor:
    if mask.shape != (size, size) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool [{size}, {size}] grid, got {mask.dtype} "
                         f"{tuple(mask.shape)}")  # fmt: skip
    if not mask.any():
        raise ValueError("mask observes no grid point")
    return mask.reshape(-1)


def _points(fields: Tensor) -> Tensor:
    """``[N, T, C, H, W]`` -> values at the row-major grid points ``[N, T, H·W, C]``."""
    return fields.flatten(-2).transpose(-1, -2)


def fit_codes(
    model: DINo,
    coords: Tensor,
    values: Tensor,
    steps: int = 300,
    lr: float = 1e-2,
) -> Tensor:
    """Auto-decoding at test time: codes ``[B, d]`` minimising the MSE of
    ``model.decode(coords, codes)`` to ``values [B, P, channels]`` at ``coords [P, 2]``, by
    ``steps`` Adam steps from zero with the model frozen (the best iterate is returned)."""
    if values.dim() != 3 or values.shape[1] != coords.shape[0]:
        raise ValueError(f"values must be [B, {coords.shape[0]}, channels] for the coords given, "
                         f"got {tuple(values.shape)}")  # fmt: skip
    if not torch.isfinite(values).all():
        raise ValueError("values hold NaN or infinite values")
    codes = torch.zeros(values.shape[0], model.code_dim, dtype=values.dtype,
                        device=values.device, requires_grad=True)  # fmt: skip
    opt = torch.optim.Adam([codes], lr=lr)
    best, best_loss = codes.detach().clone(), torch.full((values.shape[0],), math.inf)
    frozen = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps + 1):
            per = ((model.decode(coords, codes) - values) ** 2).mean(dim=(1, 2))  # [B]
            better = per.detach().cpu() < best_loss
            best[better.to(best.device)] = codes.detach()[better.to(best.device)]
            best_loss = torch.minimum(best_loss, per.detach().cpu())
            opt.zero_grad()
            per.sum().backward()
            opt.step()
    finally:
        for p, f in zip(model.parameters(), frozen):
            p.requires_grad_(f)
    return best  # [B, d]


@torch.no_grad()
def _decode_all(model: DINo, coords: Tensor, codes: Tensor, chunk: int = 8192) -> Tensor:
    return torch.cat([model.decode(c, codes) for c in coords.split(chunk)], dim=-2)


def forecast_dino(
    model: DINo,
    first: Tensor,
    mask: Tensor,
    times: Tensor,
    out_size: int | None = None,
    steps: int = 300,
    lr: float = 1e-2,
) -> Tensor:
    """Forecast from a first frame seen on ``mask`` only: fit ``α_0`` on the observed points of
    ``first [B, C, H, H]``, unroll to ``times [T]`` (from 0) and decode on the ``out_size``
    grid (default ``H``). Returns ``[B, T, C, out_size, out_size]``."""
    if first.dim() != 4:
        raise ValueError(f"first must be [B, channels, H, W], got {tuple(first.shape)}")
    _check_fields(first.unsqueeze(1), "first")
    size = first.shape[-1]
    flat = _check_mask(mask, size).to(first.device)
    coords = grid_coords(size, first.dtype).to(first.device)
    values = _points(first.unsqueeze(1))[:, 0]  # [B, H·W, C]
    alpha0 = fit_codes(model, coords[flat], values[:, flat], steps, lr)
    with torch.no_grad():
        codes = model.forecast(alpha0, times)  # [B, T, d]
    n = out_size or size
    pred = _decode_all(model, grid_coords(n, first.dtype).to(first.device), codes)
    return pred.transpose(-1, -2).reshape(*pred.shape[:2], -1, n, n)  # [B, T, C, n, n]


def split_mse(pred: Tensor, truth: Tensor, mask: Tensor | None, train_frames: int) -> dict:
    """MSE of ``pred`` against ``truth`` (both ``[N, T, C, H, W]``) split into In-t (frames
    ``< train_frames``) / Out-t (the rest) and In-s (points of ``mask``) / Out-s (the others);
    keys ``in_t``, ``out_t``, ``in_t_in_s``, ``in_t_out_s``, ``out_t_in_s``, ``out_t_out_s``
    (NaN where a part is empty; ``mask=None``: all points unseen, e.g. a new grid).

    >>> t = torch.zeros(1, 4, 1, 2, 2); p = t.clone(); p[:, 2:] = 1.0
    >>> m = split_mse(p, t, torch.tensor([[True, False], [False, False]]), 2)
    >>> m["in_t"], m["out_t"], m["out_t_in_s"]
    (0.0, 1.0, 1.0)
    """
    if pred.shape != truth.shape or pred.dim() != 5:
        raise ValueError(f"pred and truth must be the same [N, T, C, H, W], got "
                         f"{tuple(pred.shape)} and {tuple(truth.shape)}")  # fmt: skip
    frames = pred.shape[1]
    if not 0 < train_frames <= frames:
        raise ValueError(f"train_frames must be in 1..{frames}, got {train_frames}")
    err = ((pred - truth) ** 2).float()  # [N, T, C, H, W]
    m = torch.zeros(pred.shape[-2:], dtype=torch.bool) if mask is None else mask.cpu()
    m = m.to(err.device)

    def part(frames_: slice, points: Tensor | None) -> float:
        e = err[:, frames_]
        if e.shape[1] == 0:
            return math.nan
        if points is None:
            return float(e.mean())
        if not points.any():
            return math.nan
        return float(e[..., points].mean())

    in_t, out_t = slice(0, train_frames), slice(train_frames, frames)
    return {
        "in_t": part(in_t, None), "out_t": part(out_t, None),
        "in_t_in_s": part(in_t, m), "in_t_out_s": part(in_t, ~m),
        "out_t_in_s": part(out_t, m), "out_t_out_s": part(out_t, ~m),
    }  # fmt: skip


@dataclass
class DINoFit:
    """What :func:`train_dino` returns: the training codes ``[N, T_train, d]`` and the history."""

    codes: Tensor
    history: list[dict[str, float]]
    seconds: float


def train_dino(
    model: DINo,
    fields: Tensor,
    times: Tensor,
    mask: Tensor,
    train_frames: int,
    epochs: int = 300,
    batch_size: int = 8,
    points_per_frame: int = 1024,
    lr: float = 3e-3,
    code_lr: float = 1e-2,
    dynamics_lr: float = 1e-3,
    dynamics_weight: float = 1.0,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    save_every: int = 50,
    epochs_per_call: int | None = None,
) -> DINoFit:
    """Fit ``model`` to training trajectories ``fields [N, T, C, H, H]`` observed on ``mask``.

    Frames ``0..train_frames-1`` (the training horizon) at ``times[:train_frames]`` are used.
    Each step takes ``batch_size`` trajectories and a random ``points_per_frame`` of the
    observed points (all of them when fewer); the loss is the decoder MSE on those points plus
    ``dynamics_weight`` × the MSE of the ODE flow from ``α_0`` to the detached codes. Adam with
    the three learning rates (decoder, codes, dynamics), cosine-decayed over ``epochs``.

    With ``checkpoint`` the state (model, codes, optimiser, generator, history) is saved there
    atomically every ``save_every`` epochs and at the end; a later call with the same path
    resumes from it (``epochs_per_call`` stops this call after that many epochs, for runs
    cut into slices; the schedule is the ``epochs`` one throughout).
    """
    _check_fields(fields)
    n, frames, channels, size, _ = fields.shape
    flat = _check_mask(mask, size)
    if not 1 < train_frames <= frames:
        raise ValueError(f"train_frames must be in 2..{frames} (frames in the data), "
                         f"got {train_frames}")  # fmt: skip
    if len(times) != frames:
        raise ValueError(f"times must have one entry per frame ({frames}), got {len(times)}")
    if channels != model.decoder.channels:
        raise ValueError(f"fields have {channels} channels, the model decodes "
                         f"{model.decoder.channels}")  # fmt: skip
    if epochs < 1 or batch_size < 1 or points_per_frame < 1:
        raise ValueError(f"epochs, batch_size, points_per_frame must be >= 1, got "
                         f"{epochs}, {batch_size}, {points_per_frame}")  # fmt: skip
    param = next(model.parameters())
    coords = grid_coords(size, param.dtype).to(param.device)[flat]  # [P_obs, 2]
    values = _points(fields[:, :train_frames].to(param))[:, :, flat]  # [N, T', P_obs, C]
    t = times[:train_frames].to(param)
    codes = nn.Parameter(torch.zeros(n, train_frames, model.code_dim).to(param))
    opt = torch.optim.Adam([
        {"params": model.decoder.parameters(), "lr": lr},
        {"params": [codes], "lr": code_lr},
        {"params": model.dynamics.parameters(), "lr": dynamics_lr},
    ])  # fmt: skip
    base = [g["lr"] for g in opt.param_groups]
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    start, elapsed = 0, 0.0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.is_file():
        state = load_checkpoint(path)
        model.load_state_dict(state["model"])
        codes.data.copy_(state["codes"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        history, start, elapsed = state["history"], state["epoch"], state["seconds"]

    def save(epoch: int) -> None:
        if path is not None:
            atomic_save({"model": model.state_dict(), "codes": codes.detach(),
                         "optimizer": opt.state_dict(), "generator": gen.get_state(),
                         "history": history, "epoch": epoch, "seconds": elapsed}, path)  # fmt: skip

    t0 = time.perf_counter()
    model.train()
    stop = epochs if epochs_per_call is None else min(epochs, start + epochs_per_call)
    for epoch in range(start, stop):
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        rec_sum = dyn_sum = 0.0
        batches = torch.randperm(n, generator=gen).split(batch_size)
        for idx in batches:
            k = min(points_per_frame, coords.shape[0])
            pts = torch.randperm(coords.shape[0], generator=gen)[:k]
            pred = model.decode(coords[pts], codes[idx])  # [b, T', k, C]
            rec = ((pred - values[idx][:, :, pts]) ** 2).mean()
            target = codes[idx].detach()
            dyn = ((model.forecast(target[:, 0], t) - target) ** 2).mean()
            loss = rec + dynamics_weight * dyn
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec_sum, dyn_sum = rec_sum + float(rec.detach()), dyn_sum + float(dyn.detach())
        history.append({"epoch": epoch + 1, "reconstruction": rec_sum / len(batches),
                        "dynamics": dyn_sum / len(batches)})  # fmt: skip
        if not math.isfinite(history[-1]["reconstruction"] + history[-1]["dynamics"]):
            raise FloatingPointError(f"DINo training diverged at epoch {epoch + 1}: {history[-1]}")
        if (epoch + 1) % save_every == 0:
            save(epoch + 1)
    elapsed += time.perf_counter() - t0
    save(max(stop, start))
    model.eval()
    return DINoFit(codes.detach(), history, elapsed)


def evaluate_dino(
    model: DINo,
    fields: Tensor,
    times: Tensor,
    mask: Tensor,
    train_frames: int,
    steps: int = 300,
    lr: float = 1e-2,
) -> tuple[dict[str, float], Tensor]:
    """Forecast test trajectories ``fields [N, T, C, H, H]`` from their first frame seen on
    ``mask``, score with :func:`split_mse`; returns ``(metrics, forecasts [N, T, C, H, H])``."""
    _check_fields(fields)
    if not 0 < train_frames <= fields.shape[1]:
        raise ValueError(f"train_frames must be in 1..{fields.shape[1]} (frames in the data), "
                         f"got {train_frames}")  # fmt: skip
    if len(times) != fields.shape[1]:
        raise ValueError(f"times must have one entry per frame ({fields.shape[1]}), "
                         f"got {len(times)}")  # fmt: skip
    param = next(model.parameters())
    pred = forecast_dino(model, fields[:, 0].to(param), mask, times.to(param), None, steps, lr)
    return split_mse(pred.cpu(), fields.float().cpu(), mask, train_frames), pred.cpu()
