"""Exponential moving average of the generator (G_ema), as in StyleGAN2/EG3D.

    ema_nimg = ema_kimg * 1000, capped at cur_nimg * ema_rampup during the ramp-up
    beta     = 0.5 ** (batch / ema_nimg)      (half-life of ema_nimg images)
    p_ema    = p + (p_ema - p) * beta          (parameters); buffers are copied
"""

from __future__ import annotations

from typing import Optional

import torch


def ema_beta(batch: int, cur_nimg: int, ema_kimg: float, ema_rampup: Optional[float]) -> float:
    """Decay per step after `cur_nimg` images with global batch `batch`."""
    ema_nimg = ema_kimg * 1000.0
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """G_ema parameters <- lerp(G, G_ema, beta); buffers copied from G (same names and shapes)."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b.detach())
