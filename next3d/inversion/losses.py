"""What every inversion stage minimises, and how it renders: `ImageLoss`, `render`, noise terms.

Image loss between a render `x` and the target `y` (both (B, 3, R, R) in [-1, 1]) with a
face-region weight `m` (B, 1, R, R) in [0, 1]:

    loss = lpips_weight · ST-LPIPS_vgg(x, y)  +  l2_weight · Σ m (x − y)² / (3 Σ m)

ST-LPIPS is the project's own module (`next3d.perceptual.STLPIPS`, weights from the
`stlpips-pytorch` package) at the image's own resolution (PTI resizes to 256² first; at
64-128² on a CPU that would only cost time). Without the weights (`lpips=None`) the loss is
the masked L2 alone, which the tests use.

Noise regularisation (as StyleGAN2's projector): for each optimised per-pixel noise map n
(H, W), repeatedly halved by 2x2 averaging down to 8x8, the squared mean of n · roll(n, 1)
along x and along y — it keeps the maps white so the latent, not the noise, explains the
face; `normalise_noise` brings each map back to zero mean and unit variance after a step.

`render` is the one forward pass used by every stage: deterministic ray samples
(`next3d.generate.deterministic_rays`), constant noise, optional neural-rendering
resolution; it returns the full-resolution image (B, 3, R, R).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional

import torch
import torch.nn.functional as F

from torch_utils.misc import assert_shape


@dataclass(frozen=True)
class LossWeights:
    """Weights of the image loss terms."""

    lpips: float = 1.0
    """Weight of ST-LPIPS (VGG) between render and target (PTI: 1)."""
    l2: float = 1.0
    """Weight of the face-region pixel L2 (PTI: 1; here masked to the face)."""


class ImageLoss(torch.nn.Module):
    """loss(x, y, mask) -> dict(total (B,), lpips (B,), l2 (B,)) (module docstring).

    lpips: an `STLPIPS` module (frozen) or None for L2 only.
    """

    def __init__(self, lpips: Optional[torch.nn.Module], weights: LossWeights = LossWeights()):
        super().__init__()
        self.lpips = lpips
        self.weights = weights

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        assert_shape(x, [None, 3, None, None], "render")
        assert_shape(y, list(x.shape), "target")
        if mask is None:
            mask = torch.ones_like(x[:, :1])
        assert_shape(mask, [x.shape[0], 1, x.shape[2], x.shape[3]], "mask")
        sq = (x - y).square() * mask
        l2 = sq.sum(dim=(1, 2, 3)) / (3.0 * mask.sum(dim=(1, 2, 3)).clamp(min=1.0))
        if self.lpips is not None and self.weights.lpips:
            lp = self.lpips(x, y)
        else:
            lp = torch.zeros_like(l2)
        total = self.weights.l2 * l2 + self.weights.lpips * lp
        return {"total": total, "lpips": lp, "l2": l2}


def default_lpips(device="cpu") -> Optional[torch.nn.Module]:
    """ST-LPIPS VGG with the shipped weights on `device`, or None when `stlpips-pytorch` is absent."""
    from next3d.perceptual import STLPIPS, PerceptualError

    try:
        return STLPIPS("vgg").to(device)
    except PerceptualError:
        return None


def render(G: torch.nn.Module, ws: torch.Tensor, camera: torch.Tensor, flame: Mapping[str, torch.Tensor],
           neural_resolution: Optional[int] = None, noise_mode: str = "const") -> torch.Tensor:
    """ws (B, num_ws, w_dim), camera (B, 25), FLAME parameters (B, k) -> image (B, 3, R, R) in ~[-1, 1]."""
    from next3d.generate import deterministic_rays

    assert_shape(ws, [None, G.num_ws, G.w_dim], "ws")
    assert_shape(camera, [ws.shape[0], 25], "camera")
    with deterministic_rays(G):
        out = G.synthesis(ws, camera, dict(flame), neural_rendering_resolution=neural_resolution,
                          noise_mode=noise_mode)
    return out["image"]


@contextlib.contextmanager
def mesh_gradients(G: torch.nn.Module):
    """Within the block, gradients of G's renders reach the FLAME mesh through the neural-texture
    lookup (`next3d.render.texture_planes`, uv_gradients); the published model detaches it."""
    builder = G.texture_planes
    saved = builder.uv_gradients
    builder.uv_gradients = True
    try:
        yield
    finally:
        builder.uv_gradients = saved


def noise_buffers(G: torch.nn.Module) -> List[torch.Tensor]:
    """The `noise_const` buffers (H, W) of G's synthesis layers that add noise (in module order)."""
    bufs = []
    for module in G.modules():
        buf = getattr(module, "noise_const", None)
        if isinstance(buf, torch.Tensor) and getattr(module, "use_noise", True):
            bufs.append(buf)
    return bufs


def noise_regularisation(maps: List[torch.Tensor]) -> torch.Tensor:
    """Σ over maps and scales of the squared mean autocorrelation at a one-pixel shift (module docstring)."""
    if not maps:
        return torch.zeros(())
    total = maps[0].new_zeros(())
    for n in maps:
        x = n[None, None]
        while True:
            total = total + (x * torch.roll(x, 1, dims=3)).mean().square() + (x * torch.roll(x, 1, dims=2)).mean().square()
            if x.shape[2] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total


@torch.no_grad()
def normalise_noise(maps: List[torch.Tensor]) -> None:
    """In place: every map to zero mean and unit standard deviation."""
    for n in maps:
        n.sub_(n.mean()).div_(n.square().mean().sqrt().clamp(min=1e-8))


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR (B,) in dB of images in [-1, 1] (peak-to-peak 2), both clamped to [-1, 1]."""
    mse = (x.clamp(-1, 1) - y.clamp(-1, 1)).square().mean(dim=(1, 2, 3)).clamp(min=1e-10)
    return 10.0 * torch.log10(4.0 / mse)


__all__ = ["LossWeights", "ImageLoss", "default_lpips", "render", "mesh_gradients", "noise_buffers", "noise_regularisation",
           "normalise_noise", "psnr"]
