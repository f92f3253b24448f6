"""The mouth region of the front plane: interior coverage and the lip crop box.

Landmarks are the 68 iBUG points (B, 68, 3) in FLAME space (0-based indices):
48-59 outer lip contour (48 and 54 are the mouth corners), 60-67 inner lip contour.

* **Interior coverage.** FLAME's mouth is a hole: rasterised alone, the open mouth
  leaves the inside of the head (or nothing) behind the lips, so the front alpha would
  not count it. `mouth_cap` builds a triangle fan over the inner-lip contour (8 fan
  triangles around the contour's mean), flattened onto the deepest inner-lip point so
  the lips themselves stay in front of it. `texture_planes` rasterises it in the front
  view for alpha only (it never hides the mesh's features): pure tensor work on the
  landmarks' device, no per-sample CPU fill and no GPU->CPU sync (the published code
  flood-filled each sample's alpha with OpenCV).
* **Lip crop box** (design §1.6): square, centred on the midpoint of landmarks 48 and
  54, side 1.2 x the larger extent (width or height) of landmarks 48-59, all measured
  in front-plane grid coordinates (`triplane_coords`, slot 0 = XY, grid_sample frame:
  -1 = left column / top row). A box is a tensor (B, 3) = (centre x, centre y, side).
* **Whole pixels, as published** (Next3D `TriPlaneGenerator.gen_mouth_mask` and its
  crop/paste in `synthesis`): on a plane of R pixels, pixel coordinates are
  (grid + 1) * R / 2 (the published `lm * 128 + 128` at R = 256); the side is
  s = 2 * (int(side_px) // 2) pixels and the box covers rows
  [floor(cy_px - s/2), + s) and columns [floor(cx_px - s/2), + s) (`box_pixels`).
  `crop_mouth` resizes that pixel block to `size`^2 and `paste_mouth` resizes a patch to
  s x s and writes it over the block, both as `F.interpolate(mode='bilinear',
  antialias=True, align_corners=False)` does, batched as per-item resampling matrices
  (no per-sample loop, no GPU->CPU sync). Pixels of the block outside the plane read 0 and
  are not written. Differentiable with respect to the planes and the patch, not the box.
"""

from __future__ import annotations

from typing import Tuple

import torch

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


