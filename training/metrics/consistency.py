"""Multi-view 3D consistency: warp one view into another through the rendered depth.

Definition (`reprojection_error`). Two renders of one scene, A and B, with images
I_A, I_B (B, 3, ·, ·) in [-1, 1], along-ray depths D_A, D_B (B, 1, R, R) (world units,
as `G(...)["image_depth"]`) and camera labels c_A, c_B. Images are first resized to the
depth resolution R (bilinear, antialiased). For each pixel p of A (ray o_A + t d_p, the
rays of `next3d.render.ray_sampler.make_rays`): X = o_A + D_A(p) d_p; project X into B
(`cameras.project`) to normalised coordinates q and camera depth z_B. The pixel is
*co-visible* when z_B > 0, q lies inside B's image, the mask of A (if given) is set, and
B sees X: |D_B(q) − ‖X − o_B‖| < rel_tol · ‖X − o_B‖ (D_B read bilinearly). The error is
the mean absolute difference |I_A(p) − I_B(q)| (bilinear I_B, all channels, [-1, 1]
units; ×127.5 for 8-bit levels) over the co-visible pixels, per sample; `coverage` is
the co-visible fraction of A's pixels. A scene rendered exactly warps with error ~0;
wrong geometry (or view-dependent appearance) raises it.

Generator metric (`multiview_consistency`): sample k takes z_k, the FLAME parameters and
camera c_A of a random data-set item (as `sampling`), and c_B = c_A rotated about the
vertical axis through the orbit pivot by `yaw_offset` radians (sign alternating with k).
The latent is mapped once on c_A; both views are rendered with deterministic ray
samples. Reported: `consistency_l1` (the final image), `consistency_l1_raw` (the
volume-rendered raw image), `consistency_coverage`.

Geometry against ground truth (`geometry_error`, for renders of a known head, e.g. an
inverted synthetic item): mean |z − z_gt| (world units, camera-space z) and the mean
angle (degrees) between the normals of the rendered depth and the ground-truth normals,
over the ground-truth foreground.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from next3d.render.cameras import project, split_label
from next3d.render.ray_sampler import make_rays
from torch_utils.misc import assert_shape
from training.metrics.feature_nets import MetricError
from training.metrics.sampling import condition_indices, flame_input, generator_device, render

DEFAULT_REL_TOL = 0.02


def _to_res(image: torch.Tensor, res: int) -> torch.Tensor:
    if image.shape[-1] == res and image.shape[-2] == res:
        return image.float()
    return F.interpolate(image.float(), size=(res, res), mode="bilinear", align_corners=False, antialias=True)


def reprojection_error(image_a: torch.Tensor, depth_a: torch.Tensor, c_a: torch.Tensor, image_b: torch.Tensor,
                       depth_b: torch.Tensor, c_b: torch.Tensor, *, mask_a: Optional[torch.Tensor] = None,
                       rel_tol: float = DEFAULT_REL_TOL) -> Dict[str, torch.Tensor]:
    """Per-sample reprojection error of view B warped into view A (module docstring).

    image_a, image_b (B, 3, H, W) float [-1, 1]; depth_a, depth_b (B, 1, R, R) along-ray;
    c_a, c_b (B, 25); mask_a (B, 1, R, R) optional (nonzero = use).
    Returns {'l1' (B,), 'coverage' (B,), 'covisible' (B, 1, R, R) bool, 'warped' (B, 3, R, R)};
    'l1' is NaN for a sample without co-visible pixels.
    """
    assert_shape(depth_a, [None, 1, None, None], "depth_a")
    batch, _, res, res_w = depth_a.shape
    if res != res_w:
        raise MetricError(f"depth_a: expected square (B, 1, R, R), got {tuple(depth_a.shape)}")
    assert_shape(depth_b, [batch, 1, res, res], "depth_b")
    assert_shape(image_a, [batch, 3, None, None], "image_a")
    assert_shape(image_b, [batch, 3, None, None], "image_b")
    assert_shape(c_a, [batch, 25], "c_a")
    assert_shape(c_b, [batch, 25], "c_b")
    ia, ib = _to_res(image_a, res), _to_res(image_b, res)
    c_a, c_b = c_a.float(), c_b.float()

    origins, dirs = make_rays(c_a, res)                                   # (B, R*R, 3)
    points = origins + depth_a.float().reshape(batch, -1, 1) * dirs        # X in world space
    uvz = project(points, c_b)                                             # (B, R*R, 3)
    cam2world_b, _ = split_label(c_b)
    dist_b = (points - cam2world_b[:, None, :3, 3]).norm(dim=-1)          # ‖X − o_B‖
    grid = (uvz[..., :2] * 2 - 1).reshape(batch, res, res, 2)
    sample = lambda img: F.grid_sample(img, grid, mode="bilinear", padding_mode="border",  # noqa: E731
                                       align_corners=False)
    warped = sample(ib)                                                    # (B, 3, R, R)
    seen_depth = sample(depth_b.float()).reshape(batch, -1)
    half = 0.5 / res
    inside = ((uvz[..., 0] >= half) & (uvz[..., 0] <= 1 - half) & (uvz[..., 1] >= half) & (uvz[..., 1] <= 1 - half)
              & (uvz[..., 2] > 0))
    visible = (seen_depth - dist_b).abs() < rel_tol * dist_b
    covisible = (inside & visible & (depth_a.reshape(batch, -1) > 0)).reshape(batch, 1, res, res)
    if mask_a is not None:
        assert_shape(mask_a, [batch, 1, res, res], "mask_a")
        covisible = covisible & (mask_a != 0)
    weight = covisible.float()
    count = weight.sum(dim=(1, 2, 3))
    err = ((ia - warped).abs().mean(dim=1, keepdim=True) * weight).sum(dim=(1, 2, 3))
    l1 = torch.where(count > 0, err / count.clamp(min=1), torch.full_like(count, float("nan")))
    return {"l1": l1, "coverage": count / (res * res), "covisible": covisible, "warped": warped}


def rotate_about_pivot(c: torch.Tensor, yaw: torch.Tensor, pivot) -> torch.Tensor:
    """Camera labels (B, 25) rotated by `yaw` (B,) radians about the world y axis through `pivot`."""
    assert_shape(c, [None, 25], "camera label")
    cam2world, intr = split_label(c)
    cos, sin = torch.cos(yaw), torch.sin(yaw)
    rot = torch.zeros(c.shape[0], 4, 4, dtype=c.dtype, device=c.device)
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 2, 0], rot[:, 2, 2] = cos, sin, -sin, cos
    rot[:, 1, 1] = rot[:, 3, 3] = 1.0
    p = torch.as_tensor(pivot, dtype=c.dtype, device=c.device)
    shift = torch.eye(4, dtype=c.dtype, device=c.device).repeat(c.shape[0], 1, 1)
    back = shift.clone()
    shift[:, :3, 3] = p
    back[:, :3, 3] = -p
    new = shift @ rot @ back @ cam2world
    return torch.cat([new.reshape(-1, 16), intr.reshape(-1, 9)], dim=1)


@torch.no_grad()
def multiview_consistency(G: torch.nn.Module, dataset, num: int, *, batch: int = 4, seed: int = 0,
                          yaw_offset: float = 0.3, rel_tol: float = DEFAULT_REL_TOL,
                          truncation_psi: float = 1.0,
                          on_progress: Optional[Callable[[int], None]] = None) -> Dict[str, float]:
    """Generator metric (module docstring) -> {'consistency_l1', 'consistency_l1_raw', 'consistency_coverage',
    'consistency_num'}."""
    from next3d.generate import deterministic_rays

    if num < 1:
        raise MetricError(f"consistency: expected at least 1 sample, got {num}")
    if not 0 < abs(yaw_offset) < math.pi / 2:
        raise MetricError(f"consistency: yaw_offset must be in (0, pi/2) radians, got {yaw_offset}")
    device = generator_device(G)
    pivot = G.config.render.avg_camera_pivot
    indices = condition_indices(len(dataset), num, seed)
    z_all = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed))
    l1, l1_raw, coverage = [], [], []
    with deterministic_rays(G):
        for k, lo in enumerate(range(0, num, batch)):
            idx = indices[lo:lo + batch]
            items = [dataset[int(i)] for i in idx]
            c_a = torch.stack([torch.as_tensor(it["camera"]).float() for it in items]).to(device)
            signs = torch.tensor([1.0 if (lo + j) % 2 == 0 else -1.0 for j in range(len(idx))], device=device)
            c_b = rotate_about_pivot(c_a, signs * yaw_offset, pivot)
            flame = flame_input(G, items, device)
            ws = G.mapping(z_all[lo:lo + batch].to(device), c_a, truncation_psi=truncation_psi)
            out_a = render(G, None, c_a, flame, seed=seed * 100003 + k, ws=ws)
            out_b = render(G, None, c_b, flame, seed=seed * 100003 + k, ws=ws)
            for key, acc in (("image", l1), ("image_raw", l1_raw)):
                res = reprojection_error(out_a[key], out_a["image_depth"], c_a, out_b[key], out_b["image_depth"],
                                         c_b, rel_tol=rel_tol)
                acc.extend(res["l1"].cpu().tolist())
                if key == "image":
                    coverage.extend(res["coverage"].cpu().tolist())
            if on_progress is not None:
                on_progress(len(idx))
    return {"consistency_l1": float(np.nanmean(l1)) if np.isfinite(l1).any() else float("nan"),
            "consistency_l1_raw": float(np.nanmean(l1_raw)) if np.isfinite(l1_raw).any() else float("nan"),
            "consistency_coverage": float(np.mean(coverage)), "consistency_num": int(num)}


# --------------------------------------------------------------------------- geometry vs ground truth


def camera_points(depth: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Along-ray depth (B, 1, R, R) under labels c (B, 25) -> camera-space points (B, R, R, 3), OpenCV axes."""
    assert_shape(depth, [None, 1, None, None], "depth")
    batch, _, res, _ = depth.shape
    assert_shape(c, [batch, 25], "camera label")
    origins, dirs = make_rays(c.float(), res)
    cam2world, _ = split_label(c.float())
    dirs_cam = torch.einsum("bji,bnj->bni", cam2world[:, :3, :3], dirs)   # R^T d
    return (depth.float().reshape(batch, -1, 1) * dirs_cam).reshape(batch, res, res, 3)


