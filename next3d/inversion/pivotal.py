"""Stage 4 — pivotal tuning (PTI): fine-tune the generator around the pivot latent.

With the pivot ws, camera and FLAME fixed, every parameter of a copy of G is tuned so that
the pivot renders the target (loss = ST-LPIPS + face-region L2, as PTI: weights 1, lr 3e-4,
Adam; tuning stops early once the input-view ST-LPIPS falls below `lpips_threshold`, PTI's
0.06). Detail that no latent reaches (a mole, the exact hairline) is recovered by the weights.

**Locality regulariser** (PTI §3.3): every `locality_interval` steps, a random z is mapped
with truncation 0.5 (w_z, all ws) and a latent at distance `alpha` from the pivot towards it
is taken, w_r = w_p + alpha · (w_z − w_p) / ‖w_z − w_p‖ (norm over the whole ws tensor); the
tuned generator must render w_r as the original generator does (same camera and FLAME as the
target): loss += locality_l2 · L2 + locality_lpips · ST-LPIPS of those two renders. It keeps
tuning local: latents near the pivot but not the pivot itself stay what they were. PTI's
values: alpha 30 for 18 ws of 512, weights 0.1 each; here alpha defaults to
30 · sqrt(num_ws · w_dim / (18 · 512)) (the same distance per dimension).

`pivotal_tuning` returns the tuned copy (eval mode, no gradients) and the loss curves; the
generator passed in is left as it was.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from next3d.inversion.losses import ImageLoss, render
from next3d.inversion.target import InversionTarget


@dataclass(frozen=True)
class PivotalConfig:
    """Settings of pivotal tuning."""

    steps: int = 40
    """Adam steps (PTI: 350)."""
    lr: float = 3e-4
    """Learning rate (PTI: 3e-4)."""
    lpips_threshold: float = 0.06
    """Stop once the input-view ST-LPIPS is below this (PTI: 0.06); 0 = never."""
    locality_interval: int = 1
    """Apply the locality regulariser every this many steps; 0 = never."""
    locality_alpha: Optional[float] = None
    """Distance of the regularising latent from the pivot (whole ws); None = PTI's 30 per dimension-scaled."""
    locality_l2: float = 0.1
    """Weight of the locality L2 term (PTI: 0.1)."""
    locality_lpips: float = 0.1
    """Weight of the locality ST-LPIPS term (PTI: 0.1)."""
    seed: int = 0
    """Seeds the regularising latents."""


@dataclass
class PivotalResult:
    """G: the tuned generator (a copy); losses: per-step input-view loss; locality: per applied step."""

    G: torch.nn.Module
    losses: List[float] = field(default_factory=list)
    lpips: List[float] = field(default_factory=list)
    locality: List[float] = field(default_factory=list)
    stopped_early: bool = False


def default_alpha(G: torch.nn.Module) -> float:
    """PTI's alpha (30 for 18 x 512 ws) scaled to G's ws by the square root of the dimension."""
    return 30.0 * math.sqrt(G.num_ws * G.w_dim / (18 * 512))


def locality_latent(G: torch.nn.Module, pivot_w: torch.Tensor, alpha: float, generator: torch.Generator) -> torch.Tensor:
    """w_r (1, num_ws, w_dim) at distance alpha from pivot_w (1, num_ws, w_dim) towards a random mapped z."""
    from next3d.generate import frontal_label

    device = pivot_w.device
    z = torch.randn(1, G.z_dim, generator=generator).to(device)
    with torch.no_grad():
        w_z = G.mapping(z, frontal_label(G, device), truncation_psi=0.5)
    direction = w_z - pivot_w
    return pivot_w + alpha * direction / direction.norm().clamp(min=1e-8)


def pivotal_tuning(G: torch.nn.Module, ws: torch.Tensor, camera: torch.Tensor, flame: Dict[str, torch.Tensor],
                   target: InversionTarget, loss_fn: ImageLoss, config: PivotalConfig = PivotalConfig(),
                   neural_resolution: Optional[int] = None,
                   on_step: Optional[Callable[[Dict[str, float]], None]] = None) -> PivotalResult:
    """Tune a copy of G so that ws renders the target under camera / flame (module docstring)."""
    device = next(G.parameters()).device
    original = G
    original.requires_grad_(False)
    tuned = copy.deepcopy(G)
    tuned.train(False)
    tuned.requires_grad_(True)
    opt = torch.optim.Adam([p for p in tuned.parameters() if p.is_floating_point()], lr=config.lr)
    ws = ws.to(device).detach()
    camera = camera.to(device).detach()
    flame = {k: v.to(device).detach() for k, v in flame.items()}
    image, mask = target.image.to(device), target.mask.to(device)
    alpha = config.locality_alpha if config.locality_alpha is not None else default_alpha(G)
    gen = torch.Generator().manual_seed(config.seed)
    result = PivotalResult(G=tuned)
    for step in range(config.steps):
        pred = render(tuned, ws, camera, flame, neural_resolution)
        parts = loss_fn(pred, image, mask)
        loss = parts["total"].sum()
        lp = float(parts["lpips"].detach().sum())
        if config.lpips_threshold and loss_fn.lpips is not None and lp < config.lpips_threshold:
            result.stopped_early = True
            break
        record = {"total": float(loss.detach()), "lpips": lp}
        if config.locality_interval and step % config.locality_interval == 0:
            w_r = locality_latent(original, ws, alpha, gen)
            with torch.no_grad():
                ref = render(original, w_r, camera, flame, neural_resolution)
            new = render(tuned, w_r, camera, flame, neural_resolution)
            reg = config.locality_l2 * (new - ref).square().mean()
            if loss_fn.lpips is not None and config.locality_lpips:
                reg = reg + config.locality_lpips * loss_fn.lpips(new, ref).sum()
            loss = loss + reg
            result.locality.append(float(reg.detach()))
            record["locality"] = result.locality[-1]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        result.losses.append(record["total"])
        result.lpips.append(lp)
        if on_step is not None:
            on_step(record)
    tuned.requires_grad_(False)
    tuned.eval()
    return result


__all__ = ["PivotalConfig", "PivotalResult", "default_alpha", "locality_latent", "pivotal_tuning"]
