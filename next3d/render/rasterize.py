"""Triangle-mesh rasteriser: meshes in NDC -> per-pixel fragments (face id, barycentrics, depth).

Conventions (written once, here):

* NDC is torch `grid_sample`'s frame with ``align_corners=False``: x in [-1, 1] runs left ->
  right across columns, y in [-1, 1] runs top -> bottom across rows. Pixel (row i, col j) of
  an H x W image has its centre at ``x = -1 + (2j + 1) / W``, ``y = -1 + (2i + 1) / H``.
  z is depth: SMALLER z is NEARER and the nearest face wins.
* A pixel is covered by a face when its centre is inside the triangle or exactly on its
  boundary. Everything that decides coverage and depth order is computed in float64 with
  the same operations in the same order in every implementation (reference, C++, CUDA), so
  they agree exactly on `face_idx`. With the signed area
  ``A = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)`` and the edge functions
  ``e0 = edge(v1, v2, p)``, ``e1 = edge(v2, v0, p)``, ``e2 = edge(v0, v1, p)`` where
  ``edge(a, b, p) = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)``, a pixel is inside
  when every ``e_k`` has the sign of A or is zero; its barycentrics are ``e_k / A``.
  Pixels exactly on an edge shared by two faces are claimed by both; depth, then the face
  index, decides.
* Ties: at equal (float64) depth the LOWER face index wins. "Equal" is exact equality of the
  interpolated float64 depth: coplanar faces at a nonzero depth may differ in the last bit
  (their barycentrics round differently), and then the depth decides.
* Winding: A > 0 is CLOCKWISE as seen on screen (y points down), A < 0 counter-clockwise.
  A proper camera projection (`projection.perspective_from_label`, or any orthographic
  view with a right-handed axis map) shows a mesh's outward faces counter-clockwise when
  the mesh is wound counter-clockwise seen from outside, as FLAME is. So by default
  (`front_winding="ccw"`) `cull_backfaces=True` drops faces with A > 0. Mirrored
  projections, such as the tri-plane orthographic views (x -> x, y -> y, depth = -z: a
  left-handed map, the plane images are upside down), show outward faces clockwise: pass
  ``front_winding=projection.orthographic_front_winding(...)`` ("cw" there).
* Invalid faces are skipped, never an error: zero-area faces; faces touching a vertex with a
  NaN or infinite coordinate; with `clip_w`, faces touching a vertex whose w is not > 0 or not
  finite (there is no near-plane clipping). Face indices out of range, zero-size images and
  `perspective_correct` without `clip_w` are errors (ValueError), checked before any kernel.
* `perspective_correct=True` corrects the screen-space barycentrics b_k with the clip w of
  each vertex: ``b'_k = (b_k / w_k) / sum_j (b_j / w_j)``; the depth is then interpolated
  with b' (and the depth test uses that value).

Shapes: verts_ndc (B, V, 3) float32; faces (F, 3) int64 shared by the batch or (B, F, 3);
clip_w (B, V). Output `Fragments` of (B, H, W) tensors; see the dataclass.

The outputs are not differentiable (integer ids, and barycentrics detached); use
`next3d.render.interpolate` to interpolate attributes differentiably, and
`interpolate.barycentrics_differentiable` to reach vertex positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import torch

from torch_utils import custom_ops
from torch_utils.misc import ShapeError, assert_shape

IMPLS = ("auto", "ref", "cpu", "cuda")
WINDINGS = ("ccw", "cw")
# Candidate (face, pixel) pairs the reference evaluates at once: bounds its peak memory.
_REF_CHUNK = 1 << 21


@dataclass(frozen=True)
class Fragments:
    """What the rasteriser found at each pixel.

    face_idx: (B, H, W) int64, index into `faces`, -1 where no face covers the pixel centre.
    bary:     (B, H, W, 3) float32 barycentric weights of the winning face's 3 vertices
              (perspective-corrected when asked), 0 where empty.
    depth:    (B, H, W) float32 interpolated NDC z of the winning face, +inf where empty.
    """

    face_idx: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool: pixels covered by some face."""
        return self.face_idx >= 0

    @property
    def image_size(self) -> Tuple[int, int]:
        return int(self.face_idx.shape[1]), int(self.face_idx.shape[2])


# ----------------------------------------------------------------------------------------
# Compiled ops.


