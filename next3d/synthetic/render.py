"""Render one synthetic item: `render_item(config, index, seed) -> SyntheticItem`.

The scene (`scene.build_meshes`, FLAME space) goes to world space with
`triplane_coords.flame_to_world` (world = 2.5 (x, y + 0.01, z), the box the Next3D generator
renders) and is rasterised under the item's EG3D camera label (`projection.perspective_from_label`,
perspective-correct) at `supersample` x the resolution; every pixel is shaded (UV albedo or vertex
colour, SH environment + key light with a shadow map, Blinn-Phong or strand highlights) in
linear RGB, composited over the background, box-filtered down, tone-mapped, sRGB-encoded and
quantised. Ground truth comes from one more rasterisation at the output resolution (pixel
centres, as `mesh_shading.render_mesh`): depth (camera z, world units; 0 where empty), camera-space
normals (OpenCV axes, facing the camera), mask, segmentation (0 background, 1 skin, 2 hair,
3 neck/shoulders/clothing, 4 eyes, 5 mouth interior); the 68 landmarks are the FLAME landmarks
projected with `cameras.project` (pixels, origin top-left corner).

Deterministic: everything random comes from `item_rng(seed, index)` (via the scene's
parameters and the seeds they hold); torch runs its CPU ops in a fixed order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from next3d.render.cameras import project, split_label
from next3d.render.mesh_shading import vertex_normals
from next3d.render.projection import perspective_from_label
from next3d.render.rasterize import rasterize
from next3d.render.triplane_coords import flame_to_world
from next3d.synthetic import background as bg_mod
from next3d.synthetic.distributions import SynthDistributions
from next3d.synthetic.appearance import eye_albedo
from next3d.synthetic.head import EYES, HAIR, HeadAssets, load_head_assets
from next3d.synthetic.lighting import irradiance
from next3d.synthetic.scene import MAT_HAIR, MAT_HEAD, SceneMeshes, SceneParams, build_meshes, sample_scene

MIN_RESOLUTION, MAX_RESOLUTION = 32, 1024


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


def _ndc_and_frags(world: torch.Tensor, faces: torch.Tensor, c: torch.Tensor, size: int):
    ndc, w = perspective_from_label(world[None], c)
    frags = rasterize(ndc, faces, size, clip_w=w, perspective_correct=True)
    return frags


def _covered(frags, world: torch.Tensor, faces: torch.Tensor, vertex_attrs: torch.Tensor, cam_pos: torch.Tensor):
    """Covered pixels only: flat pixel ids (N,), face ids (N,), interpolated attributes (N, C) of
    `vertex_attrs` (V, C) whose first 3 channels are normals (renormalised and flipped to the
    camera's side where the face is seen from behind) and next 3 world positions; back flags (N,);
    barycentrics (N, 3)."""
    face_idx = frags.face_idx[0].reshape(-1)
    pix = torch.nonzero(face_idx >= 0).squeeze(1)
    fid = face_idx[pix]
    bary = frags.bary[0].reshape(-1, 3)[pix]
    corners = faces[fid]  # (N, 3)
    attrs = (vertex_attrs[corners] * bary[..., None]).sum(1)
    n = F.normalize(attrs[:, :3], dim=-1, eps=1e-12)
    pos = attrs[:, 3:6]
    tri = world[corners]
    face_n = torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1)
    back = (face_n * (cam_pos - pos)).sum(-1) < 0
    attrs = torch.cat([torch.where(back[:, None], -n, n), attrs[:, 3:]], dim=1)
    return pix, fid, attrs, back, bary


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

    frags = rasterize(to_light(world)[None], faces, size)
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
    normals_world = vertex_normals(world[None], faces)[0]
    size = resolution * supersample
    frags = _ndc_and_frags(world, faces, c, size)
    vattr = torch.cat([normals_world, world, m.albedo, m.specular[:, None], m.tangent, m.eye_local], -1)
    pix, fid, attrs, back, bary = _covered(frags, world, faces, vattr, cam_pos)
    nn_, pp, albedo, spec, t = attrs[:, 0:3], attrs[:, 3:6], attrs[:, 6:9], attrs[:, 9], attrs[:, 10:13]
    mat = m.face_mat[fid]
    cls = m.face_cls[fid]
    uv = (m.uv_corners[fid] * bary[..., None]).sum(1)  # (N, 2)
    for mat_id, tex in ((MAT_HEAD, m.head_texture), (MAT_HAIR, m.hair_texture)):
        sel = mat == mat_id
        if bool(sel.any()):
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
    lit = _shadow(world, faces, l_dir, pp, nn_, size=min(320, 2 * resolution)) if shadows else torch.ones(pp.shape[0])
    wrap = torch.where(cls == HAIR, 0.35, 0.2)
    diffuse_key = ((ndl + wrap) / (1 + wrap)).clamp(min=0) * lit
    # Subsurface-like warm terminator on skin: shadowed side a little redder.
    diffuse = irradiance(nn_, sh) + key * diffuse_key[:, None]
    h = F.normalize(l_dir + view, dim=-1)
    shin = m.face_shininess[fid]
    ndh = (nn_ * h).sum(-1).clamp(min=0)
    has_t = t.norm(dim=-1) > 0.5
    tdh = (F.normalize(t, dim=-1, eps=1e-9) * h).sum(-1)
    strand = (1 - tdh * tdh).clamp(min=0).sqrt()
    lobe = torch.where(has_t, strand ** shin, ndh ** shin) * (shin + 8) / 40.0
    specular = spec * lobe * (ndl > 0).float() * lit
    # Environment reflection on wet/shiny surfaces (eyes, lips): a soft sky term.
    env = spec[:, None] * 0.15 * irradiance(F.normalize(2 * (nn_ * view).sum(-1, keepdim=True) * nn_ - view, dim=-1), sh)
    a = albedo
    dim = torch.where(back, m.face_backdim[fid], torch.ones_like(shin))
    hair_tint = torch.where((cls == HAIR)[:, None], a * 1.5 + 0.2, torch.ones_like(a))
    colour = (a * diffuse + specular[:, None] * key * hair_tint + env) * dim[:, None]

    img = bg_mod.background_image(app["background"], size).reshape(3, -1).T.contiguous()
    img[pix] = colour * light["exposure"]
    img = img.T.reshape(1, 3, size, size)
    if supersample > 1:
        img = F.avg_pool2d(img, supersample)
    out = _tonemap(img[0])
    gen = torch.Generator().manual_seed(int(app["noise_seed"]))
    noise = torch.randn(3, resolution, resolution, generator=gen) * app["sensor_noise"]
    out = (out + noise).clamp(0, 1)
    image = (out * 255 + 0.5).floor().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()

    gt = ground_truth(world, faces, normals_world, m.face_cls, c, resolution)
    lmk = project(flame_to_world(m.flame_landmarks)[None], c)[0, :, :2] * resolution
    return SyntheticItem(index=index, image=image, camera=np.asarray(scene.camera, np.float32),
                         flame={k: np.asarray(v, np.float32) for k, v in scene.flame.items()},
                         landmarks_2d=lmk.numpy().astype(np.float32), vertices=m.flame_vertices.numpy().astype(np.float32),
                         appearance=app, **gt)


def ground_truth(world: torch.Tensor, faces: torch.Tensor, normals_world: torch.Tensor, face_cls: torch.Tensor,
                 c: torch.Tensor, resolution: int) -> Dict[str, np.ndarray]:
    """depth, normals (camera space, OpenCV), mask and segmentation at pixel centres."""
    frags = _ndc_and_frags(world, faces, c, resolution)
    c2w, _ = split_label(c)
    pix, fid, attrs, _, _ = _covered(frags, world, faces, torch.cat([normals_world, world], -1), c2w[0, :3, 3])
    count = resolution * resolution
    normals = torch.zeros(count, 3)
    normals[pix] = attrs[:, :3] @ c2w[0, :3, :3]  # world -> camera: R^T n
    depth = torch.zeros(count)
    depth[pix] = frags.depth[0].reshape(-1)[pix]
    seg = torch.zeros(count, dtype=torch.uint8)
    seg[pix] = face_cls[fid]
    shape = (resolution, resolution)
    return {"depth": depth.reshape(shape).numpy(), "normals": normals.reshape(*shape, 3).numpy(),
            "mask": (seg > 0).reshape(shape).numpy().astype(np.uint8), "segmentation": seg.reshape(shape).numpy()}


def render_item(config: Optional[SynthDistributions], index: int, seed: int, resolution: int = 256,
                flame_dir: Optional[str] = None, assets: Optional[HeadAssets] = None) -> SyntheticItem:
    """Draw item `index` of the set with `seed` from `config` (default distributions) and render it."""
    config = config or SynthDistributions()
    assets = assets or load_head_assets(flame_dir)
    scene = sample_scene(config, assets, seed, index)
    return render_scene(assets, scene, resolution, config.supersample, config.shadows, index)
