"""The mouth region of the front plane: interior coverage and the lip crop box.

Landmarks are the 68 iBUG points (B, 68, 3) in FLAME space (0-based indices):
48-59 outer lip contour (48 and 54 are the mouth corners), 60-67 inner lip contour.

* **Interior coverage.** FLAME's mouth is a hole: rasterised alone, the open mouth
  leaves the inside of the head (or nothing) behind the lips, so the front alpha would
  not count it. `mouth_cap` builds a triangle fan over the inner-lip contour (8 fan
  triangles around the contour's mean), flattened onto the deepest inner-lip point so
  the lips themselves stay in front of it. It is rasterised together with the mesh in
  the front view: pure tensor work on the landmarks' device, no per-sample CPU fill
  and no GPU->CPU sync (the published code flood-filled each sample with OpenCV).
* **Lip crop box** (design §1.6): square, centred on the midpoint of landmarks 48 and
  54, side 1.2 x the larger extent (width or height) of landmarks 48-59, all measured
  in front-plane grid coordinates (`triplane_coords`, slot 0 = XY, grid_sample frame:
  -1 = left column / top row). A box is a tensor (B, 3) = (centre x, centre y, side).
* `crop_mouth` resamples the box to a `size`^2 patch and `paste_mouth` writes a patch
  back; both are affine grid samplings (bilinear, align_corners=False), batched and
  differentiable with respect to the planes (and the box).
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

from next3d.render.triplane_coords import DEFAULT_BOX_WARP, flame_to_world, world_to_plane_coords
from torch_utils.misc import ShapeError, assert_shape

NUM_LANDMARKS = 68
OUTER_LIP = tuple(range(48, 60))
INNER_LIP = tuple(range(60, 68))
MOUTH_CORNERS = (48, 54)
LIP_BOX_SCALE = 1.2
MOUTH_SIZE = 64

# Fan triangles (a, b, centre) over the 8 inner-lip points, indices into the cap's own
# 9 vertices (0..7 = landmarks 60..67, 8 = their mean).
_FAN_FACES = tuple((i, (i + 1) % len(INNER_LIP), len(INNER_LIP)) for i in range(len(INNER_LIP)))


def check_landmarks(landmarks: torch.Tensor, name: str = "landmarks") -> None:
    """Raise ShapeError unless `landmarks` is (B, 68, 3)."""
    assert_shape(landmarks, [None, NUM_LANDMARKS, 3], name)


def mouth_cap(landmarks: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """A triangle fan closing the mouth hole, in FLAME space.

    Args:
        landmarks: (B, 68, 3) FLAME-space landmarks.
    Returns:
        cap_vertices (B, 9, 3): landmarks 60-67 and their mean, all moved to the smallest
            z (deepest, i.e. furthest from a frontal viewer) of the inner-lip points.
        cap_faces (8, 3) int64: fan triangles indexing `cap_vertices`.
    A closed mouth gives a degenerate (zero-area) fan, which covers nothing.
    """
    check_landmarks(landmarks)
    inner = landmarks[:, list(INNER_LIP), :]
    ring = torch.cat([inner, inner.mean(dim=1, keepdim=True)], dim=1)  # (B, 9, 3)
    depth = inner[..., 2].min(dim=1, keepdim=True).values  # (B, 1)
    cap = torch.cat([ring[..., :2], depth[:, :, None].expand(-1, ring.shape[1], 1)], dim=-1)
    faces = torch.tensor(_FAN_FACES, dtype=torch.int64, device=landmarks.device)
    return cap, faces


def lip_box(landmarks: torch.Tensor, box_warp: float = DEFAULT_BOX_WARP) -> torch.Tensor:
    """The square lip crop box (B, 3) = (cx, cy, side) in front-plane grid coordinates.

    Args:
        landmarks: (B, 68, 3) FLAME-space landmarks.
        box_warp: the renderer's box size (grid coordinate = 2 * world / box_warp).
    """
    check_landmarks(landmarks)
    grid = world_to_plane_coords(flame_to_world(landmarks), box_warp)[:, 0]  # (B, 68, 2): slot 0 = XY
    centre = 0.5 * (grid[:, MOUTH_CORNERS[0]] + grid[:, MOUTH_CORNERS[1]])
    lips = grid[:, list(OUTER_LIP)]
    extent = (lips.max(dim=1).values - lips.min(dim=1).values).max(dim=-1).values  # (B,)
    return torch.cat([centre, (LIP_BOX_SCALE * extent)[:, None]], dim=-1)


def _check_box(box: torch.Tensor, batch: int) -> None:
    assert_shape(box, [batch, 3], "box (cx, cy, side)")


def _check_plane(plane: torch.Tensor, name: str) -> None:
    if plane.ndim != 4:
        raise ShapeError(f"{name}: expected 4 dimensions (B, C, H, W), got {plane.ndim} {tuple(plane.shape)}")


def crop_mouth(front_plane: torch.Tensor, box: torch.Tensor, size: int = MOUTH_SIZE) -> torch.Tensor:
    """Resample the box of `front_plane` (B, C, R, R) to a patch (B, C, size, size).

    Patch pixel (i, j) reads the plane at grid coordinates
    `(cx, cy) + side / 2 * ((2 j + 1) / size - 1, (2 i + 1) / size - 1)`: the patch keeps
    the plane's orientation. Outside the plane reads zeros.
    """
    _check_plane(front_plane, "front_plane")
    batch, channels = front_plane.shape[:2]
    _check_box(box, batch)
    theta = _box_theta(box.to(front_plane.dtype))
    grid = F.affine_grid(theta, [batch, channels, size, size], align_corners=False)
    return F.grid_sample(front_plane, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def paste_mouth(front_plane: torch.Tensor, mouth: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Write a patch (B, C, S, S) back into the box of `front_plane` (B, C, R, R).

    The inverse of `crop_mouth`: each plane pixel inside the box reads the patch
    bilinearly; pixels straddling the box edge blend patch and plane by the patch's
    bilinear coverage; pixels outside keep the plane. Returns (B, C, R, R).
    """
    _check_plane(front_plane, "front_plane")
    batch, channels, height, width = front_plane.shape
    assert_shape(mouth, [batch, channels, None, None], "mouth")
    _check_box(box, batch)
    inv = _box_theta_inverse(box.to(front_plane.dtype))
    grid = F.affine_grid(inv, [batch, channels, height, width], align_corners=False)
    ones = torch.ones_like(mouth[:, :1])
    # Sample patch and coverage together so they share one set of bilinear weights.
    both = F.grid_sample(torch.cat([mouth, ones], dim=1), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)
    pasted, coverage = both[:, :channels], both[:, channels:]
    return front_plane * (1.0 - coverage) + pasted


def _box_theta(box: torch.Tensor) -> torch.Tensor:
    """Affine (B, 2, 3) from patch coordinates [-1, 1]^2 to plane grid coordinates."""
    half = 0.5 * box[:, 2]
    zero = torch.zeros_like(half)
    return torch.stack([
        torch.stack([half, zero, box[:, 0]], dim=-1),
        torch.stack([zero, half, box[:, 1]], dim=-1),
    ], dim=1)


def _box_theta_inverse(box: torch.Tensor) -> torch.Tensor:
    """Affine (B, 2, 3) from plane grid coordinates to patch coordinates."""
    inv_half = 2.0 / box[:, 2]
    zero = torch.zeros_like(inv_half)
    return torch.stack([
        torch.stack([inv_half, zero, -box[:, 0] * inv_half], dim=-1),
        torch.stack([zero, inv_half, -box[:, 1] * inv_half], dim=-1),
    ], dim=1)
