"""Render one synthetic item: `render_item(config, index, seed) -> SyntheticItem`.

The scene (`scene.build_meshes`, FLAME space) goes to world space with
`triplane_coords.flame_to_world` (world = 2.5 (x, y + 0.01, z), the box the Next3D generator
renders) and is rasterised under the item's EG3D camera label (`projection.perspective_from_label`,
perspective-correct) twice: at the output resolution R (pixel centres, as
`mesh_shading.render_mesh`) and at `supersample` x R. Shading (UV albedo or vertex colour, SH
environment + key light with a shadow map, Blinn-Phong or strand highlights, linear RGB) is
adaptive: a pixel whose sub-samples all lie on the surface under its centre is shaded once, at the
centre; an edge pixel (sub-samples on another part, class or depth, or on the background) and
every eye pixel is shaded at each sub-sample and box-filtered, over the background. Then
tone-mapping, sRGB, sensor noise and quantisation. The ground truth reuses the R rasterisation:
depth (camera z, world units; 0 where empty), camera-space normals (OpenCV axes, facing the
camera), mask, segmentation (0 background, 1 skin, 2 hair, 3 neck/shoulders/clothing, 4 eyes,
5 mouth interior); the 68 landmarks are the FLAME landmarks projected with `cameras.project`
(pixels, origin top-left corner).

Deterministic: everything random comes from `item_rng(seed, index)` (via the scene's
parameters and the seeds they hold); torch runs its CPU ops in a fixed order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from next3d.render.cameras import project, split_label
from next3d.render.projection import perspective_from_label
from next3d.render.rasterize import Fragments, rasterize
from next3d.render.triplane_coords import flame_to_world
from next3d.synthetic import background as bg_mod
from next3d.synthetic.distributions import SynthDistributions
from next3d.synthetic.appearance import eye_albedo
from next3d.synthetic.head import EYES, HAIR, NECK, SKIN, HeadAssets, load_head_assets
from next3d.synthetic.lighting import irradiance
from next3d.synthetic.scene import MAT_HAIR, MAT_HEAD, SceneMeshes, SceneParams, build_meshes, sample_scene

MIN_RESOLUTION, MAX_RESOLUTION = 32, 1024
# Adaptive supersampling: a sub-sample this far (camera z, world units; 6 mm on the FLAME head) from
# its pixel centre's depth marks an occlusion edge.
EDGE_DEPTH_TOL = 0.015


class SynthError(ValueError):
    """A bad synthetic-set request (resolution, count, split, ...), with a one-line message."""


@dataclass
class SyntheticItem:
    """One rendered item. image (R, R, 3) uint8; camera (25,) float32; flame: dict of float32 arrays;
    landmarks_2d (68, 2) float32 pixels; depth (R, R) float32; normals (R, R, 3) float32; mask (R, R)
    uint8; segmentation (R, R) uint8; vertices (V, 3) float32 FLAME space; appearance: JSON-able dict."""

    index: int
    image: np.ndarray
    camera: np.ndarray
    flame: Dict[str, np.ndarray]
    landmarks_2d: np.ndarray
    depth: np.ndarray
    normals: np.ndarray
    mask: np.ndarray
    segmentation: np.ndarray
    vertices: np.ndarray
    appearance: Dict

    def ground_truth(self) -> Dict[str, np.ndarray]:
        return {"depth": self.depth, "normals": self.normals, "mask": self.mask,
                "segmentation": self.segmentation, "vertices": self.vertices}


def check_resolution(resolution: int) -> None:
    if not isinstance(resolution, (int, np.integer)) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION \
            or resolution % 8:
        raise SynthError(f"resolution {resolution!r}: expected a multiple of 8 in [{MIN_RESOLUTION}, "
                         f"{MAX_RESOLUTION}] (64-512 recommended)")


def _rasterize(ndc: torch.Tensor, clip_w: torch.Tensor, faces: torch.Tensor, size: int) -> Fragments:
    # The scene's face indices are built by `build_meshes`: no range check (a host round trip) needed.
    return rasterize(ndc, faces, size, clip_w=clip_w, perspective_correct=True, check_indices=False)


def scene_normals(vertices: torch.Tensor, faces: torch.Tensor):
    """Unit area-weighted vertex normals (V, 3) of vertices (V, 3) and faces (F, 3) int64 (the same sums,
    in the same order, as `mesh_shading.vertex_normals`, accumulated in place: 2-3x faster), and the
    face normals (F, 3) (not normalised: length = twice the area)."""
    tri = vertices[faces]
    face_n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals.index_add_(0, faces[:, k], face_n)
    return F.normalize(normals, dim=-1, eps=1e-12), face_n


def _interpolate(faces: torch.Tensor, face_normals: torch.Tensor, vertex_attrs: torch.Tensor, fid: torch.Tensor,
                 bary: torch.Tensor, cam_pos: torch.Tensor):
    """Attributes (N, C) of `vertex_attrs` (V, C) at N samples on faces `fid` (N,) with barycentrics
    (N, 3). The first 3 channels are normals: renormalised and flipped to the camera's side where the
    face is seen from behind (`face_normals` (F, 3)); the next 3 world positions. Also returns the
    back flags (N,)."""
    corners = faces.index_select(0, fid)  # (N, 3)
    attrs = vertex_attrs.index_select(0, corners[:, 0]) * bary[:, 0:1]
    attrs.addcmul_(vertex_attrs.index_select(0, corners[:, 1]), bary[:, 1:2])
    attrs.addcmul_(vertex_attrs.index_select(0, corners[:, 2]), bary[:, 2:3])
    n = F.normalize(attrs[:, :3], dim=-1, eps=1e-12)
    back = (face_normals.index_select(0, fid) * (cam_pos - attrs[:, 3:6])).sum(-1) < 0
    attrs[:, :3] = torch.where(back[:, None], -n, n)
    return attrs, back


@dataclass
class _Samples:
    """The shading samples of one image: `fid` (N,), `bary` (N, 3). The first `num_centre` are pixel
    centres of the output pixels `centre_pix` (flat ids); the rest are the covered sub-samples of the
    edge pixels `edge_pix` (flat ids), sample num_centre + k belonging to edge pixel `owner[k]`."""

    fid: torch.Tensor
    bary: torch.Tensor
    num_centre: int
    centre_pix: torch.Tensor
    edge_pix: torch.Tensor
    owner: torch.Tensor


def _adaptive_samples(centre: Fragments, sub: Optional[Fragments], face_key: torch.Tensor, face_fine: torch.Tensor,
                      resolution: int, factor: int, depth_tol: float) -> _Samples:
    """Adaptive supersampling: an output pixel is shaded once at its centre (`centre`, the fragments at
    R) unless it is an edge pixel: one whose factor x factor sub-samples (`sub`, at factor x R) are not
    all on the centre's surface (`face_key` (F,): the same part and class; the background counts as a
    surface), or lie more than `depth_tol` (camera z) from the centre's depth (an occlusion edge), or
    whose centre lies on a face of fine detail (`face_fine` (F,) bool, the eyes). Edge pixels are
    shaded at every covered sub-sample and box-filtered."""
    n_pix = resolution * resolution
    fid_c = centre.face_idx[0].reshape(n_pix)
    cov_c = fid_c >= 0
    bary_c = centre.bary[0].reshape(n_pix, 3)
    if factor <= 1 or sub is None:
        pix = torch.nonzero(cov_c).squeeze(1)
        empty = torch.zeros(0, dtype=torch.long)
        return _Samples(fid=fid_c[pix], bary=bary_c[pix], num_centre=int(pix.numel()), centre_pix=pix,
                        edge_pix=empty, owner=empty)
    ss = factor * factor
    size = resolution * factor
    key_c = torch.where(cov_c, face_key[fid_c.clamp(min=0)], -1)
    fid_s = sub.face_idx[0]  # (size, size)
    cov_s = fid_s >= 0
    key_s = torch.where(cov_s, face_key[fid_s.clamp(min=0)], -1)
    grid = (resolution, factor, resolution, factor)  # a view of (size, size): pixel row, sub-row, column, sub-column
    key_cg = key_c.view(resolution, 1, resolution, 1)
    edge = (key_s.view(grid) != key_cg).any(3).any(1)
    far = (sub.depth[0].view(grid) - centre.depth[0].view(resolution, 1, resolution, 1)).abs() > depth_tol
    far &= cov_s.view(grid) & (key_cg >= 0)
    edge = (edge | far.any(3).any(1)).reshape(n_pix) | (cov_c & face_fine[fid_c.clamp(min=0)])
    centre_pix = torch.nonzero(cov_c & ~edge).squeeze(1)
    edge_pix = torch.nonzero(edge).squeeze(1)
    # Flat ids of the sub-samples of every edge pixel (E, ss).
    row, col = edge_pix // resolution, edge_pix % resolution
    offs = (torch.arange(factor)[:, None] * size + torch.arange(factor)[None, :]).reshape(-1)
    sub_ids = ((row * factor) * size + col * factor)[:, None] + offs[None, :]
    e_fid = fid_s.reshape(-1)[sub_ids]
    e_cov = e_fid >= 0
    owner = torch.arange(edge_pix.numel())[:, None].expand(-1, ss)[e_cov]
    fid = torch.cat([fid_c[centre_pix], e_fid[e_cov]])
    bary = torch.cat([bary_c[centre_pix], sub.bary[0].reshape(-1, 3)[sub_ids[e_cov]]])
    return _Samples(fid=fid, bary=bary, num_centre=int(centre_pix.numel()), centre_pix=centre_pix,
                    edge_pix=edge_pix, owner=owner)


def shadow_map_size(resolution: int) -> int:
    """Side of the key light's shadow map for an output resolution: 1.5 texels per output pixel
    (the map spans about twice the head), within [128, 320]."""
    return int(min(320, max(128, 3 * resolution // 2)))


def _shadow(world: torch.Tensor, faces: torch.Tensor, light_dir: torch.Tensor, points: torch.Tensor,
            normals: torch.Tensor, size: int = 320, extent: float = 0.75) -> torch.Tensor:
    """Fraction (N,) of light reaching world points (N, 3) with normals (N, 3) from direction light_dir
    (towards the light): an orthographic shadow map, looked up at the point moved along its normal
    (normal-offset shadows: no acne) with 5 taps for soft edges."""
    l = F.normalize(light_dir, dim=0)
    up0 = torch.tensor([0.0, 1.0, 0.0]) if abs(float(l[1])) < 0.9 else torch.tensor([1.0, 0.0, 0.0])
    right = F.normalize(torch.cross(up0, l, dim=0), dim=0)
    up = torch.cross(l, right, dim=0)
    centre = torch.tensor([0.0, 0.0, 0.15])

    def to_light(p):
        q = p - centre
        return torch.stack([(q @ right) / extent, -(q @ up) / extent, -(q @ l)], -1)

    frags = rasterize(to_light(world)[None], faces, size, check_indices=False)
    depth = torch.where(frags.mask, frags.depth, torch.full_like(frags.depth, 1e3))[0]
    q = to_light(points + 0.012 * normals)
    grid = q[:, :2].reshape(1, 1, -1, 2)
    lit = torch.zeros(points.shape[0])
    taps = ((0.0, 0.0), (1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0))
    for dx, dy in taps:
        off = torch.tensor([dx, dy]) * (2.0 / size)
        d = F.grid_sample(depth[None, None], grid + off, mode="nearest", padding_mode="border", align_corners=False)
        lit = lit + (q[:, 2] <= d.reshape(-1) + 0.006).float()
    return lit / len(taps)


def _tonemap(x: torch.Tensor) -> torch.Tensor:
    """Linear radiance -> display [0, 1] with a soft shoulder, then the sRGB curve."""
    y = 1.0 - torch.exp(-1.25 * x.clamp(min=0))
    return torch.where(y <= 0.0031308, 12.92 * y, 1.055 * y.clamp(min=1e-8) ** (1 / 2.4) - 0.055).clamp(0, 1)


def render_scene(assets: HeadAssets, scene: SceneParams, resolution: int, supersample: int = 2,
                 shadows: bool = True, index: int = 0) -> SyntheticItem:
    """Render `scene` at `resolution` (see the module docstring)."""
    check_resolution(resolution)
    with torch.no_grad():
        meshes = build_meshes(assets, scene, resolution)
        return _render(assets, scene, meshes, resolution, supersample, shadows, index)


def _render(assets: HeadAssets, scene: SceneParams, m: SceneMeshes, resolution: int, supersample: int,
            shadows: bool, index: int) -> SyntheticItem:
    app = scene.appearance
    light = app["lighting"]
    c = torch.as_tensor(scene.camera, dtype=torch.float32)[None]
    c2w, _ = split_label(c)
    cam_pos = c2w[0, :3, 3]
    world = flame_to_world(m.vertices)
    faces = m.faces
    normals_world, face_normals = scene_normals(world, faces)
    ndc, clip_w = perspective_from_label(world[None], c)
    centre = _rasterize(ndc, clip_w, faces, resolution)
    sub = _rasterize(ndc, clip_w, faces, resolution * supersample) if supersample > 1 else None
    head_neck = (m.face_part == 0) & (m.face_cls == NECK)  # the head's skin and neck: one surface
    face_key = m.face_part * 8 + torch.where(head_neck, torch.full_like(m.face_cls, SKIN), m.face_cls).long()
    smp = _adaptive_samples(centre, sub, face_key, m.face_cls == EYES, resolution, supersample, EDGE_DEPTH_TOL)
    fid, bary = smp.fid, smp.bary
    vattr = torch.cat([normals_world, world, m.albedo, m.specular[:, None], m.tangent, m.eye_local], -1)
    attrs, back = _interpolate(faces, face_normals, vattr, fid, bary, cam_pos)
    nn_, pp, albedo, spec, t = attrs[:, 0:3], attrs[:, 3:6], attrs[:, 6:9], attrs[:, 9], attrs[:, 10:13]
    mat = m.face_mat.index_select(0, fid)
    cls = m.face_cls.index_select(0, fid)
    uv = (m.uv_corners.index_select(0, fid) * bary[:, :, None]).sum(1)  # (N, 2)
    for mat_id, tex in ((MAT_HEAD, m.head_texture), (MAT_HAIR, m.hair_texture)):
        sel = torch.nonzero(mat == mat_id).squeeze(1)
        if sel.numel():
            samp = F.grid_sample(tex[None], uv[sel].reshape(1, 1, -1, 2), mode="bilinear", padding_mode="border",
                                 align_corners=False)[0, :, 0].T  # (N, 4)
            albedo[sel] = samp[:, :3]
            if mat_id == MAT_HEAD:
                spec[sel] = samp[:, 3]
    eyes = cls == EYES
    if bool(eyes.any()):
        albedo[eyes] = eye_albedo(attrs[eyes, 13:16], app["skin"])

    # Lighting (world space).
    sh = torch.tensor(light["sh"], dtype=torch.float32)
    l_dir = F.normalize(torch.tensor(light["key_direction"], dtype=torch.float32), dim=0)
    key = torch.tensor(light["key_rgb"], dtype=torch.float32) * light["key_intensity"]
    view = F.normalize(cam_pos - pp, dim=-1)
    ndl = (nn_ @ l_dir)
    lit = _shadow(world, faces, l_dir, pp, nn_, size=shadow_map_size(resolution)) if shadows else torch.ones(pp.shape[0])
    is_hair = cls == HAIR
    wrap = torch.where(is_hair, 0.35, 0.2)
    diffuse_key = ((ndl + wrap) / (1 + wrap)).clamp(min=0) * lit
    diffuse = irradiance(nn_, sh) + key * diffuse_key[:, None]
    h = F.normalize(l_dir + view, dim=-1)
    shin = m.face_shininess.index_select(0, fid)
    ndh = (nn_ * h).sum(-1).clamp(min=0)
    has_t = t.norm(dim=-1) > 0.5
    tdh = (F.normalize(t, dim=-1, eps=1e-9) * h).sum(-1)
    strand = (1 - tdh * tdh).clamp(min=0).sqrt()
    lobe = torch.where(has_t, strand, ndh) ** shin * (shin + 8) / 40.0
    specular = spec * lobe * (ndl > 0).float() * lit
    # Environment reflection on wet/shiny surfaces (eyes, lips): a soft sky term.
    env = spec[:, None] * 0.15 * irradiance(F.normalize(2 * (nn_ * view).sum(-1, keepdim=True) * nn_ - view, dim=-1), sh)
    a = albedo
    dim = torch.where(back, m.face_backdim.index_select(0, fid), torch.ones_like(shin))
    hair_tint = torch.where(is_hair[:, None], a * 1.5 + 0.2, torch.ones_like(a))
    colour = (a * diffuse + specular[:, None] * key * hair_tint + env) * (dim * light["exposure"])[:, None]

    # Composite over the background (rendered at R): centre-shaded pixels take their sample, edge
    # pixels the box filter of their sub-samples (uncovered ones show the background).
    img = bg_mod.background_image(app["background"], resolution).reshape(3, -1).T.contiguous()
    nc = smp.num_centre
    if smp.edge_pix.numel():
        ss = supersample * supersample
        acc = torch.zeros(smp.edge_pix.numel(), 3).index_add_(0, smp.owner, colour[nc:])
        hits = torch.bincount(smp.owner, minlength=smp.edge_pix.numel()).float()
        img[smp.edge_pix] = (acc + (ss - hits)[:, None] * img[smp.edge_pix]) / ss
    img[smp.centre_pix] = colour[:nc]
    out = _tonemap(img.T.reshape(3, resolution, resolution))
    gen = torch.Generator().manual_seed(int(app["noise_seed"]))
    noise = torch.randn(3, resolution, resolution, generator=gen) * app["sensor_noise"]
    out = (out + noise).clamp(0, 1)
    image = (out * 255 + 0.5).floor().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()

    gt = ground_truth(world, faces, m.face_cls, c, resolution, frags=centre, normals=(normals_world, face_normals))
    lmk = project(flame_to_world(m.flame_landmarks)[None], c)[0, :, :2] * resolution
    return SyntheticItem(index=index, image=image, camera=np.asarray(scene.camera, np.float32),
                         flame={k: np.asarray(v, np.float32) for k, v in scene.flame.items()},
                         landmarks_2d=lmk.numpy().astype(np.float32), vertices=m.flame_vertices.numpy().astype(np.float32),
                         appearance=app, **gt)


def ground_truth(world: torch.Tensor, faces: torch.Tensor, face_cls: torch.Tensor, c: torch.Tensor, resolution: int,
                 frags: Optional[Fragments] = None, normals=None) -> Dict[str, np.ndarray]:
    """depth, normals (camera space, OpenCV), mask and segmentation at the pixel centres of the scene
    mesh world (V, 3) (world space), faces (F, 3), face_cls (F,) under the label c (1, 25). `frags`
    (its perspective-correct rasterisation at `resolution`) and `normals` (`scene_normals(world,
    faces)`) are made here when not given."""
    if frags is None:
        ndc, clip_w = perspective_from_label(world[None], c)
        frags = _rasterize(ndc, clip_w, faces, resolution)
    normals_world, face_normals = normals if normals is not None else scene_normals(world, faces)
    c2w, _ = split_label(c)
    count = resolution * resolution
    fid_all = frags.face_idx[0].reshape(count)
    pix = torch.nonzero(fid_all >= 0).squeeze(1)
    fid = fid_all[pix]
    attrs, _ = _interpolate(faces, face_normals, torch.cat([normals_world, world], -1), fid,
                            frags.bary[0].reshape(count, 3)[pix], c2w[0, :3, 3])
    normals_cam = torch.zeros(count, 3)
    normals_cam[pix] = attrs[:, :3] @ c2w[0, :3, :3]  # world -> camera: R^T n
    depth = torch.zeros(count)
    depth[pix] = frags.depth[0].reshape(-1)[pix]
    seg = torch.zeros(count, dtype=torch.uint8)
    seg[pix] = face_cls[fid]
    shape = (resolution, resolution)
    return {"depth": depth.reshape(shape).numpy(), "normals": normals_cam.reshape(*shape, 3).numpy(),
            "mask": (seg > 0).reshape(shape).numpy().astype(np.uint8), "segmentation": seg.reshape(shape).numpy()}


def render_item(config: Optional[SynthDistributions], index: int, seed: int, resolution: int = 256,
                flame_dir: Optional[str] = None, assets: Optional[HeadAssets] = None) -> SyntheticItem:
    """Draw item `index` of the set with `seed` from `config` (default distributions) and render it."""
    config = config or SynthDistributions()
    assets = assets or load_head_assets(flame_dir)
    scene = sample_scene(config, assets, seed, index)
    return render_scene(assets, scene, resolution, config.supersample, config.shadows, index)
