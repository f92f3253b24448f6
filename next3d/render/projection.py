"""Projections of 3-D points into the rasteriser's NDC (see `next3d.render.rasterize`).

NDC: x in [-1, 1] left -> right across columns, y in [-1, 1] top -> bottom across rows
(torch `grid_sample`, align_corners=False), z = depth, smaller = nearer.

* `orthographic(points, axes, depth_axis, depth_sign, scale)`: picks two axes as (x, y)
  and one as depth. For tri-plane rasterisation: front view axes=(0, 1), depth = -z (the
  surface nearest a viewer at +z wins), with scale = 2 / box_warp for world points so that
  a texel lands where `triplane_coords.world_to_plane_coords` samples it.
* `orthographic_front_winding(axes, depth_axis, depth_sign)`: the on-screen winding ("ccw"
  or "cw") of outward faces of a mesh wound counter-clockwise seen from outside (FLAME),
  for `rasterize(..., front_winding=...)`. "ccw" when the axis map is right-handed (like a
  camera), "cw" when it is mirrored (the tri-plane front view x -> x, y -> y, depth -z is).
* `perspective_from_label(points, c, near, far)`: the camera of a label (B, 25)
  (`next3d.render.cameras`): NDC x = 2u - 1, y = 2v - 1 with u right and v down in [0, 1],
  z = camera-space depth; w = camera-space depth, for perspective-correct barycentrics.
  Points outside [near, far] in depth come out as NaN, so the rasteriser skips the faces
  that touch them (no clipping).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch

from next3d.render import cameras
from torch_utils.misc import assert_shape


def _check_axes(axes: Sequence[int], depth_axis: int, depth_sign: int) -> Tuple[int, int, int]:
    if len(axes) != 2:
        raise ValueError(f"axes: expected two axis indices (x, y), got {tuple(axes)!r}")
    picked = (int(axes[0]), int(axes[1]), int(depth_axis))
    if sorted(picked) != [0, 1, 2]:
        raise ValueError(f"axes {tuple(axes)} and depth_axis {depth_axis}: expected a permutation of 0, 1, 2")
    if depth_sign not in (1, -1):
        raise ValueError(f"depth_sign: expected 1 or -1, got {depth_sign!r}")
    return picked


def orthographic(points: torch.Tensor, axes: Sequence[int] = (0, 1), depth_axis: int = 2,
                 depth_sign: int = -1, scale: float = 1.0) -> torch.Tensor:
    """Points (B, N, 3) -> NDC (B, N, 3): (scale * p[axes[0]], scale * p[axes[1]],
    depth_sign * scale * p[depth_axis])."""
    assert_shape(points, [None, None, 3], "points")
    ax, ay, ad = _check_axes(axes, depth_axis, depth_sign)
    if not scale > 0:
        raise ValueError(f"scale: expected a positive number, got {scale!r}")
    return torch.stack([points[..., ax], points[..., ay], depth_sign * points[..., ad]], dim=-1) * scale


def orthographic_front_winding(axes: Sequence[int] = (0, 1), depth_axis: int = 2, depth_sign: int = -1) -> str:
    """"ccw" or "cw": how outward faces of a counter-clockwise-from-outside mesh appear on screen."""
    ax, ay, ad = _check_axes(axes, depth_axis, depth_sign)
    mat = torch.zeros(3, 3, dtype=torch.float64)
    mat[0, ax] = 1.0
    mat[1, ay] = 1.0
    mat[2, ad] = float(depth_sign)
    return "ccw" if float(torch.det(mat)) > 0 else "cw"


def perspective_from_label(points: torch.Tensor, c: torch.Tensor, near: float = 0.1,
                           far: float = 10.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """World points (B, N, 3) seen by the cameras of labels c (B, 25).

    Returns (ndc (B, N, 3), w (B, N)): ndc = (2u - 1, 2v - 1, depth) and w = depth, the
    camera-space z (positive in front). Points whose depth is outside [near, far] get NaN
    NDC, so faces touching them are skipped by the rasteriser.
    """
    assert_shape(points, [None, None, 3], "points")
    assert_shape(c, [points.shape[0], 25], "camera label c")
    if not 0 < near < far:
        raise ValueError(f"near, far: expected 0 < near < far, got near={near}, far={far}")
    uvz = cameras.project(points, c.to(points.dtype))
    depth = uvz[..., 2]
    ndc = torch.cat([2 * uvz[..., :2] - 1, depth[..., None]], dim=-1)
    inside = (depth >= near) & (depth <= far)
    ndc = torch.where(inside[..., None], ndc, torch.full_like(ndc, float("nan")))
    return ndc, depth
