"""Tri-plane coordinate conventions, written once: FLAME space -> world -> plane grids.

* FLAME space: metres, y up, z towards the viewer, x to the subject's left.
* World (the volume renderer's space): `world = FLAME_TO_WORLD_SCALE * (x, y + FLAME_Y_OFFSET, z)`.
* Planes, in the renderer's slot order (EG3D's): slot 0 = XY (front), slot 1 = XZ (top),
  slot 2 = ZY (side). A world point p lands in slot k at grid coordinates
  `2 * (p[a_k], p[b_k]) / box_warp` with (a_k, b_k) = (x, y), (x, z), (z, y). Grid
  coordinates follow `torch.nn.functional.grid_sample` (align_corners=False): the
  first coordinate runs along the plane's width (columns, -1 = left edge), the second
  along its height (rows, -1 = top edge). So row 0 of the XY plane is world y = -box/2
  (below the chin): planes are images in grid_sample's frame, not photographs.

Anything that writes into planes (texture rasterisation) and anything that reads them
(the renderer) must go through these functions; a test pins that they agree.
"""

from __future__ import annotations

import torch

from torch_utils.misc import assert_shape

FLAME_TO_WORLD_SCALE = 2.5
FLAME_Y_OFFSET = 0.01
DEFAULT_BOX_WARP = 1.0

PLANE_NAMES = ("xy", "xz", "zy")
# For each slot: indices of the world axes giving (grid x, grid y).
PLANE_AXES = ((0, 1), (0, 2), (2, 1))


def flame_to_world(points: torch.Tensor) -> torch.Tensor:
    """FLAME-space points (..., 3) -> world points (..., 3)."""
    offset = torch.tensor([0.0, FLAME_Y_OFFSET, 0.0], dtype=points.dtype, device=points.device)
    return FLAME_TO_WORLD_SCALE * (points + offset)


def world_to_flame(points: torch.Tensor) -> torch.Tensor:
    """World points (..., 3) -> FLAME-space points (..., 3)."""
    offset = torch.tensor([0.0, FLAME_Y_OFFSET, 0.0], dtype=points.dtype, device=points.device)
    return points / FLAME_TO_WORLD_SCALE - offset


def world_to_plane_coords(points: torch.Tensor, box_warp: float = DEFAULT_BOX_WARP) -> torch.Tensor:
    """World points (B, N, 3) -> grid coordinates (B, 3, N, 2) for the three plane slots."""
    assert_shape(points, [None, None, 3], "points")
    scaled = points * (2.0 / box_warp)
    return torch.stack([scaled[..., list(ax)] for ax in PLANE_AXES], dim=1)


def sample_planes(planes: torch.Tensor, points: torch.Tensor, box_warp: float = DEFAULT_BOX_WARP,
                  grid_sample=None) -> torch.Tensor:
    """Bilinearly sample tri-planes (B, 3, C, R, R) at world points (B, N, 3) -> (B, 3, N, C).

    Points outside the box read zeros. `grid_sample` defaults to torch's; pass
    `torch_utils.ops.grid_sample_gradfix.grid_sample` where double backward is needed.
    """
    assert_shape(planes, [None, 3, None, None, None], "planes")
    batch, _, channels, height, width = planes.shape
    assert_shape(points, [batch, None, 3], "points")
    if grid_sample is None:
        grid_sample = _torch_grid_sample
    coords = world_to_plane_coords(points, box_warp)  # (B, 3, N, 2)
    out = grid_sample(
        planes.reshape(batch * 3, channels, height, width),
        coords.reshape(batch * 3, 1, -1, 2).to(planes.dtype),
    )  # (B*3, C, 1, N)
    return out.reshape(batch, 3, channels, -1).permute(0, 1, 3, 2)


def _torch_grid_sample(inp: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.grid_sample(inp, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
