"""Neural-texture rasterisation into the dynamic tri-planes (design §1.5).

The FLAME mesh is rasterised orthographically into each plane of the renderer's box and
the neural texture is sampled at the rasterised UVs:

====  ======  ===========================  ======================================
slot  plane   grid (x, y) from world        views (depth: smaller = nearer)
====  ======  ===========================  ======================================
0     XY      (x, y)                        front: viewer at +z, depth = -z
1     XZ      (x, z)                        top: viewer at +y (above), depth = -y
2     ZY      (z, y)                        side: viewer at +x, depth = -x, AND
                                            viewer at -x, depth = +x (combined)
====  ======  ===========================  ======================================

Every vertex goes FLAME -> world -> grid coordinates through
`triplane_coords.flame_to_world` and `world_to_plane_coords`, and the rasteriser's NDC is
grid_sample's frame, so texture written at plane pixel (i, j) is exactly what the volume
renderer reads (`triplane_coords.sample_planes`) at a world point projecting there. The
planes are stored in the renderer's slot order; the published code swapped side and top
and combined side view 1 with itself: neither is repeated here.

* **UV frame.** `uv_coords` (T, 2) are in [0, 1] with v UP (OBJ / DECA): texture row 0 is
  v = 1. The texture and the UV mask are sampled with `grid_sample(align_corners=False,
  padding_mode='zeros')` at grid `(2u - 1, 1 - 2v)` (v flipped), as published.
* **Visibility** as the published rasteriser (DECA's pytorch3d wrapper, `cull_backfaces=True`):
  back faces are culled in every view, so holes (the open mouth) show no inside of the head.
* **Uncovered pixels** (no front face): features are the texture read at grid (0, 0), its
  centre (bilinear mean of the four centre texels for even sizes). The published rasteriser
  leaves the interpolated UV attribute (stored as `uv * 2 - 1`, v flipped) at 0 there and
  the texture is sampled at it unmasked, so the front plane that the mouth and blending
  StyleUNets see carries that value off the mesh. Alpha is 0 there.
* **Alpha** = coverage x the UV face/eye mask sampled at the same UVs. In the front view
  the mouth interior counts as covered: a triangle fan over the inner-lip landmarks
  (`mouth_region.mouth_cap`) is rasterised separately, and where it lies in front of the
  mesh (or nothing is behind it) alpha is 1. The cap sets alpha only: features there are
  whatever the mesh shows through the hole (published: features from the mesh
  rasterisation, alpha from the flood-filled mask). No CPU work, no GPU->CPU sync for it.
* **Side plane**: the +x and -x views both project onto the same (z, y) grid; features are
  their alpha-weighted mean (plain mean where neither view covers a pixel) and alpha is the
  union (max) of both alphas.
* **front_only**: side and top are not rasterised; their planes and alphas are zero (the
  released checkpoint appears to blend only the front plane).
* Gradients reach the texture; the UV lookup (rasterisation, barycentrics) is detached, as
  in the published model. With `uv_gradients=True` (inversion's face refinement, where the
  generator is the renderer of the mesh) the barycentrics are recomputed differentiably
  (`interpolate.barycentrics_differentiable`) so that gradients also reach the vertices:
  the UVs seen at a plane pixel move with the mesh (no silhouette gradients; which face
  wins a pixel stays discrete). Values are identical either way.

Shapes: vertices (B, V, 3) and landmarks (B, 68, 3) in FLAME space; faces (F, 3) and
uv_faces (F, 3) int64; uv_coords (T, 2); uv_mask (1 or B, 1, S, S) in [0, 1] (image rows,
row 0 = v = 1) or None (all ones); texture (B, C, Ht, Wt). Output planes (B, 3, C, R, R),
alphas (B, 3, 1, R, R).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from next3d.render import mouth_region
from next3d.render.interpolate import interpolate_face_attrs
from next3d.render.projection import orthographic_front_winding
from next3d.render.rasterize import WINDINGS, Fragments, rasterize
from next3d.render.triplane_coords import DEFAULT_BOX_WARP, PLANE_AXES, flame_to_world, world_to_plane_coords
from torch_utils.misc import ShapeError, assert_shape

SLOT_FRONT, SLOT_TOP, SLOT_SIDE = 0, 1, 2


@dataclass(frozen=True)
class View:
    """One orthographic view: the plane slot it writes, and its depth axis and sign."""

    name: str
    slot: int
    depth_axis: int  # world axis along which the viewer looks
    depth_sign: float  # depth = depth_sign * world[depth_axis]; smaller = nearer


VIEWS = (
    View("front", SLOT_FRONT, 2, -1.0),
    View("top", SLOT_TOP, 1, -1.0),
    View("side_pos_x", SLOT_SIDE, 0, -1.0),
    View("side_neg_x", SLOT_SIDE, 0, 1.0),
)
VIEW_BY_NAME = {v.name: v for v in VIEWS}


@dataclass(frozen=True)
class TexturePlanes:
    """Dynamic tri-planes from the neural texture, in the renderer's slot order (0 XY, 1 XZ, 2 ZY).

    planes: (B, 3, C, R, R) texture features (the texture's centre sample where uncovered).
    alphas: (B, 3, 1, R, R) blending weights in [0, 1].
    """

    planes: torch.Tensor
    alphas: torch.Tensor


@dataclass(frozen=True)
class ViewRendering:
    """Per-view results of `render_views` (view-major lists follow the `views` argument).

    features: (B, N, C, R, R) texture features (centre sample where uncovered); may be a strided view.
    alphas:   (B, N, 1, R, R) coverage x UV mask (mouth cap = 1 in the front view).
    uv:       (B, N, 2, R, R) rasterised UVs of the mesh (0 where it does not cover).
    coverage: (B, N, 1, R, R) 1 where the mesh or mouth cap covers the pixel.
    depth:    (B, N, R, R) depth of the mesh along the view (+inf where uncovered).
    """

    features: torch.Tensor
    alphas: torch.Tensor
    uv: torch.Tensor
    coverage: torch.Tensor
    depth: torch.Tensor


def uv_to_grid(uv: torch.Tensor) -> torch.Tensor:
    """UVs (..., 2) in [0, 1], v up -> grid_sample coordinates (..., 2) over a texture image."""
    return torch.stack([2.0 * uv[..., 0] - 1.0, 1.0 - 2.0 * uv[..., 1]], dim=-1)


def view_ndc(world: torch.Tensor, view: View, box_warp: float = DEFAULT_BOX_WARP) -> torch.Tensor:
    """World points (B, N, 3) -> the view's NDC (B, N, 3): plane grid coordinates and depth."""
    grid = world_to_plane_coords(world, box_warp)[:, view.slot]  # (B, N, 2)
    depth = view.depth_sign * world[..., view.depth_axis:view.depth_axis + 1]
    return torch.cat([grid, depth], dim=-1)


def check_mesh_inputs(faces: torch.Tensor, uv_coords: torch.Tensor, uv_faces: torch.Tensor,
                      uv_mask: Optional[torch.Tensor], check_uv_range: bool = True) -> None:
    """Validate the topology and UV layout (shapes, dtypes, UV range in [0, 1])."""
    assert_shape(faces, [None, 3], "faces")
    assert_shape(uv_faces, [faces.shape[0], 3], "uv_faces")
    for name, tensor in (("faces", faces), ("uv_faces", uv_faces)):
        if tensor.is_floating_point() or tensor.dtype == torch.bool:
            raise ShapeError(f"{name}: expected an integer tensor, got {tensor.dtype}")
    assert_shape(uv_coords, [None, 2], "uv_coords")
    if uv_mask is not None:
        assert_shape(uv_mask, [None, 1, None, None], "uv_mask")
    if check_uv_range and uv_coords.numel():
        lo, hi = float(uv_coords.min()), float(uv_coords.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"uv_coords: expected values in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    if check_uv_range and uv_faces.numel():
        lo, hi = int(uv_faces.min()), int(uv_faces.max())
        if lo < 0 or hi >= uv_coords.shape[0]:
            raise ValueError(f"uv_faces: indices must lie in [0, {uv_coords.shape[0] - 1}] (T={uv_coords.shape[0]} "
                             f"uv coords), got range [{lo}, {hi}]")


def _check_batch_inputs(vertices, landmarks, texture, uv_mask, resolution):
    assert_shape(vertices, [None, None, 3], "vertices")
    batch = vertices.shape[0]
    mouth_region.check_landmarks(landmarks)
    assert_shape(landmarks, [batch, 68, 3], "landmarks")
    if not isinstance(texture, torch.Tensor) or texture.ndim != 4:
        if isinstance(texture, torch.Tensor):
            got = f"{texture.ndim} dimensions {tuple(texture.shape)}"
        else:
            got = type(texture).__name__
        raise ShapeError(f"texture: expected 4 dimensions (B, C, H, W), got {got}")
    assert_shape(texture, [batch, None, None, None], "texture")
    if uv_mask is not None and uv_mask.shape[0] not in (1, batch):
        raise ShapeError(f"uv_mask: expected batch 1 or {batch}, got {tuple(uv_mask.shape)}")
    if not isinstance(resolution, int) or resolution <= 0:
        raise ValueError(f"resolution: expected a positive int, got {resolution!r}")


def view_front_winding(view: View) -> str:
    """On-screen winding ("cw"/"ccw") of the outward faces of a FLAME-wound mesh in `view`."""
    axes = PLANE_AXES[view.slot]
    return orthographic_front_winding(axes, view.depth_axis, int(view.depth_sign))


def _rasterize_culled(ndc: Sequence[torch.Tensor], windings: Sequence[str], faces: torch.Tensor, res: int,
                      impl: str, check_indices: bool) -> Fragments:
    """Rasterise one (B, V, 3) NDC mesh per view with back faces culled -> view-major fragments.

    Views seen through a mirrored axis map show outward faces the other way round, so the
    views are rasterised in one call per winding and put back in view order.
    """
    groups = {w: [i for i, wi in enumerate(windings) if wi == w] for w in WINDINGS}
    parts = {}
    for winding, idx in groups.items():
        if idx:
            frags = rasterize(torch.cat([ndc[i] for i in idx], dim=0), faces, res, cull_backfaces=True,
                              front_winding=winding, impl=impl, check_indices=check_indices)
            for k, i in enumerate(idx):
                parts[i] = [t.narrow(0, k * ndc[i].shape[0], ndc[i].shape[0])
                            for t in (frags.face_idx, frags.bary, frags.depth)]
    face_idx, bary, depth = (torch.cat([parts[i][j] for i in range(len(ndc))], dim=0) for j in range(3))
    return Fragments(face_idx=face_idx, bary=bary, depth=depth)


def _mouth_cap_pixels(landmarks: torch.Tensor, mesh_depth: torch.Tensor, res: int, box_warp: float,
                      impl: str) -> torch.Tensor:
    """(B, R, R) bool: front-view pixels where the mouth cap lies in front of the mesh.

    The cap only sets alpha; it never occludes the mesh's features.
    """
    cap, cap_faces = mouth_region.mouth_cap(landmarks.detach().float())
    cap_ndc = view_ndc(flame_to_world(cap), VIEW_BY_NAME["front"], box_warp)
    frags = rasterize(cap_ndc, cap_faces, res, impl=impl, check_indices=False)
    return frags.mask & (frags.depth < mesh_depth)


def render_views(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uv_coords: torch.Tensor,
    uv_faces: torch.Tensor,
    uv_mask: Optional[torch.Tensor],
    landmarks: Optional[torch.Tensor],
    texture: torch.Tensor,
    resolution: int,
    views: Sequence[str] = ("front", "top", "side_pos_x", "side_neg_x"),
    box_warp: float = DEFAULT_BOX_WARP,
    rasterize_impl: str = "auto",
    check_indices: bool = True,
    uv_gradients: bool = False,
) -> ViewRendering:
    """Rasterise the mesh in the named views and sample the texture (module docstring).

    `landmarks` None skips the mouth cap. Returns a `ViewRendering` with the views in the
    given order along dimension 1. Inputs are not re-validated beyond shapes.
    """
    batch = vertices.shape[0]
    num_views = len(views)
    device = vertices.device
    res = resolution
    world = flame_to_world(vertices.detach().float())

    ndc = [view_ndc(world, VIEW_BY_NAME[name], box_warp) for name in views]
    windings = [view_front_winding(VIEW_BY_NAME[name]) for name in views]
    # The index check costs a GPU->CPU sync; callers holding a fixed, validated mesh skip it.
    frags = _rasterize_culled(ndc, windings, faces.long(), res, rasterize_impl, check_indices)  # (N*B, ...)
    face_uv = uv_coords.detach().float()[uv_faces.long()]  # (F, 3, 2)
    bary = None
    if uv_gradients and vertices.requires_grad:
        from next3d.render.interpolate import barycentrics_differentiable

        live = flame_to_world(vertices.float())
        live_ndc = torch.cat([view_ndc(live, VIEW_BY_NAME[name], box_warp) for name in views], dim=0)
        bary = barycentrics_differentiable(frags, live_ndc, faces.long())
    uv = interpolate_face_attrs(frags, face_uv, bary=bary, check_indices=False)  # (N*B, R, R, 2), 0 if uncovered
    mesh_hit = frags.mask

    def batch_major(x):  # (N*B, R, R, ...) -> (B, N*R, R, ...): one grid_sample per batch entry
        x = x.reshape(num_views, batch, res, res, *x.shape[3:]).transpose(0, 1)
        return x.reshape(batch, num_views * res, res, *x.shape[4:])

    # As published: uncovered pixels read the texture at grid (0, 0), the value the
    # rasteriser leaves there, and texture and mask are read with zeros padding.
    grid = torch.where(mesh_hit[..., None], uv_to_grid(uv), torch.zeros_like(uv))
    grid = batch_major(grid).to(texture.dtype)  # (B, N*R, R, 2)
    feats = F.grid_sample(texture, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    feats = feats.view(batch, -1, num_views, res, res).transpose(1, 2)  # (B, N, C, R, R), a strided view
    mesh_b = batch_major(mesh_hit).view(batch, num_views, 1, res, res)

    if uv_mask is None:
        mask_val = torch.ones(batch, num_views, 1, res, res, device=device)
    else:
        mask_in = uv_mask.float().expand(batch, -1, -1, -1)
        mask_val = F.grid_sample(mask_in, grid.float(), mode="bilinear", padding_mode="zeros", align_corners=False)
        mask_val = mask_val.view(batch, 1, num_views, res, res).transpose(1, 2)
    alphas = mask_val * mesh_b
    coverage = mesh_b
    if landmarks is not None and "front" in views:
        front = views.index("front")
        mesh_depth = frags.depth.view(num_views, batch, res, res)[front]
        cap_b = _mouth_cap_pixels(landmarks, mesh_depth, res, box_warp, rasterize_impl)
        is_front = torch.zeros(1, num_views, 1, 1, 1, dtype=torch.bool, device=device)
        is_front[:, front] = True
        cap_b = cap_b[:, None, None] & is_front  # (B, N, 1, R, R)
        alphas = torch.where(cap_b, torch.ones_like(alphas), alphas)
        coverage = coverage | cap_b

    uv_b = batch_major(uv * mesh_hit[..., None]).view(batch, num_views, res, res, 2).permute(0, 1, 4, 2, 3)
    depth = batch_major(frags.depth).view(batch, num_views, res, res)
    return ViewRendering(features=feats, alphas=alphas.to(feats.dtype), uv=uv_b,
                         coverage=coverage.to(feats.dtype), depth=depth)


def combine_side(features: torch.Tensor, alphas: torch.Tensor,
                 coverage: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Combine the +x and -x views (B, 2, C, R, R), alphas/coverage (B, 2, 1, R, R) into one plane.

    Features: alpha-weighted mean (coverage-weighted where both alphas are zero); alpha:
    max of the two. Returns ((B, C, R, R), (B, 1, R, R)).
    """
    # The 1e-8 gives pixels neither view covers the mean of the two views' fill value.
    weights = alphas + 1e-4 * coverage + 1e-8
    weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-8)  # normalise on 1 channel
    feats = torch.addcmul(features[:, 1] * weights[:, 1], features[:, 0], weights[:, 0])
    return feats, alphas.max(dim=1).values


def build_texture_planes(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uv_coords: torch.Tensor,
    uv_faces: torch.Tensor,
    uv_mask: Optional[torch.Tensor],
    landmarks: torch.Tensor,
    texture: torch.Tensor,
    resolution: int,
    box_warp: float = DEFAULT_BOX_WARP,
    front_only: bool = False,
    rasterize_impl: str = "auto",
    check_uv_range: bool = True,
    uv_gradients: bool = False,
) -> TexturePlanes:
    """Dynamic tri-planes from a neural texture (see the module docstring for conventions).

    Args:
        vertices: (B, V, 3) FLAME-space vertices.
        faces: (F, 3) int64 vertex indices.
        uv_coords: (T, 2) UVs in [0, 1], v up.
        uv_faces: (F, 3) int64 indices into `uv_coords`.
        uv_mask: (1 or B, 1, S, S) UV face/eye mask in [0, 1], or None (all ones).
        landmarks: (B, 68, 3) FLAME-space landmarks (inner lip 60-67 close the mouth).
        texture: (B, C, Ht, Wt) neural texture (row 0 = v = 1).
        resolution: plane resolution R.
        box_warp: the renderer's box size.
        front_only: side and top alphas (and planes) zero; only the front is rasterised.
        rasterize_impl: passed to `rasterize` ("auto", "ref", "cpu", "cuda").
        check_uv_range: check uv_coords are in [0, 1] and face indices are in range
            (GPU->CPU syncs; a module holding the mesh layout checks once and passes False).
        uv_gradients: let gradients reach the vertices through the UV lookup (module docstring).
    Returns:
        TexturePlanes(planes (B, 3, C, R, R), alphas (B, 3, 1, R, R)).
    """
    check_mesh_inputs(faces, uv_coords, uv_faces, uv_mask, check_uv_range)
    _check_batch_inputs(vertices, landmarks, texture, uv_mask, resolution)
    batch, channels = texture.shape[:2]
    res = resolution
    views = ("front",) if front_only else ("front", "top", "side_pos_x", "side_neg_x")
    out = render_views(vertices, faces, uv_coords, uv_faces, uv_mask, landmarks, texture, res,
                       views=views, box_warp=box_warp, rasterize_impl=rasterize_impl,
                       check_indices=check_uv_range, uv_gradients=uv_gradients)
    if front_only:
        zeros = out.features.new_zeros(batch, 2, channels, res, res)
        planes = torch.cat([out.features, zeros], dim=1)
        alphas = torch.cat([out.alphas, out.alphas.new_zeros(batch, 2, 1, res, res)], dim=1)
    else:
        side_feat, side_alpha = combine_side(out.features[:, 2:], out.alphas[:, 2:], out.coverage[:, 2:])
        planes = torch.stack([out.features[:, 0], out.features[:, 1], side_feat], dim=1)
        alphas = torch.stack([out.alphas[:, 0], out.alphas[:, 1], side_alpha], dim=1)
    assert_shape(planes, [batch, 3, channels, res, res], "planes")
    assert_shape(alphas, [batch, 3, 1, res, res], "alphas")
    return TexturePlanes(planes=planes, alphas=alphas)


class TexturePlaneBuilder(torch.nn.Module):
    """Holds the topology and UV layout; `forward(vertices, landmarks, texture)` -> TexturePlanes.

    The UV range is checked once here, so the forward pass has no GPU->CPU sync of its own.
    """

    def __init__(self,
                 faces: torch.Tensor,                   # (F, 3) int64 vertex indices
                 uv_coords: torch.Tensor,               # (T, 2) UVs in [0, 1], v up
                 uv_faces: torch.Tensor,                # (F, 3) int64 UV indices
                 uv_mask: Optional[torch.Tensor],       # (1, 1, S, S) face/eye mask, or None
                 resolution: int = 256,                 # plane resolution R
                 box_warp: float = DEFAULT_BOX_WARP,    # the renderer's box size
                 front_only: bool = False,              # blend only the front plane
                 rasterize_impl: str = "auto",          # rasteriser implementation
                 ):
        super().__init__()
        check_mesh_inputs(faces, uv_coords, uv_faces, uv_mask)
        self.resolution = int(resolution)
        self.box_warp = float(box_warp)
        self.front_only = bool(front_only)
        self.rasterize_impl = rasterize_impl
        # Plain attribute (as the generator's neural_rendering_resolution): the inversion's
        # refinement switches it on for its duration (`next3d.inversion.losses.mesh_gradients`).
        self.uv_gradients = False
        # Checked against the vertex count on every call without touching the device.
        self.max_vertex_index = int(faces.max()) if faces.numel() else -1
        self.register_buffer("faces", faces.long().clone(), persistent=False)
        self.register_buffer("uv_coords", uv_coords.float().clone(), persistent=False)
        self.register_buffer("uv_faces", uv_faces.long().clone(), persistent=False)
        self.register_buffer("uv_mask", None if uv_mask is None else uv_mask.float().clone(), persistent=False)

    def forward(self, vertices: torch.Tensor, landmarks: torch.Tensor, texture: torch.Tensor) -> TexturePlanes:
        if vertices.ndim == 3 and self.max_vertex_index >= vertices.shape[1]:
            raise ShapeError(f"vertices: the mesh's faces index vertex {self.max_vertex_index}, but vertices "
                             f"has only V={vertices.shape[1]} (expected the head model this builder was made for)")
        return build_texture_planes(vertices, self.faces, self.uv_coords, self.uv_faces, self.uv_mask, landmarks,
                                    texture, self.resolution, box_warp=self.box_warp, front_only=self.front_only,
                                    rasterize_impl=self.rasterize_impl, check_uv_range=False,
                                    uv_gradients=self.uv_gradients)

    def extra_repr(self) -> str:
        return (f"resolution={self.resolution}, box_warp={self.box_warp}, front_only={self.front_only}, "
                f"faces={self.faces.shape[0]}, rasterize_impl={self.rasterize_impl!r}")
