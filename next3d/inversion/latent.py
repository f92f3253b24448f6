"""Stage 2 — latent inversion: the ws that make G render the target under its fitted camera and FLAME.

Space (`LatentConfig.space`):

* ``"w"``: one w (1, w_dim) broadcast to all num_ws ws (the mapping network's own output form);
* ``"w+"``: one w for the eg3d ws (static tri-plane, mouth, blending, super-resolution) and a
  free w per texture ws (ws[:, num_ws_eg3d:], the UV-texture generator), each starting at w —
  the texture is where a person's detail lives and where W alone is too tight.

Optimisation (the StyleGAN2 projector's schedule, which PTI uses for its pivot): start at w_avg
(the mean of `avg_samples` mapped z under the frontal conditioning camera), Adam (β 0.9, 0.999)
with the learning rate ramped up over the first `lr_rampup` of the steps and down by a cosine
over the last `lr_rampdown`; Gaussian noise of scale `initial_noise · w_std · max(0, 1 - t /
noise_ramp)²` is added to w during the first part; loss = the image loss (`losses.ImageLoss`:
ST-LPIPS + face-region L2) + `noise_weight` · noise regularisation of the per-pixel noise maps,
which are optimised too when `optimise_noise` (and renormalised after every step).

`invert_latent` returns the pivot ws (1, num_ws, w_dim) and the loss curve. When noise maps
are optimised they are G's `noise_const` buffers, changed in place (they belong to the avatar).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from next3d.inversion.losses import ImageLoss, noise_buffers, noise_regularisation, normalise_noise, render
from next3d.inversion.target import InversionTarget

SPACES = ("w", "w+")


@dataclass(frozen=True)
class LatentConfig:
    """Settings of the latent inversion."""

    steps: int = 100
    """Adam steps (PTI: 450 at 512² on a GPU; here fewer, with a larger learning rate)."""
    lr: float = 0.02
    """Peak learning rate (PTI: 5e-3 for 450 steps)."""
    space: str = "w"
    """"w" or "w+" (module docstring)."""
    lr_rampup: float = 0.05
    """Fraction of the steps over which the learning rate ramps up from 0."""
    lr_rampdown: float = 0.25
    """Fraction of the steps at the end over which it falls to 0 (cosine)."""
    initial_noise: float = 0.05
    """Scale of the latent noise at step 0, in units of w_std."""
    noise_ramp: float = 0.75
    """Fraction of the steps after which no latent noise is added."""
    noise_weight: float = 1e5
    """Weight of the noise-map regularisation (StyleGAN2's projector: 1e5)."""
    optimise_noise: bool = True
    """Optimise the generator's constant noise maps with the latent."""
    avg_samples: int = 2000
    """z samples for w_avg and w_std."""
    seed: int = 0
    """Seeds the z samples and the latent noise."""


@dataclass
class LatentResult:
    """ws (1, num_ws, w_dim) detached; losses: per-step image loss (total) and its parts."""

    ws: torch.Tensor
    losses: List[float] = field(default_factory=list)
    lpips: List[float] = field(default_factory=list)
    l2: List[float] = field(default_factory=list)


@torch.no_grad()
def w_statistics(G: torch.nn.Module, samples: int = 2000, seed: int = 0):
    """(w_avg (1, w_dim), w_std scalar): mean and RMS distance of mapped z under the frontal camera."""
    from next3d.generate import frontal_label

    device = next(G.parameters()).device
    z = torch.randn(samples, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    c = frontal_label(G, device).expand(samples, -1)
    w = G.mapping(z, c)[:, 0]
    w_avg = w.mean(0, keepdim=True)
    w_std = float(((w - w_avg).square().sum(1).mean()) ** 0.5)
    return w_avg, w_std


def expand_ws(G: torch.nn.Module, w: torch.Tensor, texture: Optional[torch.Tensor]) -> torch.Tensor:
    """w (1, w_dim) [+ texture ws (1, num_ws - num_ws_eg3d, w_dim)] -> ws (1, num_ws, w_dim)."""
    eg3d = w[:, None].expand(-1, G.num_ws_eg3d, -1)
    if texture is None:
        tex = w[:, None].expand(-1, G.num_ws - G.num_ws_eg3d, -1)
    else:
        tex = texture
    return torch.cat([eg3d, tex], dim=1)


def learning_rate(config: LatentConfig, step: int) -> float:
    t = step / max(config.steps, 1)
    ramp = min(1.0, (1.0 - t) / max(config.lr_rampdown, 1e-8))
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / max(config.lr_rampup, 1e-8))
    return config.lr * ramp


def invert_latent(G: torch.nn.Module, target: InversionTarget, loss_fn: ImageLoss, config: LatentConfig = LatentConfig(),
                  neural_resolution: Optional[int] = None, on_step: Optional[Callable[[Dict[str, float]], None]] = None,
                  init_ws: Optional[torch.Tensor] = None) -> LatentResult:
    """Optimise the latent of G against `target` (module docstring). on_step(losses) after each step."""
    if config.space not in SPACES:
        raise ValueError(f"latent space: expected one of {', '.join(SPACES)}, got {config.space!r}")
    device = next(G.parameters()).device
    w_avg, w_std = w_statistics(G, config.avg_samples, config.seed)
    if init_ws is not None:
        w_avg = init_ws[:, 0].to(device).detach()
    w = w_avg.clone().requires_grad_(True)
    params = [w]
    texture = None
    if config.space == "w+":
        texture = w_avg[:, None].expand(-1, G.num_ws - G.num_ws_eg3d, -1).clone().requires_grad_(True)
        params.append(texture)
    maps = noise_buffers(G) if config.optimise_noise else []
    if maps:
        normalise_noise(maps)
        for n in maps:
            n.requires_grad_(True)
        params += maps
    opt = torch.optim.Adam(params, lr=config.lr, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(config.seed + 1)
    camera = target.camera.to(device)
    flame = {k: v.to(device) for k, v in target.flame.items()}
    image, mask = target.image.to(device), target.mask.to(device)
    result = LatentResult(ws=expand_ws(G, w_avg, None).detach())
    G.requires_grad_(False)
    try:
        for step in range(config.steps):
            t = step / max(config.steps, 1)
            scale = w_std * config.initial_noise * max(0.0, 1.0 - t / max(config.noise_ramp, 1e-8)) ** 2
            for group in opt.param_groups:
                group["lr"] = learning_rate(config, step)
            w_noise = torch.randn(w.shape, generator=gen).to(device) * scale
            ws = expand_ws(G, w + w_noise, texture)
            pred = render(G, ws, camera, flame, neural_resolution)
            parts = loss_fn(pred, image, mask)
            loss = parts["total"].sum()
            if maps and config.noise_weight:
                loss = loss + config.noise_weight * noise_regularisation(maps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if maps:
                normalise_noise(maps)
            record = {k: float(v.detach().sum()) for k, v in parts.items()}
            result.losses.append(record["total"])
            result.lpips.append(record["lpips"])
            result.l2.append(record["l2"])
            if on_step is not None:
                on_step(record)
    finally:
        for n in maps:
            n.requires_grad_(False)
    result.ws = expand_ws(G, w.detach(), None if texture is None else texture.detach()).detach()
    return result


__all__ = ["SPACES", "LatentConfig", "LatentResult", "w_statistics", "expand_ws", "learning_rate", "invert_latent"]