def box_pixels(box: torch.Tensor, resolution: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Snap boxes (B, 3) to whole pixels of an R x R plane, as published.

    Returns int64 tensors (B,): first row, first column and side s (even, in [2, R]).
    """
    assert_shape(box, [None, 3], "box (cx, cy, side)")
    half_res = resolution / 2.0
    # A float32 grid coordinate carries ~1e-5 px of rounding error: a box built on whole
    # pixels must not floor to the pixel before.
    eps = 1e-4
    side = torch.div(torch.floor(box[:, 2].double() * half_res + eps), 2, rounding_mode="floor").long() * 2
    side = side.clamp(2, resolution - resolution % 2)
    half = (side // 2).double()
    col0 = torch.floor((box[:, 0].double() + 1.0) * half_res - half + eps).long()
    row0 = torch.floor((box[:, 1].double() + 1.0) * half_res - half + eps).long()
    return row0, col0, side


def _resize_matrix(in_len: torch.Tensor, in_off: torch.Tensor, in_total: int, out_len: torch.Tensor,
                   out_off: torch.Tensor, out_total: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, out_total, in_total) weights of a 1-D antialiased bilinear resize per batch item.

    Output elements [out_off, out_off + out_len) read input elements [in_off, in_off + in_len)
    with the weights of `F.interpolate(mode='bilinear', antialias=True,
    align_corners=False)`: a triangle filter of half-width max(scale, 1) input elements
    (scale = in_len / out_len) around (o + 0.5) * scale, normalised over the input block.
    Other rows are zero; input elements outside [0, in_total) are dropped (read as 0).
    """
    device = in_len.device
    scale = (in_len.double() / out_len.double())[:, None, None]  # (B, 1, 1)
    o = torch.arange(out_total, device=device, dtype=torch.float64)[None, :, None] - out_off.double()[:, None, None]
    k = torch.arange(in_total, device=device, dtype=torch.float64)[None, None, :] - in_off.double()[:, None, None]
    centre = (o + 0.5) * scale
    inv_support = torch.where(scale >= 1.0, 1.0 / scale, torch.ones_like(scale))
    # Normalise over the whole block (in_len <= in_total), including any part of it that lies
    # outside the input: those elements read 0, as if the input were zero-padded.
    block_k = torch.arange(in_total, device=device, dtype=torch.float64)[None, None, :]
    norm = (1.0 - ((block_k - centre + 0.5) * inv_support).abs()).clamp_min(0)
    norm = norm.masked_fill(block_k >= in_len.double()[:, None, None], 0).sum(-1, keepdim=True)
    weights = (1.0 - ((k - centre + 0.5) * inv_support).abs()).clamp_min(0)
    in_block = (k >= 0) & (k < in_len.double()[:, None, None])
    out_block = (o >= 0) & (o < out_len.double()[:, None, None])
    weights = torch.where(in_block & out_block, weights / norm.clamp_min(1e-12), torch.zeros_like(weights))
    return weights.to(dtype)


def crop_mouth(front_plane: torch.Tensor, box: torch.Tensor, size: int = MOUTH_SIZE) -> torch.Tensor:
    """Resample the whole-pixel box of `front_plane` (B, C, R, R) to a patch (B, C, size, size).

    As published: `F.interpolate(plane[..., r0:r0+s, c0:c0+s], size, mode='bilinear',
    antialias=True)` with (r0, c0, s) = `box_pixels(box, R)`. The patch keeps the plane's
    orientation.
    """
    _check_plane(front_plane, "front_plane")
    batch, _, height, width = front_plane.shape
    _check_box(box, batch)
    row0, col0, side = box_pixels(box, width)
    if height != width:
        raise ShapeError(f"front_plane: expected a square plane, got {height} x {width}")
    zero = torch.zeros_like(side)
    out_len = torch.full_like(side, size)
    rows = _resize_matrix(side, row0, height, out_len, zero, size, front_plane.dtype)  # (B, size, R)
    cols = _resize_matrix(side, col0, width, out_len, zero, size, front_plane.dtype)
    return rows[:, None] @ front_plane @ cols[:, None].transpose(-1, -2)


def paste_mouth(front_plane: torch.Tensor, mouth: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """Write a patch (B, C, S, S) over the whole-pixel box of `front_plane` (B, C, R, R).

    As published: the patch is resized in one step to s x s (`F.interpolate(mode='bilinear',
    antialias=True)`) and replaces the plane's pixels [r0, r0 + s) x [c0, c0 + s); pixels
    outside the box keep the plane. Returns (B, C, R, R).
    """
    _check_plane(front_plane, "front_plane")
    batch, channels, height, width = front_plane.shape
    assert_shape(mouth, [batch, channels, None, None], "mouth")
    _check_box(box, batch)
    if height != width or mouth.shape[-1] != mouth.shape[-2]:
        raise ShapeError(f"front_plane, mouth: expected square images, got {tuple(front_plane.shape)} and "
                         f"{tuple(mouth.shape)}")
    row0, col0, side = box_pixels(box, width)
    zero = torch.zeros_like(side)
    patch_len = torch.full_like(side, mouth.shape[-1])
    rows = _resize_matrix(patch_len, zero, mouth.shape[-1], side, row0, height, front_plane.dtype)  # (B, R, S)
    cols = _resize_matrix(patch_len, zero, mouth.shape[-1], side, col0, width, front_plane.dtype)
    pasted = rows[:, None] @ mouth.to(front_plane.dtype) @ cols[:, None].transpose(-1, -2)
    idx = torch.arange(width, device=front_plane.device)
    in_rows = (idx[None] >= row0[:, None]) & (idx[None] < (row0 + side)[:, None])  # (B, R)
    in_cols = (idx[None] >= col0[:, None]) & (idx[None] < (col0 + side)[:, None])
    inside = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (B, 1, R, R)
    return torch.where(inside, pasted, front_plane)
