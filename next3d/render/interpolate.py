"""Interpolating attributes over rasterised fragments (differentiable).

* `interpolate(fragments, vertex_attrs, faces)`: per-vertex attributes (B, V, C) or (V, C)
  -> (B, H, W, C), weighted by the fragments' barycentrics; gradients reach the attributes.
* `interpolate_face_attrs(fragments, face_attrs)`: per-face-corner attributes (B, F, 3, C)
  or (F, 3, C), e.g. UVs of a mesh whose UV seams split vertices -> (B, H, W, C).
* `barycentrics_differentiable(fragments, verts_ndc, faces)`: the barycentrics recomputed in
  torch (in the vertices' dtype) from the winning face ids, so gradients flow to `verts_ndc`
  (and to `clip_w` when perspective-corrected). The face ids themselves are piecewise
  constant: the gradient is that of the barycentrics with the visibility held fixed (no
  gradient from faces appearing or disappearing at silhouettes). Pass the result as
  `bary=` to the two functions above.

All outputs are zero where no face covers the pixel (`fragments.mask` is False).
"""

from __future__ import annotations

from typing import Optional

import torch

from next3d.render.rasterize import Fragments
from torch_utils.misc import assert_shape


def _check_fragments(fragments: Fragments):
    if not isinstance(fragments, Fragments):
        raise TypeError(f"fragments: expected next3d.render.rasterize.Fragments, got {type(fragments).__name__}")
    batch, height, width = fragments.face_idx.shape
    return batch, height, width


def _bary(fragments: Fragments, bary: Optional[torch.Tensor]) -> torch.Tensor:
    if bary is None:
        return fragments.bary
    assert_shape(bary, list(fragments.bary.shape), "bary")
    return bary


def _faces_per_batch(faces: torch.Tensor, batch: int) -> torch.Tensor:
    if faces.ndim == 2:
        assert_shape(faces, [None, 3], "faces")
        return faces.long().unsqueeze(0).expand(batch, -1, -1)
    assert_shape(faces, [batch, None, 3], "faces")
    return faces.long()


def _weighted_sum(corner_value, bary, mask):
    """sum_k bary[..., k] * corner_value(k) over the 3 corners, zero outside `mask`.

    One corner at a time keeps the peak memory at (B, H, W, C) rather than (B, H, W, 3, C).
    """
    out = None
    for k in range(3):
        term = bary[..., k:k + 1].to(dtype=corner_value(k).dtype) * corner_value(k)
        out = term if out is None else out + term
    return out * mask[..., None].to(out.dtype)


def interpolate(fragments: Fragments, vertex_attrs: torch.Tensor, faces: torch.Tensor,
                bary: Optional[torch.Tensor] = None, check_indices: bool = True) -> torch.Tensor:
    """Interpolate per-vertex attributes (B, V, C) or (V, C) -> (B, H, W, C).

    `faces` (F, 3) or (B, F, 3) must be the faces given to `rasterize`. `bary` (B, H, W, 3)
    replaces `fragments.bary` (e.g. from `barycentrics_differentiable`). `check_indices`
    False skips the index check (a GPU->CPU sync) for faces validated by the caller.
    """
    batch, height, width = _check_fragments(fragments)
    if vertex_attrs.ndim == 2:
        vertex_attrs = vertex_attrs.unsqueeze(0).expand(batch, -1, -1)
    assert_shape(vertex_attrs, [batch, None, None], "vertex_attrs")
    faces_b = _faces_per_batch(faces, batch)
    channels = vertex_attrs.shape[2]
    weights = _bary(fragments, bary)
    if faces_b.shape[1] == 0 or vertex_attrs.shape[1] == 0:
        return vertex_attrs.new_zeros(batch, height, width, channels) + 0 * vertex_attrs.sum()
    mask = fragments.mask
    fid = fragments.face_idx.clamp(min=0).reshape(batch, -1)  # (B, HW)
    if check_indices and int(faces_b.max()) >= vertex_attrs.shape[1]:
        raise ValueError(f"faces: max index {int(faces_b.max())} but vertex_attrs has "
                         f"V={vertex_attrs.shape[1]} vertices")
    corner_vids = torch.gather(faces_b, 1, fid[..., None].expand(-1, -1, 3))  # (B, HW, 3)

    def corner_value(k):
        vid = corner_vids[..., k]
        return torch.gather(vertex_attrs, 1, vid[..., None].expand(-1, -1, channels)).view(
            batch, height, width, channels)

    return _weighted_sum(corner_value, weights, mask)