_LOADERS = custom_ops.declare_op(
    "rasterize",
    cpu_sources=["rasterize/rasterize_cpu.cpp"],
    cuda_sources=["rasterize/rasterize_cuda_bind.cpp", "rasterize/rasterize_cuda.cu"],
    headers=["rasterize/rasterize.h"],
    # Contracting a*b+c into FMA would change float64 roundings and break exact agreement.
    extra_cflags=["-ffp-contract=off"],
    extra_cuda_cflags=["--fmad=false"],
)
_load_cpu, _load_cuda = _LOADERS["cpu"], _LOADERS["cuda"]


# ----------------------------------------------------------------------------------------
# Public function.


def _image_hw(image_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(image_size, int):
        hw = (image_size, image_size)
    else:
        hw = tuple(int(s) for s in image_size)
        if len(hw) != 2:
            raise ValueError(f"image_size: expected an int or (H, W), got {image_size!r}")
    if hw[0] <= 0 or hw[1] <= 0:
        raise ValueError(f"image_size: expected positive height and width, got {hw[0]} x {hw[1]}")
    return hw


def _check_inputs(verts_ndc, faces, image_size, front_winding, clip_w, perspective_correct, impl,
                  check_indices=True):
    """Validate and normalise: returns verts (B,V,3) f32, faces (B,F,3) i64 contiguous, H, W, w or None."""
    if impl not in IMPLS:
        raise ValueError(f"impl: expected one of {', '.join(IMPLS)}, got {impl!r}")
    if front_winding not in WINDINGS:
        raise ValueError(f"front_winding: expected 'ccw' or 'cw', got {front_winding!r}")
    height, width = _image_hw(image_size)
    assert_shape(verts_ndc, [None, None, 3], "verts_ndc")
    if not verts_ndc.is_floating_point():
        raise ShapeError(f"verts_ndc: expected a floating-point tensor, got {verts_ndc.dtype}")
    batch, num_verts = verts_ndc.shape[:2]
    if not isinstance(faces, torch.Tensor) or faces.is_floating_point() or faces.dtype == torch.bool:
        raise ShapeError(f"faces: expected an integer tensor of shape (F, 3) or (B, F, 3), got "
                         f"{getattr(faces, 'dtype', type(faces).__name__)}")
    if faces.ndim == 2:
        assert_shape(faces, [None, 3], "faces")
        faces = faces.unsqueeze(0).expand(batch, -1, -1)
    else:
        assert_shape(faces, [batch, None, 3], "faces")
    if faces.device != verts_ndc.device:
        raise ValueError(f"faces are on {faces.device} but verts_ndc on {verts_ndc.device}")
    if check_indices and faces.numel() > 0:
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= num_verts:
            bad = hi if hi >= num_verts else lo
            raise ValueError(f"faces: index {bad} is out of range: max index {hi}, min index {lo}, "
                             f"but there are V={num_verts} vertices (valid: 0..{num_verts - 1})")
    if perspective_correct and clip_w is None:
        raise ValueError("perspective_correct=True needs clip_w (B, V), the homogeneous w of each vertex")
    if clip_w is not None:
        assert_shape(clip_w, [batch, num_verts], "clip_w")
        if clip_w.device != verts_ndc.device:
            raise ValueError(f"clip_w is on {clip_w.device} but verts_ndc on {verts_ndc.device}")
        clip_w = clip_w.detach().float().contiguous()
    verts = verts_ndc.detach().float().contiguous()
    faces = faces.detach().long().contiguous()
    return verts, faces, height, width, clip_w


def _choose_impl(impl: str, device: torch.device):
    """-> ('ref', None) or (kind, module)."""
    if impl == "ref":
        return "ref", None
    if device.type == "cuda":
        if impl == "cpu":
            raise ValueError("impl='cpu' was asked for, but the tensors are on a CUDA device")
        module = _load_cuda()
        if module is None and impl == "cuda":
            raise RuntimeError("impl='cuda' was asked for, but the CUDA rasteriser is unavailable: "
                               + custom_ops.statuses()["rasterize_cuda"].reason)
        return ("cuda", module) if module is not None else ("ref", None)
    if device.type == "cpu":
        if impl == "cuda":
            raise ValueError("impl='cuda' was asked for, but the tensors are on the CPU")
        module = _load_cpu()
        if module is None and impl == "cpu":
            raise RuntimeError("impl='cpu' was asked for, but the C++ rasteriser is unavailable: "
                               + custom_ops.statuses()["rasterize_cpu"].reason)
        return ("cpu", module) if module is not None else ("ref", None)
    if impl in ("cpu", "cuda"):
        raise ValueError(f"impl={impl!r} was asked for, but the tensors are on {device}")
    return "ref", None


def rasterize(
    verts_ndc: torch.Tensor,
    faces: torch.Tensor,
    image_size: Union[int, Sequence[int]],
    *,
    cull_backfaces: bool = False,
    front_winding: str = "ccw",
    clip_w: Optional[torch.Tensor] = None,
    perspective_correct: bool = False,
    impl: str = "auto",
    check_indices: bool = True,
) -> Fragments:
    """Rasterise a batch of triangle meshes given in NDC (see the module docstring).

    Args:
        verts_ndc: (B, V, 3) vertex positions in NDC (x right, y down, z depth, smaller nearer).
        faces: (F, 3) int64 vertex indices shared by the batch, or (B, F, 3).
        image_size: int or (H, W).
        cull_backfaces: drop faces whose on-screen winding is not `front_winding`.
        front_winding: "ccw" (default; proper camera projections) or "cw" (mirrored
            projections such as the tri-plane orthographic views), as seen on screen, y down.
        clip_w: optional (B, V) homogeneous w per vertex; faces touching w <= 0 are skipped.
        perspective_correct: correct the barycentrics with `clip_w`.
        impl: "auto" (compiled op for the tensors' device when it builds, else the
            reference), "ref", "cpu" (C++) or "cuda".
        check_indices: raise a clear error for face indices outside [0, V). The check
            reads the indices back to the host (a GPU->CPU sync); callers whose faces are
            fixed and validated once (e.g. the tri-plane builder) pass False. Without the
            check, the compiled kernels skip faces with out-of-range indices (the reference
            always checks).

    Returns:
        Fragments with face_idx (B, H, W), bary (B, H, W, 3), depth (B, H, W).
    """
    verts, faces, height, width, clip_w = _check_inputs(
        verts_ndc, faces, image_size, front_winding, clip_w, perspective_correct, impl, check_indices)
    kind, module = _choose_impl(impl, verts.device)
    batch, num_faces = faces.shape[:2]
    if kind == "ref" or num_faces == 0 or verts.shape[1] == 0:
        return rasterize_ref(verts, faces, (height, width), cull_backfaces=cull_backfaces,
                             front_winding=front_winding, clip_w=clip_w,
                             perspective_correct=perspective_correct)
    cull_mode = 0 if not cull_backfaces else (1 if front_winding == "ccw" else -1)
    w_arg = clip_w if clip_w is not None else torch.empty(0, device=verts.device, dtype=torch.float32)
    face_idx, bary, depth = module.rasterize(verts, faces, w_arg, height, width, cull_mode,
                                             bool(perspective_correct))
    return Fragments(face_idx=face_idx, bary=bary, depth=depth)


# ----------------------------------------------------------------------------------------
# Pure-PyTorch reference (the correctness oracle and the fallback).


def _edge(ax, ay, bx, by, px, py):
    # Same operation order as csrc/rasterize/rasterize.h: exact float64 agreement depends on it.
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


def _valid_faces(tri: torch.Tensor, tri_w: Optional[torch.Tensor], cull_backfaces: bool, front_winding: str):
    """tri (B, F, 3, 3) float64 -> (area (B, F), valid (B, F) bool)."""
    x0, y0 = tri[..., 0, 0], tri[..., 0, 1]
    x1, y1 = tri[..., 1, 0], tri[..., 1, 1]
    x2, y2 = tri[..., 2, 0], tri[..., 2, 1]
    area = _edge(x0, y0, x1, y1, x2, y2)
    valid = torch.isfinite(tri).flatten(-2).all(-1) & (area != 0) & torch.isfinite(area)
    if tri_w is not None:
        valid &= (torch.isfinite(tri_w) & (tri_w > 0)).all(-1)
    if cull_backfaces:
        valid &= (area < 0) if front_winding == "ccw" else (area > 0)
    return area, valid


def _pixel_range(lo: torch.Tensor, hi: torch.Tensor, size: int):
    """Float64 NDC interval [lo, hi] -> a conservative int64 pixel index range, clamped to the image.

    Pixel k has its centre at -1 + (2k + 1) / size, inside [lo, hi] iff
    (lo + 1) * size / 2 - 0.5 <= k <= (hi + 1) * size / 2 - 0.5. Rounding outwards (floor,
    ceil) absorbs rounding errors, which are far below a pixel: the exact edge tests decide.
    """
    first = torch.floor(((lo + 1) * (size / 2) - 0.5).clamp(-4, size + 4))
    last = torch.ceil(((hi + 1) * (size / 2) - 0.5).clamp(-4, size + 4))
    return first.clamp(0, size - 1).long(), last.clamp(0, size - 1).long(), (first <= last) & (last >= 0) & (first <= size - 1)


def _finish(tri, tri_w, area, px, py, perspective_correct):
    """Barycentrics (N, 3) and depth (N,) in float64 for pixels at (px, py) in faces `face_ids`.

    tri (N, 3, 3), tri_w (N, 3) or None, area (N,), all already gathered per pixel.
    """
    x0, y0, z0 = tri[:, 0, 0], tri[:, 0, 1], tri[:, 0, 2]
    x1, y1, z1 = tri[:, 1, 0], tri[:, 1, 1], tri[:, 1, 2]
    x2, y2, z2 = tri[:, 2, 0], tri[:, 2, 1], tri[:, 2, 2]
    b0 = _edge(x1, y1, x2, y2, px, py) / area
    b1 = _edge(x2, y2, x0, y0, px, py) / area
    b2 = _edge(x0, y0, x1, y1, px, py) / area
    if perspective_correct:
        q0 = b0 / tri_w[:, 0]
        q1 = b1 / tri_w[:, 1]
        q2 = b2 / tri_w[:, 2]
        s = q0 + q1 + q2
        b0, b1, b2 = q0 / s, q1 / s, q2 / s
    depth = b0 * z0 + b1 * z1 + b2 * z2
    return torch.stack([b0, b1, b2], dim=-1), depth


def rasterize_ref(
    verts_ndc: torch.Tensor,
    faces: torch.Tensor,
    image_size: Union[int, Sequence[int]],
    *,
    cull_backfaces: bool = False,
    front_winding: str = "ccw",
    clip_w: Optional[torch.Tensor] = None,
    perspective_correct: bool = False,
) -> Fragments:
    """Pure-PyTorch twin of `rasterize` (same arguments and results, any device).

    Vectorised over (face, pixel) candidate pairs: every pixel of every face's bounding
    box, in chunks of faces whose boxes hold about 2M pixels together.
    """
    verts, faces, height, width, clip_w = _check_inputs(
        verts_ndc, faces, image_size, front_winding, clip_w, perspective_correct, "ref")
    device = verts.device
    batch, num_faces = faces.shape[:2]
    num_pix = height * width
    face_idx = torch.full((batch * num_pix,), -1, dtype=torch.long, device=device)
    bary = torch.zeros(batch * num_pix, 3, dtype=torch.float32, device=device)
    depth = torch.full((batch * num_pix,), float("inf"), dtype=torch.float32, device=device)
    if num_faces == 0 or verts.shape[1] == 0:
        return Fragments(face_idx.view(batch, height, width), bary.view(batch, height, width, 3),
                         depth.view(batch, height, width))

    vd = verts.double()
    bidx = torch.arange(batch, device=device)[:, None, None]
    tri = vd[bidx, faces]  # (B, F, 3, 3)
    tri_w = clip_w.double()[bidx, faces] if clip_w is not None else None  # (B, F, 3)
    area, valid = _valid_faces(tri, tri_w, cull_backfaces, front_winding)
    safe_tri = torch.where(valid[..., None, None], tri, torch.zeros_like(tri))
    xs, ys = safe_tri[..., 0], safe_tri[..., 1]
    col0, col1, ok_x = _pixel_range(xs.amin(-1), xs.amax(-1), width)
    row0, row1, ok_y = _pixel_range(ys.amin(-1), ys.amax(-1), height)
    valid &= ok_x & ok_y
    box_w = (col1 - col0 + 1).clamp(min=0)
    box_h = (row1 - row0 + 1).clamp(min=0)
    counts = torch.where(valid, box_w * box_h, torch.zeros_like(box_w)).reshape(-1)  # (B*F,)

    # Flat (b, f) order is b-major then f ascending: for a given pixel (always one b),
    # candidates from earlier chunks have lower face indices.
    flat_ids = torch.nonzero(counts > 0).squeeze(1)
    best_depth = torch.full((batch * num_pix,), float("inf"), dtype=torch.float64, device=device)
    big = batch * num_faces + 1
    best_face = torch.full((batch * num_pix,), big, dtype=torch.long, device=device)
    flat_tri = tri.reshape(-1, 3, 3)
    flat_w = tri_w.reshape(-1, 3) if tri_w is not None else None
    flat_area = area.reshape(-1)
    flat_col0, flat_row0, flat_bw = col0.reshape(-1), row0.reshape(-1), box_w.reshape(-1)
    sel_counts = counts[flat_ids]
    ends = torch.cumsum(sel_counts, 0)
    start = 0
    total = int(ends[-1]) if ends.numel() else 0
    pos = 0
    while pos < len(flat_ids):
        # Take faces until the chunk holds about _REF_CHUNK pairs (at least one face).
        limit = start + _REF_CHUNK
        stop = int(torch.searchsorted(ends, torch.tensor(limit, device=device), right=True))
        stop = max(stop, pos + 1)
        ids = flat_ids[pos:stop]
        cnt = sel_counts[pos:stop]
        pair_face = torch.repeat_interleave(ids, cnt)
        offsets = torch.cumsum(cnt, 0) - cnt
        local = torch.arange(int(cnt.sum()), device=device) - torch.repeat_interleave(offsets, cnt)
        bw = flat_bw[pair_face]
        row = flat_row0[pair_face] + torch.div(local, bw, rounding_mode="floor")
        col = flat_col0[pair_face] + local % bw
        _chunk(flat_tri, flat_w, flat_area, pair_face, row, col, height, width, num_faces,
               perspective_correct, best_depth, best_face, big)
        start = int(ends[stop - 1])
        pos = stop
    assert start == total

    hit = best_face < big
    pix = torch.nonzero(hit).squeeze(1)
    if pix.numel():
        flat_face = best_face[pix]
        b_of = torch.div(pix, num_pix, rounding_mode="floor")
        rem = pix - b_of * num_pix
        i = torch.div(rem, width, rounding_mode="floor")
        j = rem - i * width
        px = (2 * j + 1).double() / width - 1.0
        py = (2 * i + 1).double() / height - 1.0
        bc, dep = _finish(flat_tri[flat_face], flat_w[flat_face] if flat_w is not None else None,
                          flat_area[flat_face], px, py, perspective_correct)
        face_idx[pix] = flat_face - b_of * num_faces
        bary[pix] = bc.float()
        depth[pix] = dep.float()
    return Fragments(face_idx.view(batch, height, width), bary.view(batch, height, width, 3),
                     depth.view(batch, height, width))


def _chunk(flat_tri, flat_w, flat_area, pair_face, row, col, height, width, num_faces,
           perspective_correct, best_depth, best_face, big):
    """Depth-test one chunk of (face, pixel) pairs into best_depth / best_face (in place)."""
    px = (2 * col + 1).double() / width - 1.0
    py = (2 * row + 1).double() / height - 1.0
    tri = flat_tri[pair_face]
    area = flat_area[pair_face]
    x0, y0 = tri[:, 0, 0], tri[:, 0, 1]
    x1, y1 = tri[:, 1, 0], tri[:, 1, 1]
    x2, y2 = tri[:, 2, 0], tri[:, 2, 1]
    e0 = _edge(x1, y1, x2, y2, px, py)
    e1 = _edge(x2, y2, x0, y0, px, py)
    e2 = _edge(x0, y0, x1, y1, px, py)
    pos = area > 0
    inside = torch.where(pos, (e0 >= 0) & (e1 >= 0) & (e2 >= 0), (e0 <= 0) & (e1 <= 0) & (e2 <= 0))
    keep = torch.nonzero(inside).squeeze(1)
    if keep.numel() == 0:
        return
    pair_face, row, col, px, py = pair_face[keep], row[keep], col[keep], px[keep], py[keep]
    _, dep = _finish(tri[keep], flat_w[pair_face] if flat_w is not None else None, area[keep],
                     px, py, perspective_correct)
    b_of = torch.div(pair_face, num_faces, rounding_mode="floor")
    pix = (b_of * height + row) * width + col
    old_depth = best_depth.clone()
    best_depth.scatter_reduce_(0, pix, dep, reduce="amin", include_self=True)
    # Among candidates at the (new) best depth, the lowest flat face id wins; faces from earlier
    # chunks have lower ids, so the running winner stays when its depth ties.
    at_best = dep == best_depth[pix]
    cand = torch.full_like(best_face, big)
    cand.scatter_reduce_(0, pix[at_best], pair_face[at_best], reduce="amin", include_self=True)
    same = old_depth == best_depth
    best_face.copy_(torch.where(same, torch.minimum(best_face, cand), cand))
