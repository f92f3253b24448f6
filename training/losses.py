"""The GAN losses, by phase: G main, G reg (density), D main, D reg (R1).

Elementary losses (values tested by hand):

    g_nonsaturating(fake_logits)       = softplus(-l)                         (B,)
    d_nonsaturating(real, fake)        = softplus(fake) + softplus(-real)     (B,)
    r1_penalty(real_logits, inputs)    = sum over inputs of |d sum(l) / d x|^2 per sample  (B,)
    density_l1(sigma, sigma_jittered)  = mean |a - b|                         scalar

Phase functions run one micro-batch, call `backward()` on their loss scaled by `gain`
(the lazy-regularisation interval, times the micro-batch's share of the global batch) and
return the unscaled loss values for logging. They take a `Nets` (G, D, mesh conditioner)
and a `Schedule` (the blur, pose-swap and rendering-resolution values at the current kimg).

Images are float in [-1, 1], (B, 3, R, R); camera labels (B, 25); FLAME parameters a dict
of (B, n) float tensors as the data set gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from next3d.networks.discriminator import resize_image
from next3d.render.triplane_coords import flame_to_world
from torch_utils.ops import upfirdn2d

from .config import TrainingConfig


# --------------------------------------------------------------------------- elementary losses


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss softplus(-D(G(z))): (B, 1) -> (B,)."""
    return F.softplus(-fake_logits).flatten()


def d_nonsaturating(real_logits: Optional[torch.Tensor], fake_logits: Optional[torch.Tensor]) -> torch.Tensor:
    """Discriminator loss softplus(D(fake)) + softplus(-D(real)): (B, 1), (B, 1) -> (B,); either may be None."""
    parts = []
    if fake_logits is not None:
        parts.append(F.softplus(fake_logits).flatten())
    if real_logits is not None:
        parts.append(F.softplus(-real_logits).flatten())
    return sum(parts)