def interpolate_face_attrs(fragments: Fragments, face_attrs: torch.Tensor,
                           bary: Optional[torch.Tensor] = None, check_indices: bool = True) -> torch.Tensor:
    """Interpolate per-face-corner attributes (B, F, 3, C) or (F, 3, C) -> (B, H, W, C).

    `check_indices` False skips checking the fragments' face ids against F (a GPU->CPU
    sync) when the fragments come from rasterising exactly these faces.
    """
    batch, height, width = _check_fragments(fragments)
    if face_attrs.ndim == 3:
        face_attrs = face_attrs.unsqueeze(0).expand(batch, -1, -1, -1)
    assert_shape(face_attrs, [batch, None, 3, None], "face_attrs")
    channels = face_attrs.shape[3]
    weights = _bary(fragments, bary)
    if face_attrs.shape[1] == 0:
        return face_attrs.new_zeros(batch, height, width, channels) + 0 * face_attrs.sum()
    fid = fragments.face_idx.clamp(min=0).reshape(batch, -1)
    if check_indices and int(fid.max()) >= face_attrs.shape[1]:
        raise ValueError(f"fragments reference face {int(fid.max())} but face_attrs has "
                         f"F={face_attrs.shape[1]} faces")

    def corner_value(k):
        per_face = face_attrs[:, :, k, :]  # (B, F, C)
        return torch.gather(per_face, 1, fid[..., None].expand(-1, -1, channels)).view(
            batch, height, width, channels)

    return _weighted_sum(corner_value, weights, fragments.mask)


def barycentrics_differentiable(fragments: Fragments, verts_ndc: torch.Tensor, faces: torch.Tensor, *,
                                clip_w: Optional[torch.Tensor] = None,
                                perspective_correct: bool = False) -> torch.Tensor:
    """Barycentrics (B, H, W, 3) recomputed from `verts_ndc` (B, V, 3) so that gradients reach it.

    Uses the winning faces in `fragments` and the same formulas as the rasteriser (edge
    functions over the signed area, perspective correction with `clip_w` (B, V) when asked),
    in the dtype of `verts_ndc`; matches `fragments.bary` to float tolerance. Zero where empty.
    """
    batch, height, width = _check_fragments(fragments)
    assert_shape(verts_ndc, [batch, None, 3], "verts_ndc")
    if perspective_correct and clip_w is None:
        raise ValueError("perspective_correct=True needs clip_w (B, V)")
    faces_b = _faces_per_batch(faces, batch)
    if faces_b.shape[1] == 0 or verts_ndc.shape[1] == 0:
        return verts_ndc.new_zeros(batch, height, width, 3) + 0 * verts_ndc.sum()
    mask = fragments.mask
    fid = fragments.face_idx.clamp(min=0).reshape(batch, -1)
    vid = torch.gather(faces_b, 1, fid[..., None].expand(-1, -1, 3))  # (B, HW, 3)
    corners = [torch.gather(verts_ndc, 1, vid[..., k:k + 1].expand(-1, -1, 3)) for k in range(3)]
    dtype = verts_ndc.dtype
    cols = torch.arange(width, device=verts_ndc.device, dtype=dtype)
    rows = torch.arange(height, device=verts_ndc.device, dtype=dtype)
    px = ((2 * cols + 1) / width - 1).view(1, 1, width).expand(batch, height, width).reshape(batch, -1)
    py = ((2 * rows + 1) / height - 1).view(1, height, 1).expand(batch, height, width).reshape(batch, -1)

    def edge(a, b):
        return (b[..., 0] - a[..., 0]) * (py - a[..., 1]) - (b[..., 1] - a[..., 1]) * (px - a[..., 0])

    v0, v1, v2 = corners
    area = (v1[..., 0] - v0[..., 0]) * (v2[..., 1] - v0[..., 1]) - (v1[..., 1] - v0[..., 1]) * (v2[..., 0] - v0[..., 0])
    flat_mask = mask.reshape(batch, -1)
    # Empty pixels point at face 0, which may be degenerate: keep their division finite.
    area = torch.where(flat_mask & (area != 0), area, torch.ones_like(area))
    bary = torch.stack([edge(v1, v2), edge(v2, v0), edge(v0, v1)], dim=-1) / area[..., None]
    bary = torch.where(flat_mask[..., None], bary, torch.full_like(bary, 1.0 / 3.0))
    if perspective_correct:
        assert_shape(clip_w, [batch, verts_ndc.shape[1]], "clip_w")
        w = torch.gather(clip_w.to(dtype), 1, vid.reshape(batch, -1)).view(batch, -1, 3)
        w = torch.where(flat_mask[..., None], w, torch.ones_like(w))
        q = bary / w
        bary = q / q.sum(-1, keepdim=True)
    bary = bary * flat_mask[..., None].to(dtype)
    return bary.view(batch, height, width, 3)
