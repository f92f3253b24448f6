"""Camera rays through pixel centres, from camera labels.

Conventions (see `next3d.render.cameras`): label `c` (B, 25) = cam2world (OpenCV axes)
+ normalised intrinsics. Pixel (i, j) of an R x R image (row i downwards, column j to
the right) has normalised image coordinates u = (j + 0.5) / R, v = (i + 0.5) / R. Its ray
leaves the camera origin through the camera-space point
((u - cx - s (v - cy) / fy) / fx, (v - cy) / fy, 1) (s = skew, normally 0).

Outputs are flattened row-major: ray index n = i * R + j, so a per-ray tensor (B, R*R, C)
becomes an image with `rays_to_image`.
"""

from __future__ import annotations

from typing import Tuple

import torch

from next3d.render.cameras import split_label
from torch_utils.misc import assert_shape


def pixel_uv(resolution: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised image coordinates (R*R, 2) of the pixel centres, (u, v), row-major."""
    if int(resolution) < 1:
        raise ValueError(f"resolution: expected a positive integer, got {resolution}")
    centres = (torch.arange(resolution, device=device, dtype=dtype) + 0.5) / resolution
    v, u = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)


def make_rays(c: torch.Tensor, resolution: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Rays through the pixel centres of an R x R image for camera labels `c` (B, 25).

    Returns origins (B, R*R, 3) (the camera centres, repeated) and unit directions
    (B, R*R, 3), both in world space.
    """
    assert_shape(c, [None, 25], "camera label")
    cam2world, intr = split_label(c)
    batch = c.shape[0]
    uv = pixel_uv(resolution, device=c.device, dtype=c.dtype)  # (N, 2)
    fx, fy = intr[:, 0, 0, None], intr[:, 1, 1, None]
    cx, cy, skew = intr[:, 0, 2, None], intr[:, 1, 2, None], intr[:, 0, 1, None]
    u, v = uv[None, :, 0], uv[None, :, 1]
    y_cam = (v - cy) / fy
    x_cam = (u - cx - skew * y_cam) / fx
    dirs_cam = torch.stack([x_cam, y_cam, torch.ones_like(x_cam)], dim=-1)  # (B, N, 3)
    dirs = torch.einsum("bij,bnj->bni", cam2world[:, :3, :3], dirs_cam)
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    origins = cam2world[:, None, :3, 3].expand(batch, dirs.shape[1], 3)
    return origins, dirs


def rays_to_image(values: torch.Tensor, resolution: int) -> torch.Tensor:
    """Per-ray values (B, R*R, C) in `make_rays` order -> images (B, C, R, R)."""
    assert_shape(values, [None, resolution * resolution, None], "per-ray values")
    batch, _, channels = values.shape
    return values.permute(0, 2, 1).reshape(batch, channels, resolution, resolution)