def r1_penalty(real_logits: torch.Tensor, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-sample squared gradient norm of sum(real_logits) w.r.t. `inputs` (each (B, ...),
    requires_grad), summed over the inputs: (B,). Differentiable (create_graph)."""
    grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=list(inputs), create_graph=True,
                                only_inputs=True)
    return sum(g.square().flatten(1).sum(1) for g in grads)


def density_l1(sigma: torch.Tensor, sigma_jittered: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of raw densities at points and jittered points (scalar)."""
    return (sigma - sigma_jittered).abs().mean()


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur (B, C, H, W) with a normalised Gaussian of `sigma` pixels (EG3D: taps over ±floor(3σ)); σ <= 0: as is."""
    blur_size = int(np.floor(sigma * 3))
    if blur_size <= 0:
        return img
    x = torch.arange(-blur_size, blur_size + 1, device=img.device, dtype=torch.float32)
    f = x.div(sigma).square().neg().exp2()
    return upfirdn2d.filter2d(img, f / f.sum())


def downsample_real(img: torch.Tensor, size: int) -> torch.Tensor:
    """The real `image_raw`: the real image resized (antialiased bilinear) to the neural rendering resolution."""
    return resize_image(img, size)


# --------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Schedule:
    """Values of the faded quantities at one point of training."""

    blur_sigma: float
    """Blur σ of D's image inputs (pixels)."""
    swap_prob: float
    """Probability that the mapping sees another sample's camera label."""
    neural_rendering_resolution: int
    """Side of the volume-rendered image."""


def schedule_at(cfg: TrainingConfig, cur_nimg: int, initial_resolution: int) -> Schedule:
    """The fades of design §8 at `cur_nimg` images shown."""
    kimg = cur_nimg / 1000.0
    blur = 0.0
    if cfg.blur_fade_kimg > 0:
        blur = max(1.0 - kimg / cfg.blur_fade_kimg, 0.0) * cfg.blur_init_sigma
    swap = cfg.gpc_reg_prob
    if cfg.gpc_reg_fade_kimg > 0:
        alpha = min(kimg / cfg.gpc_reg_fade_kimg, 1.0)
        swap = (1.0 - alpha) * 1.0 + alpha * cfg.gpc_reg_prob
    res = initial_resolution
    final = cfg.neural_rendering_resolution_final
    if final is not None:
        alpha = min(kimg / cfg.neural_rendering_resolution_fade_kimg, 1.0) if cfg.neural_rendering_resolution_fade_kimg > 0 else 1.0
        res = int(np.rint(initial_resolution * (1 - alpha) + final * alpha))
    return Schedule(blur_sigma=blur, swap_prob=swap, neural_rendering_resolution=res)


# --------------------------------------------------------------------------- networks in one place


@dataclass
class Nets:
    """The trained networks of one process and how D's inputs are built."""

    G: torch.nn.Module
    D: torch.nn.Module
    conditioner: Optional[object]
    """`training.mesh_condition.MeshConditioner` or None (published D)."""
    cfg: TrainingConfig
    force_fp32: bool = False
    codes: Optional[torch.nn.Module] = None
    """Per-item latent codes of the reconstruction warm start (`training.warmup.LatentCodes`)."""
    perceptual: Optional[torch.nn.Module] = None
    """ST-LPIPS of the warm start (None = L1 only)."""


@dataclass
class MicroBatch:
    """One micro-batch: real items and the fakes' conditioning (drawn from random items)."""

    real_img: torch.Tensor          # (b, 3, R, R) float in [-1, 1]
    real_c: torch.Tensor            # (b, 25)
    real_flame: Dict[str, torch.Tensor]
    gen_z: torch.Tensor             # (b, z_dim)
    gen_c: torch.Tensor             # (b, 25)
    gen_flame: Dict[str, torch.Tensor]
    real_idx: Optional[torch.Tensor] = None  # (b,) int64 data set indices of the real items


def swap_conditioning(c: torch.Tensor, prob: float) -> torch.Tensor:
    """Generator pose conditioning: each row replaced by its neighbour's (roll 1) with probability `prob`."""
    if prob <= 0:
        return c
    swapped = torch.roll(c, 1, 0)
    return torch.where(torch.rand((c.shape[0], 1), device=c.device) < prob, swapped, c)


def run_G(nets: Nets, z: torch.Tensor, c: torch.Tensor, flame: Mapping[str, torch.Tensor], sched: Schedule,
          update_emas: bool = False) -> Dict[str, torch.Tensor]:
    """Generate with pose-conditioning swap and style mixing -> G.synthesis outputs plus `ws`."""
    G, cfg = nets.G, nets.cfg
    ws = G.mapping(z, swap_conditioning(c, sched.swap_prob), update_emas=update_emas)
    if cfg.style_mixing_prob > 0:
        cutoff = torch.empty([], dtype=torch.int64).random_(1, ws.shape[1])
        cutoff = int(torch.where(torch.rand([]) < cfg.style_mixing_prob, cutoff, torch.full_like(cutoff, ws.shape[1])))
        if cutoff < ws.shape[1]:
            mixed = G.mapping(torch.randn_like(z), c, update_emas=False)
            ws = torch.cat([ws[:, :cutoff], mixed[:, cutoff:]], dim=1)
    kwargs = {"force_fp32": True} if nets.force_fp32 else {}
    out = G.synthesis(ws, c, dict(flame), neural_rendering_resolution=sched.neural_rendering_resolution,
                      update_emas=update_emas, **kwargs)
    out["ws"] = ws
    return out


def run_D(nets: Nets, image: torch.Tensor, image_raw: torch.Tensor, c: torch.Tensor,
          mesh: Optional[torch.Tensor], sched: Schedule) -> torch.Tensor:
    """D logits (B, 1) with the mesh rendering when D has one. As published, the blur of the
    schedule applies to `image` only."""
    image = gaussian_blur(image, sched.blur_sigma)
    kwargs = {"force_fp32": True} if nets.force_fp32 else {}
    return nets.D(image, image_raw, c, image_mesh=mesh, **kwargs)


def _mesh(nets: Nets, flame: Mapping[str, torch.Tensor], c: torch.Tensor) -> Optional[torch.Tensor]:
    return None if nets.conditioner is None else nets.conditioner(flame, c)


# --------------------------------------------------------------------------- phases


def g_main(nets: Nets, mb: MicroBatch, sched: Schedule, gain: float) -> Dict[str, float]:
    """G main: non-saturating loss of D on fakes; backward with `gain`."""
    out = run_G(nets, mb.gen_z, mb.gen_c, mb.gen_flame, sched)
    logits = run_D(nets, out["image"], out["image_raw"], mb.gen_c, _mesh(nets, mb.gen_flame, mb.gen_c), sched)
    loss = g_nonsaturating(logits)
    loss.mean().mul(gain).backward()
    return {"G/loss": float(loss.detach().mean()), "G/fake_score": float(logits.detach().mean())}


def density_points(nets: Nets, flame: Mapping[str, torch.Tensor], batch: int, device) -> torch.Tensor:
    """Points for the density regulariser (B, M, 3), world units: uniform in [-1, 1]^3 (published)
    and a share at jittered driving-mesh vertices."""
    cfg = nets.cfg
    total = cfg.density_reg_points
    near = int(round(total * cfg.density_reg_mesh_fraction))
    pts = [torch.rand((batch, total - near, 3), device=device) * 2 - 1]
    if near > 0:
        with torch.no_grad():
            verts = flame["vertices"] if "vertices" in flame else nets.G.flame(**dict(flame)).vertices
            verts = flame_to_world(verts)
        idx = torch.randint(0, verts.shape[1], (batch, near), device=device)
        on_mesh = torch.gather(verts, 1, idx[..., None].expand(-1, -1, 3))
        pts.append(on_mesh + torch.randn_like(on_mesh) * 0.02)
    return torch.cat(pts, dim=1)


def g_reg(nets: Nets, mb: MicroBatch, sched: Schedule, gain: float) -> Dict[str, float]:
    """G reg: density regularisation, L1 between sigma at points and at points + N(0, p_dist)."""
    cfg, G = nets.cfg, nets.G
    ws = G.mapping(mb.gen_z, swap_conditioning(mb.gen_c, sched.swap_prob), update_emas=False)
    # One FLAME evaluation serves the points near the mesh and the synthesis.
    vertices, landmarks = G.head_mesh(dict(mb.gen_flame))
    mesh = {"vertices": vertices, "landmarks": landmarks}
    pts = density_points(nets, mesh, ws.shape[0], ws.device)
    jittered = pts + torch.randn_like(pts) * cfg.density_reg_p_dist
    kwargs = {"force_fp32": True} if nets.force_fp32 else {}
    sigma = G.sample_mixed(torch.cat([pts, jittered], dim=1), ws, mesh, **kwargs)["sigma"]
    a, b = sigma[:, :pts.shape[1]], sigma[:, pts.shape[1]:]
    loss = density_l1(a, b) * cfg.density_reg
    loss.mul(gain).backward()
    return {"G/density_reg": float(loss.detach())}


def d_main(nets: Nets, mb: MicroBatch, sched: Schedule, gain: float) -> Dict[str, float]:
    """D main: softplus(D(fake)) + softplus(-D(real)); fakes update G's w_avg (update_emas)."""
    with torch.no_grad():
        out = run_G(nets, mb.gen_z, mb.gen_c, mb.gen_flame, sched, update_emas=True)
    fake_logits = run_D(nets, out["image"], out["image_raw"], mb.gen_c, _mesh(nets, mb.gen_flame, mb.gen_c), sched)
    real_raw = downsample_real(mb.real_img, sched.neural_rendering_resolution)
    real_logits = run_D(nets, mb.real_img, real_raw, mb.real_c, _mesh(nets, mb.real_flame, mb.real_c), sched)
    loss = d_nonsaturating(real_logits, fake_logits)
    loss.mean().mul(gain).backward()
    return {"D/loss": float(loss.detach().mean()), "D/real_score": float(real_logits.detach().mean()),
            "D/fake_score": float(fake_logits.detach().mean())}


def d_reg(nets: Nets, mb: MicroBatch, sched: Schedule, gain: float) -> Dict[str, float]:
    """D reg: R1 on the real image and image_raw, loss = penalty * gamma / 2."""
    img = mb.real_img.detach().requires_grad_(True)
    raw = downsample_real(mb.real_img, sched.neural_rendering_resolution).detach().requires_grad_(True)
    logits = run_D(nets, img, raw, mb.real_c, _mesh(nets, mb.real_flame, mb.real_c), sched)
    penalty = r1_penalty(logits, [img, raw])
    loss = penalty * (nets.cfg.r1_gamma / 2)
    loss.mean().mul(gain).backward()
    return {"D/r1_penalty": float(penalty.detach().mean())}


PHASES = {"G_main": g_main, "G_reg": g_reg, "D_main": d_main, "D_reg": d_reg}