def normals_from_points(points: torch.Tensor) -> torch.Tensor:
    """Unit normals (B, R, R, 3) of a camera-space point grid by central differences, facing the
    camera (n · p < 0); zero on the border."""
    dx = torch.zeros_like(points)
    dy = torch.zeros_like(points)
    dx[:, :, 1:-1] = points[:, :, 2:] - points[:, :, :-2]
    dy[:, 1:-1] = points[:, 2:] - points[:, :-2]
    n = torch.cross(dx, dy, dim=-1)
    n = torch.where(((n * points).sum(-1, keepdim=True) > 0), -n, n)
    return F.normalize(n, dim=-1, eps=1e-12)


def geometry_error(depth: torch.Tensor, c: torch.Tensor, gt_depth: torch.Tensor, gt_mask: torch.Tensor,
                   gt_normals: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """Rendered geometry against ground truth (the synthetic set's `gt/*.npz`), per sample.

    depth (B, 1, R, R) along-ray (G's image_depth); c (B, 25); gt_depth (B, R', R') camera-space z
    (0 = empty), gt_mask (B, R', R') foreground, gt_normals (B, R', R', 3) camera-space unit
    normals (OpenCV), as `docs/dataset_format.md`. Ground truth is resampled to R (nearest).
    Returns {'depth_l1' (B,): mean |z − z_gt| in world units over the foreground pixels with
    ground-truth depth, 'normal_deg' (B,): mean angle in degrees between the normals of the
    rendered depth (central differences of its back-projected points) and the ground truth's,
    over the same pixels away from depth edges} (NaN without pixels).
    """
    batch, _, res, _ = depth.shape
    assert_shape(gt_depth, [batch, None, None], "gt_depth")
    assert_shape(gt_mask, [batch, gt_depth.shape[1], gt_depth.shape[2]], "gt_mask")
    near = lambda x: F.interpolate(x.float(), size=(res, res), mode="nearest")  # noqa: E731
    z_gt = near(gt_depth[:, None])[:, 0]
    mask = (near(gt_mask[:, None])[:, 0] > 0) & (z_gt > 0)
    points = camera_points(depth, c)
    err = (points[..., 2] - z_gt).abs()
    count = mask.float().sum(dim=(1, 2))
    nan = torch.full_like(count, float("nan"))
    out = {"depth_l1": torch.where(count > 0, (err * mask).sum(dim=(1, 2)) / count.clamp(min=1), nan)}
    if gt_normals is not None:
        assert_shape(gt_normals, [batch, gt_depth.shape[1], gt_depth.shape[2], 3], "gt_normals")
        n_gt = F.normalize(near(gt_normals.permute(0, 3, 1, 2)).permute(0, 2, 3, 1), dim=-1, eps=1e-12)
        n = normals_from_points(points)
        # Interior pixels only: all four neighbours inside the mask (differences across edges are meaningless).
        inner = mask.clone()
        inner[:, 1:-1, 1:-1] &= mask[:, 2:, 1:-1] & mask[:, :-2, 1:-1] & mask[:, 1:-1, 2:] & mask[:, 1:-1, :-2]
        inner[:, [0, -1]] = False
        inner[:, :, [0, -1]] = False
        angle = torch.rad2deg(torch.acos((n * n_gt).sum(-1).clamp(-1, 1)))
        k = inner.float().sum(dim=(1, 2))
        out["normal_deg"] = torch.where(k > 0, (angle * inner).sum(dim=(1, 2)) / k.clamp(min=1), nan)
    return out
