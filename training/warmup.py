"""Reconstruction warm start: an auto-decoder phase before the adversarial recipe.

On a data set whose items carry their camera and FLAME parameters (the synthetic set knows
them exactly), the generator can first learn by plain reconstruction: each real item i gets
a latent code z_i (learnt, initialised from N(0, I) like the z that G samples later), and

    G_recon:  loss = l1 * (|G(z_i, c_i, flame_i).image - x_i| + |image_raw - down(x_i)|)
                   + perceptual * ST-LPIPS(image, x_i)      (optionally both resized first)

replaces G's main phase for the first `warmup_kimg` (D trains as usual on fakes from random
z, so it is ready when the adversarial phase takes over). The codes are only training state:
they live in the snapshot, never in G.

    codes = LatentCodes(len(dataset), G.z_dim, seed)        (N, z_dim) parameter
    losses = g_recon(nets, mb, sched, gain)                 uses nets.codes, nets.perceptual
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from torch_utils.misc import assert_shape

from next3d.networks.discriminator import resize_image

from .losses import MicroBatch, Nets, Schedule, downsample_real


class LatentCodes(torch.nn.Module):
    """One learnt z per data set item; `codes(idx)` (b,) int64 -> (b, z_dim) float32."""

    def __init__(self, num_items: int, z_dim: int, seed: int = 0):
        super().__init__()
        if num_items < 1 or z_dim < 1:
            raise ValueError(f"LatentCodes: need num_items >= 1 and z_dim >= 1, got {num_items}, {z_dim}")
        gen = torch.Generator().manual_seed(int(seed) + 7919)  # not the stream of G's or D's weights
        self.weight = torch.nn.Parameter(torch.randn(num_items, z_dim, generator=gen))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        assert_shape(idx, [None], "idx")
        # The range check reads the indices on the host: skipped on CUDA (no sync per step;
        # an out-of-range index raises a device-side assert there anyway).
        if not idx.is_cuda and (int(idx.min()) < 0 or int(idx.max()) >= self.weight.shape[0]):
            raise IndexError(f"LatentCodes: item index out of range 0..{self.weight.shape[0] - 1}")
        return self.weight[idx]


def build_perceptual(net: str, weight: float, device) -> Optional[torch.nn.Module]:
    """ST-LPIPS of the warm start (None when its weight is 0)."""
    if weight <= 0:
        return None
    from next3d.perceptual import STLPIPS
    return STLPIPS(net).to(device)


def visits_per_item(cfg, num_items: int) -> float:
    """How often the warm start shows each of its items on average (codes learn little below a few)."""
    shown = num_items if cfg.warmup_items <= 0 else min(cfg.warmup_items, num_items)
    return cfg.warmup_kimg * 1000 / max(shown, 1)


def in_warmup(cfg, cur_nimg: int) -> bool:
    """True while the reconstruction warm start replaces G's adversarial main phase."""
    return cur_nimg < int(cfg.warmup_kimg * 1000)


def g_recon(nets: Nets, mb: MicroBatch, sched: Schedule, gain: float) -> Dict[str, float]:
    """G recon: reconstruct the real micro-batch from its codes, cameras and FLAME parameters."""
    G, cfg = nets.G, nets.cfg
    if nets.codes is None or mb.real_idx is None:
        raise RuntimeError("G_recon needs the per-item latent codes and the items' indices")
    z = nets.codes(mb.real_idx.to(mb.real_img.device))
    ws = G.mapping(z, mb.real_c)
    kwargs = {"force_fp32": True} if nets.force_fp32 else {}
    out = G.synthesis(ws, mb.real_c, dict(mb.real_flame), neural_rendering_resolution=sched.neural_rendering_resolution,
                      **kwargs)
    assert_shape(out["image"], list(mb.real_img.shape), "G image")
    real_raw = downsample_real(mb.real_img, sched.neural_rendering_resolution)
    l1 = (out["image"] - mb.real_img).abs().mean() + (out["image_raw"] - real_raw).abs().mean()
    loss = cfg.warmup_l1 * l1
    logs = {"G/recon_l1": float(l1.detach())}
    if nets.perceptual is not None:
        fake, real = out["image"], mb.real_img
        if 0 < cfg.warmup_perceptual_res < real.shape[-1]:
            fake, real = (resize_image(x, cfg.warmup_perceptual_res) for x in (fake, real))
        dist = nets.perceptual(fake, real).mean()
        loss = loss + cfg.warmup_perceptual * dist
        logs["G/recon_lpips"] = float(dist.detach())
    loss.mul(gain).backward()
    logs["G/recon"] = float(loss.detach())
    return logs
