"""Photometric refinement of a landmark fit on the image's pixels: `refine_photometric`.

After the landmark stages (`landmark_fit.fit_landmarks`) the head is rendered through the
project's rasteriser (`next3d.render.rasterize`, perspective-correct, the same camera model as
the landmarks) at a small resolution and compared with the crop, batched:

    colour(p) = albedo(uv(p)) * E(n(p)),   E(n) = sum_j L_j Y_j(n)   (per RGB channel)

* albedo: the low-dimensional UV albedo of `albedo_basis` (PCA of the synthetic skin model),
  K coefficients per item with a unit Gaussian prior;
* lighting: second-order spherical harmonics, 9 x 3 coefficients per item, in CAMERA space
  (OpenCV axes) on camera-space normals, so no assumption about the scene; the irradiance is
  the plain SH expansion (the cosine convolution is folded into the coefficients);
* compared in linear RGB (the image sRGB-decoded) with a robust loss over a mask of the FACE
  REGION: pixels the render covers with skin faces (FLAME face class 1: not eyeballs, mouth
  interior, neck) that lie inside the detected landmarks' outline (jaw contour and brows), so
  hair, background, neck and the mouth's inside never count.

Gradients reach the geometry through `interpolate.barycentrics_differentiable` (texture and
shading move with the vertices; visibility is held fixed per step). Stages: (1) lighting and
albedo only, geometry fixed; (2) everything: camera, shape, expression, jaw (neck and eyes
held by their priors) with the landmark objective and priors of the landmark fit kept, plus
`photo_weight` x the photometric term. Items are independent (per-item sums, Adam).

Coordinates: images (B, H, W, 3) uint8 square crops, the same the landmarks were found on;
landmarks in their pixels (corner origin).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from next3d.fitting import camera_frame
from next3d.fitting.albedo_basis import AlbedoBasis
from next3d.fitting.landmark_fit import (FitConfig, FitResult, POSE_NAMES, landmark_loss, prior_loss,
                                         project_landmarks, torch_threads)
from next3d.fitting.landmark_head import LandmarkHead, contour_rows
from next3d.flame.layer import FLAME
from next3d.render.interpolate import barycentrics_differentiable, interpolate, interpolate_face_attrs
from next3d.render.mesh_shading import vertex_normals
from next3d.render.projection import perspective_from_label
from next3d.render.rasterize import rasterize
from next3d.render.triplane_coords import flame_to_world
from torch_utils.misc import assert_shape

SKIN_CLASS = 1
# Outline of the face region from the iBUG 68: the jaw contour 0..16, then the brows 26..17.
FACE_OUTLINE = tuple(range(17)) + tuple(range(26, 16, -1))
_SH_C = (0.282095, 0.488603, 1.092548, 0.315392, 0.546274)


@dataclass(frozen=True)
class PhotometricConfig:
    """Settings of `refine_photometric`."""

    resolution: int = 128
    """Side of the renders compared with the (downsampled) crops, pixels."""
    light_iters: int = 40
    """Adam steps of stage 1 (lighting and albedo only)."""
    iters: int = 60
    """Adam steps of stage 2 (everything)."""
    lr_light: float = 0.05
    """Adam learning rate of the lighting and albedo coefficients."""
    lr: float = 0.01
    """Adam learning rate of the geometry (camera, shape, expression, jaw) in stage 2."""
    photo_weight: float = 300.0
    """Weight of the photometric term (a mean over the mask's pixels) against the landmark terms."""
    colour_sigma: float = 0.04
    """Robust-loss scale of colour residuals, linear RGB."""
    landmark_weight: float = 0.1
    """Weight of the landmark objective kept in stage 2 (low: the detector's bias is what the pixels
    correct; it still anchors the parts the mask does not see)."""
    albedo_prior: float = 0.05
    """Weight of |albedo coefficients|^2 (coefficients in standard deviations)."""
    rasterize_impl: str = "auto"
    """`rasterize` implementation."""


@dataclass(frozen=True)
class PhotometricResult:
    """fit: the refined FitResult; sh (B, 9, 3) camera-space SH lighting; albedo (B, K) coefficients;
    render (B, 3, R, R) and target (B, 3, R, R) linear RGB; mask (B, R, R) bool, the compared pixels;
    photo_error_before / photo_error_after (B,) mean absolute colour error over the mask
    (linear RGB, before stage 2 with the stage-1 lighting, and after)."""

    fit: FitResult
    sh: torch.Tensor
    albedo: torch.Tensor
    render: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    photo_error_before: torch.Tensor
    photo_error_after: torch.Tensor


@dataclass(frozen=True)
class PhotometricModel:
    """What the photometric stage needs of a head model: basis (`AlbedoBasis`), uv_corners (F, 3, 2)
    grid_sample UVs per face corner, face_class (F,) uint8 (1 = skin)."""

    basis: AlbedoBasis
    uv_corners: torch.Tensor
    face_class: np.ndarray


def load_photometric_model(flame_dir: Optional[str] = None) -> PhotometricModel:
    """The photometric model of the head in `flame_dir` (None: $NEXT3D_FLAME_DIR, else the built-in head)."""
    from next3d.fitting.albedo_basis import load_albedo_basis
    from next3d.flame.files import resolve_flame_dir
    from next3d.synthetic.head import load_head_assets

    resolved = resolve_flame_dir(flame_dir)
    assets = load_head_assets(resolved)
    return PhotometricModel(basis=load_albedo_basis(None if resolved is None else str(resolved)),
                            uv_corners=assets.uv_corners, face_class=assets.face_class)


def sh_basis(n: torch.Tensor) -> torch.Tensor:
    """Real second-order SH basis (..., 9) of unit directions (..., 3) (order: 1; y, z, x; xy, yz,
    3z^2 - 1, xz, x^2 - y^2)."""
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    c0, c1, c2, c3, c4 = _SH_C
    return torch.stack([torch.full_like(x, c0), c1 * y, c1 * z, c1 * x, c2 * x * y, c2 * y * z,
                        c3 * (3 * z * z - 1), c2 * x * z, c4 * (x * x - y * y)], -1)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB values in [0, 1] -> linear RGB."""
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def face_region_masks(landmarks_2d: np.ndarray, image_size: np.ndarray, resolution: int) -> torch.Tensor:
    """(B, R, R) bool: inside the polygon of `FACE_OUTLINE` of landmarks (B, 68, 2) (pixels of
    images of side image_size (B,)), drawn at `resolution`."""
    from PIL import Image, ImageDraw

    out = []
    for lm, size in zip(landmarks_2d, image_size):
        pts = lm[list(FACE_OUTLINE)] * (resolution / float(size))
        img = Image.new("L", (resolution, resolution), 0)
        # PIL polygons use pixel-centre integer coordinates: shift the corner-origin points by -0.5.
        ImageDraw.Draw(img).polygon([(float(x) - 0.5, float(y) - 0.5) for x, y in pts], fill=1)
        out.append(torch.from_numpy(np.asarray(img, dtype=bool).copy()))
    return torch.stack(out)


def downsample_images(images: np.ndarray, resolution: int) -> torch.Tensor:
    """(B, H, W, 3) uint8 square crops -> (B, 3, R, R) linear RGB, area-resampled."""
    from PIL import Image

    out = []
    for img in images:
        if img.shape[0] != img.shape[1]:
            raise ValueError(f"images: expected square crops, got {img.shape[1]} x {img.shape[0]}")
        small = np.asarray(Image.fromarray(img).resize((resolution, resolution), Image.BOX), dtype=np.float32)
        out.append(torch.from_numpy(small).permute(2, 0, 1) / 255.0)
    return srgb_to_linear(torch.stack(out))


class _Renderer:
    """Differentiable albedo x SH renders of FLAME meshes, and their face-region masks."""

    def __init__(self, flame: FLAME, uv_corners: torch.Tensor, face_class: np.ndarray, basis: AlbedoBasis,
                 resolution: int, impl: str):
        self.flame, self.basis, self.res, self.impl = flame, basis, resolution, impl
        self.faces = flame.faces.long()
        self.uv_corners = uv_corners.float()
        self.skin_face = torch.as_tensor(np.asarray(face_class) == SKIN_CLASS)

    def __call__(self, params: Dict[str, torch.Tensor], c: torch.Tensor, sh: torch.Tensor, coeff: torch.Tensor):
        verts = self.flame(**params).vertices
        world = flame_to_world(verts)
        ndc, w = perspective_from_label(world, c)
        with torch.no_grad():
            frags = rasterize(ndc.detach(), self.faces, self.res, clip_w=w.detach(), perspective_correct=True,
                              impl=self.impl)
        bary = barycentrics_differentiable(frags, ndc, self.faces, clip_w=w, perspective_correct=True)
        uv = interpolate_face_attrs(frags, self.uv_corners, bary=bary, check_indices=False)  # (B, R, R, 2)
        tex = self.basis.albedo(coeff).clamp(0.0, 1.0)
        albedo = F.grid_sample(tex, uv, mode="bilinear", padding_mode="border", align_corners=False)
        c2w = c[:, :16].reshape(-1, 4, 4)
        rot_w2c = c2w[:, :3, :3].transpose(1, 2)
        n_cam = torch.einsum("bij,bvj->bvi", rot_w2c, vertex_normals(world, self.faces))
        n = F.normalize(interpolate(frags, n_cam, self.faces, bary=bary, check_indices=False), dim=-1, eps=1e-9)
        irr = torch.einsum("bhwk,bkc->bchw", sh_basis(n), sh)  # (B, 3, R, R)
        skin = self.skin_face[frags.face_idx.clamp(min=0)] & frags.mask
        return albedo * irr, skin


def _robust(x):
    return torch.sqrt(1.0 + x * x) - 1.0


def refine_photometric(images: np.ndarray, landmarks_2d: torch.Tensor, init: FitResult, flame: FLAME,
                       basis: AlbedoBasis, uv_corners: torch.Tensor, face_class: np.ndarray,
                       config: PhotometricConfig = PhotometricConfig(), fit_config: FitConfig = FitConfig(),
                       landmark_offsets: Optional[torch.Tensor] = None) -> PhotometricResult:
    """Refine a landmark fit on the pixels of its crops.

    Args:
        images: (B, S, S, 3) uint8 crops (any S; they are area-resampled to config.resolution).
        landmarks_2d: (B, 68, 2) the landmarks the fit used, crop pixels.
        init: the landmark fit of those crops (`fit_landmarks`).
        flame: the FLAME layer of the fit.
        basis: `albedo_basis.AlbedoBasis` of this head model.
        uv_corners: (F, 3, 2) grid_sample UV coordinates of every face corner (`HeadAssets.uv_corners`).
        face_class: (F,) classes of the faces (`HeadAssets.face_class`; 1 = skin).
        config: `PhotometricConfig`; fit_config: the landmark fit's config (its terms and priors are kept).
        landmark_offsets: the detector calibration used by the landmark fit, or None.
    Returns:
        PhotometricResult.
    """
    with torch_threads(fit_config.num_threads):
        return _refine(images, landmarks_2d, init, flame, basis, uv_corners, face_class, config, fit_config,
                       landmark_offsets)


def _refine(images, landmarks_2d, init, flame, basis, uv_corners, face_class, config, fit_config, offsets):
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images: expected (B, S, S, 3) uint8 crops, got {images.shape} {images.dtype}")
    batch, size = images.shape[0], images.shape[1]
    assert_shape(landmarks_2d, [batch, 68, 2], "landmarks_2d")
    assert_shape(init.cameras, [batch, 25], "init.cameras")
    assert_shape(uv_corners, [flame.faces.shape[0], 3, 2], "uv_corners")
    if len(face_class) != flame.faces.shape[0]:
        raise ValueError(f"face_class: expected {flame.faces.shape[0]} faces, got {len(face_class)}")
    res = int(config.resolution)
    target = downsample_images(images, res)
    region = face_region_masks(np.asarray(landmarks_2d, dtype=np.float64), np.full(batch, size), res)
    render = _Renderer(flame, uv_corners, face_class, basis, res, config.rasterize_impl)
    head = LandmarkHead(flame)
    lm_target = landmarks_2d.float() / size
    offsets = None if offsets is None else offsets.float()

    rot, trans = camera_frame.camera_params_from_label(init.cameras.double())
    cam = torch.cat([rot, trans], 1).float().requires_grad_(True)
    shape = init.flame["shape"].clone().requires_grad_(fit_config.fit_shape)
    expr = init.flame["expression"].clone().requires_grad_(True)
    poses = torch.cat([init.flame[k] for k in POSE_NAMES], 1).clone().requires_grad_(True)
    coeff = torch.zeros(batch, basis.num_components, requires_grad=True)
    sh = torch.zeros(batch, 9, 3)
    sh[:, 0] = 1.0 / _SH_C[0]
    sh.requires_grad_(True)

    def params():
        out = {"shape": shape, "expression": expr}
        for k, nm in enumerate(POSE_NAMES):
            out[nm] = poses[:, 3 * k:3 * (k + 1)]
        return out

    def photo_term(c, full=False):
        img, skin = render(params(), c, sh, coeff)
        mask = (skin & region).float()  # (B, R, R)
        count = mask.sum((1, 2)).clamp(min=1.0)
        diff = _robust((img - target) / config.colour_sigma).sum(1)  # (B, R, R)
        loss = (diff * mask).sum((1, 2)) / count
        if full:
            err = ((img - target).abs().mean(1) * mask).sum((1, 2)) / count
            return loss, img, mask.bool(), err
        return loss

    def landmarks_uv(c):
        sh_full = shape.expand(batch, -1)
        pose = torch.cat([torch.zeros(batch, 3), poses], 1)
        pose = F.pad(pose, (0, 3 * head.num_joints - pose.shape[1]))
        rows = contour_rows(camera_frame.head_rotation(c)) if head.has_dynamic_contour else None
        lmk = head(F.pad(sh_full, (0, head.num_shape - sh_full.shape[1])),
                   F.pad(expr, (0, head.num_expression - expr.shape[1])), pose, rows)
        if offsets is not None:
            lmk = lmk + offsets
        return project_landmarks(lmk, c)

    c0 = init.cameras.float()
    opt = torch.optim.Adam([sh, coeff], lr=config.lr_light)
    for _ in range(config.light_iters):
        opt.zero_grad(set_to_none=True)
        loss = config.photo_weight * photo_term(c0) + config.albedo_prior * (coeff ** 2).sum(1)
        loss.sum().backward()
        opt.step()
    with torch.no_grad():
        _, _, _, err_before = photo_term(c0, full=True)

    geometry = [cam, expr, poses] + ([shape] if fit_config.fit_shape else [])
    opt = torch.optim.Adam([{"params": geometry, "lr": config.lr}, {"params": [sh, coeff], "lr": config.lr_light}])
    for _ in range(config.iters):
        opt.zero_grad(set_to_none=True)
        c = camera_frame.camera_label(cam[:, :3], cam[:, 3:])
        loss = config.photo_weight * photo_term(c) + config.albedo_prior * (coeff ** 2).sum(1)
        loss = loss + config.landmark_weight * landmark_loss(landmarks_uv(c), lm_target, fit_config)
        loss = loss + prior_loss(expr, poses, shape if fit_config.fit_shape else None, fit_config)
        loss.sum().backward()
        opt.step()

    with torch.no_grad():
        c = camera_frame.camera_label(cam[:, :3], cam[:, 3:])
        _, img, mask, err_after = photo_term(c, full=True)
        px = landmarks_uv(c) * size
        err = (px - landmarks_2d.float()).norm(dim=-1).mean(1)
        flame_params = {k: v.detach().clone() for k, v in params().items()}
        fit = FitResult(cameras=c.detach().clone(), flame=flame_params, landmarks_2d=px, error_px=err,
                        error_frac=err / size, angles=camera_frame.camera_angles(c))
        return PhotometricResult(fit=fit, sh=sh.detach().clone(), albedo=coeff.detach().clone(), render=img,
                                 target=target, mask=mask, photo_error_before=err_before,
                                 photo_error_after=err_after)

