"""FLAME + camera fit to 2D landmarks, DECA-style, batched: `fit_landmarks`.

Unknowns per item: FLAME shape, expression, jaw, neck and eye poses (axis-angle) and the
camera (rotation and translation about the EG3D pivot, `camera_frame`); FFHQ intrinsics
are fixed. FLAME's global rotation stays zero (head rotation is the camera's, as Next3D's
data). The model's landmarks go FLAME -> EG3D world (`flame_to_world`) -> image through
`next3d.render.cameras.project`; the jaw contour (iBUG 0..16) follows the head's yaw
relative to the camera (DECA's 79-row table, `landmark_head`).

Objective (residuals r in units of the image size, so a 512 crop and a 256 crop weigh alike):

* robust landmark term: sum_k w_k rho(|r_k| / sigma), rho(x) = sqrt(1 + x^2) - 1 (quadratic
  near 0, linear for outliers), w = `contour_weight` on the jaw contour, 1 elsewhere;
* eye- and lip-closure terms (DECA): the vertical eyelid gaps (37-41, 38-40, 43-47, 44-46)
  and inner-lip gaps (61-67, 62-66, 63-65) of the model match the detected ones, same rho;
* Gaussian priors: shape and expression (coefficients are in standard deviations), jaw
  (small, with its sideways and twist components and negative opening penalised harder),
  neck and eyes (unobservable from 68 landmarks with the head rotation in the camera: they
  stay near zero);
* optional temporal prior for sequences: `temporal_weight` * squared differences of
  consecutive items' expression, jaw, camera rotation and translation.

Stages: (0) closed-form initialisation of the camera from the mean head (affine fit of the
51 static landmarks, orthonormalised); (1) rigid: camera only, Adam; (2) everything, Adam.
Each item's objective is a sum over its own terms and Adam is elementwise, so with
`temporal_weight = 0` and `share_shape = False` items are independent: a batch gives the
same result as fitting each item alone.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Union

import torch

from next3d.fitting import camera_frame
from next3d.fitting.landmark_head import LandmarkHead, contour_rows
from next3d.flame.landmarks import NUM_CONTOUR
from next3d.flame.layer import FLAME
from next3d.render import cameras
from next3d.render.triplane_coords import flame_to_world
from torch_utils.misc import assert_shape

EYE_PAIRS = ((37, 41), (38, 40), (43, 47), (44, 46))
LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
POSE_NAMES = ("neck", "jaw", "left_eye", "right_eye")


@dataclass(frozen=True)
class FitConfig:
    """Settings of `fit_landmarks`."""

    rigid_iters: int = 40
    """Adam steps of the rigid stage (camera only)."""
    full_iters: int = 160
    """Adam steps of the full stage (camera, shape, expression, poses)."""
    lr_rigid: float = 0.02
    """Adam learning rate of the rigid stage."""
    lr: float = 0.02
    """Adam learning rate of the full stage (all parameters)."""
    num_shape: Optional[int] = None
    """Leading shape components fitted (None: all of the model's); the rest stay zero."""
    num_expression: Optional[int] = None
    """Leading expression components fitted (None: all of the model's)."""
    fit_shape: bool = True
    """Fit identity; False keeps shape at the mean (or at `init_shape` of fit_landmarks)."""
    share_shape: bool = False
    """One shape for the whole batch (frames of one person)."""
    sigma: float = 0.004
    """Robust-loss scale, fraction of the image size (0.004 = 2 px on a 512 crop)."""
    contour_weight: float = 0.5
    """Weight of the 17 jaw-contour landmarks relative to the inner face."""
    eye_closure_weight: float = 1.0
    """Weight of the eyelid-gap term."""
    lip_closure_weight: float = 1.0
    """Weight of the inner-lip-gap term."""
    shape_prior: float = 0.02
    """Weight of |shape|^2 (coefficients in standard deviations)."""
    expression_prior: float = 0.02
    """Weight of |expression|^2."""
    jaw_prior: float = 1.0
    """Weight of |jaw opening|^2 (radians); sideways/twist and closing past rest are 100x."""
    neck_prior: float = 100.0
    """Weight of |neck pose|^2: the head turn belongs to the camera."""
    eye_prior: float = 100.0
    """Weight of |eye pose|^2: gaze is not observable from the 68 landmarks."""
    landmarks: str = "dlib"
    """Landmark source of the photo pipeline: "dlib" (68 iBUG points + calibration offsets) or "facemesh"
    (MediaPipe's 468 points through `mesh_correspondence`; needs the optional face-mesh packages)."""
    device: str = "cpu"
    """Torch device of the optimisation."""
    num_threads: Optional[int] = 1
    """CPU threads torch uses during the fit (restored afterwards); None keeps torch's setting. The fit
    is thousands of tiny ops: one thread is fastest, and 10-20x faster than two on a busy machine."""


@dataclass(frozen=True)
class FitResult:
    """Fitted values for B items (all float32 on the CPU).

    cameras (B, 25) labels; flame: dict of (B, n) tensors in FLAME.forward's keyword names
    (shape (B, num_shape), expression (B, num_expression), neck/jaw/left_eye/right_eye (B, 3));
    landmarks_2d (B, 68, 2) re-projected model landmarks in pixels; error_px (B,) mean
    landmark distance in pixels; error_frac (B,) the same as a fraction of the image size;
    angles (B, 3) camera yaw, pitch, roll in degrees (`camera_frame.camera_angles`).
    """

    cameras: torch.Tensor
    flame: Dict[str, torch.Tensor]
    landmarks_2d: torch.Tensor
    error_px: torch.Tensor
    error_frac: torch.Tensor
    angles: torch.Tensor


def _robust(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(1.0 + x * x) - 1.0


def _image_sizes(image_size: Union[int, float, Sequence, torch.Tensor], batch: int) -> torch.Tensor:
    size = torch.as_tensor(image_size, dtype=torch.float32).reshape(-1)
    if size.numel() == 1:
        size = size.expand(batch)
    if size.numel() != batch or bool((size <= 0).any()):
        raise ValueError(f"image_size: expected a positive number or {batch} of them, got {image_size!r}")
    return size.clone()


def landmark_loss(uv: torch.Tensor, target: torch.Tensor, config: FitConfig,
                  point_weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-item landmark objective (B,): robust point term (contour weighted) plus the eye- and
    lip-closure gap terms. uv, target: (B, 68, 2) normalised image coordinates. With point_weights
    (K,) (a dense set, (B, K, 2)): the weighted robust point term only."""
    if point_weights is not None:
        res = (uv - target).norm(dim=-1) / config.sigma
        return (point_weights * _robust(res)).sum(1)
    weights = torch.ones(68, device=uv.device)
    weights[:NUM_CONTOUR] = config.contour_weight
    res = (uv - target).norm(dim=-1) / config.sigma  # (B, 68)
    loss = (weights * _robust(res)).sum(1)
    gap = lambda p, pairs: p[:, [a for a, _ in pairs]] - p[:, [b for _, b in pairs]]  # noqa: E731
    if config.eye_closure_weight:
        d = (gap(uv, EYE_PAIRS) - gap(target, EYE_PAIRS)).norm(dim=-1) / config.sigma
        loss = loss + config.eye_closure_weight * _robust(d).sum(1)
    if config.lip_closure_weight:
        d = (gap(uv, LIP_PAIRS) - gap(target, LIP_PAIRS)).norm(dim=-1) / config.sigma
        loss = loss + config.lip_closure_weight * _robust(d).sum(1)
    return loss


def prior_loss(expr: torch.Tensor, poses: torch.Tensor, shape: Optional[torch.Tensor], config: FitConfig
               ) -> torch.Tensor:
    """Per-item Gaussian priors (B,): expression (B, ne), poses (B, 12) = neck, jaw, eyes; shape
    (B or 1, ns) or None (not fitted; a shared (1, ns) shape is counted once, on item 0)."""
    neck, jaw, eyes = poses[:, 0:3], poses[:, 3:6], poses[:, 6:12]
    loss = config.expression_prior * (expr ** 2).sum(1)
    loss = loss + config.jaw_prior * (jaw[:, 0] ** 2 + 100 * jaw[:, 1:].pow(2).sum(1)
                                      + 100 * torch.relu(-jaw[:, 0]) ** 2)
    loss = loss + config.neck_prior * (neck ** 2).sum(1) + config.eye_prior * (eyes ** 2).sum(1)
    if shape is not None:
        sp = config.shape_prior * (shape ** 2).sum(1)
        loss = loss + (sp if shape.shape[0] == loss.shape[0] else torch.nn.functional.pad(sp, (0, loss.shape[0] - 1)))
    return loss


def project_landmarks(lmk_flame: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """FLAME-space landmarks (B, 68, 3) under labels (B, 25) -> normalised image coords (B, 68, 2) in [0, 1]."""
    return cameras.project(flame_to_world(lmk_flame), c)[..., :2]


def initial_camera(head: LandmarkHead, target: torch.Tensor, select: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Closed-form camera init (B, 6) = (rot, trans) from normalised landmarks (B, 68, 2).

    An affine map of the mean head's 51 static landmarks (EG3D world) onto the targets gives
    the camera's x/y axes (rows, orthonormalised) and the distance (focal / scale). `select`:
    the indices of the points to use instead (a dense set).
    """
    batch = target.shape[0]
    dev, dt = target.device, torch.float64
    zeros = lambda n: torch.zeros(1, n, device=dev, dtype=torch.float32)  # noqa: E731
    lmk = head(zeros(head.num_shape), zeros(head.num_expression), zeros(3 * head.num_joints))
    sel = torch.arange(NUM_CONTOUR, lmk.shape[1], device=dev) if select is None else select.to(dev)
    x3 = flame_to_world(lmk)[0, sel].to(dt)  # (51, 3)
    x2 = target[:, sel].to(dt)  # (B, 51, 2)
    mean3, mean2 = x3.mean(0), x2.mean(1)
    a = torch.cat([x3 - mean3, torch.ones(x3.shape[0], 1, dtype=dt, device=dev)], dim=1)  # (51, 4)
    sol = torch.linalg.lstsq(a[None].expand(batch, -1, -1), (x2 - mean2[:, None])).solution  # (B, 4, 2)
    r1, r2 = sol[:, :3, 0], sol[:, :3, 1]
    scale = (r1.norm(dim=1) + r2.norm(dim=1)) / 2  # focal / depth
    e1 = torch.nn.functional.normalize(r1, dim=1)
    e2 = torch.nn.functional.normalize(r2 - (r2 * e1).sum(1, keepdim=True) * e1, dim=1)
    e3 = torch.cross(e1, e2, dim=1)
    rot_c2w = torch.stack([e1, e2, e3], dim=2)  # columns: camera axes in world
    depth = camera_frame.FOCAL / scale
    # Camera-space position of the landmark centroid from its image position at that depth.
    uv = mean2 + sol[:, 3]
    cam_xy = (uv - 0.5) * depth[:, None] / camera_frame.FOCAL
    cam_pt = torch.cat([cam_xy, depth[:, None]], dim=1)
    centre = mean3[None] - torch.einsum("bij,bj->bi", rot_c2w, cam_pt)
    c2w = torch.eye(4, dtype=dt, device=dev).repeat(batch, 1, 1)
    c2w[:, :3, :3] = rot_c2w
    c2w[:, :3, 3] = centre
    label = cameras.make_label(c2w, cameras.intrinsics(camera_frame.FOCAL, batch=batch, device=dev, dtype=dt))
    rot, trans = camera_frame.camera_params_from_label(label)
    return torch.cat([rot, trans], dim=1).float()


@contextlib.contextmanager
def torch_threads(n: Optional[int]):
    """Context manager: torch uses `n` CPU threads inside (None: unchanged), restored on exit."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def fit_landmarks(landmarks_2d: torch.Tensor, image_size, flame: FLAME, config: FitConfig = FitConfig(),
                  temporal_weight: float = 0.0, init_shape: Optional[torch.Tensor] = None,
                  landmark_offsets: Optional[torch.Tensor] = None, progress: bool = False,
                  correspondence=None) -> FitResult:
    """Fit FLAME and the camera to 2D landmarks.

    Args:
        landmarks_2d: (B, 68, 2) iBUG landmarks in pixels (corner origin, x right, y down) of
            square images (crops).
        image_size: side of the images in pixels: a number or (B,) values.
        flame: the FLAME layer (its model decides the component counts).
        config: `FitConfig`.
        temporal_weight: weight of the temporal prior between consecutive items (0: none).
        init_shape: optional (B or 1, <= num_shape) starting/fixed identity.
        landmark_offsets: optional (68, 3) FLAME-space offsets added to the model's landmarks: where
            the detector puts each point relative to the embedding (`next3d.fitting.calibrate`).
        progress: show a tqdm bar over the iterations.
        correspondence: a `mesh_correspondence.MeshCorrespondence`: landmarks_2d are then its K dense
            points (B, K, 2), fitted with its per-point weights and offsets (no contour table or closure
            terms; landmark_offsets is ignored); FitResult.landmarks_2d is (B, K, 2).
    Returns:
        FitResult.
    """
    with torch_threads(config.num_threads if torch.device(config.device).type == "cpu" else None):
        return _fit(landmarks_2d, image_size, flame, config, temporal_weight, init_shape, landmark_offsets, progress,
                    correspondence)


def _fit(landmarks_2d, image_size, flame, config, temporal_weight, init_shape, offsets, progress,
         corr=None) -> FitResult:
    num_points = 68 if corr is None else int(corr.faces.numel())
    assert_shape(landmarks_2d, [None, num_points, 2], "landmarks_2d")
    if not bool(torch.isfinite(landmarks_2d).all()):
        raise ValueError("landmarks_2d: contains NaN or infinite values")
    dev = torch.device(config.device)
    batch = landmarks_2d.shape[0]
    sizes = _image_sizes(image_size, batch).to(dev)
    target = landmarks_2d.to(dev, torch.float32) / sizes[:, None, None]
    head = LandmarkHead(flame, None if corr is None else (corr.faces, corr.bary)).to(dev)
    point_weights = select = None
    if corr is not None:
        point_weights = corr.weights.to(dev, torch.float32)
        select = torch.nonzero(point_weights > 0.3).flatten()
        offsets = corr.offsets
    if offsets is not None:
        assert_shape(offsets, [num_points, 3], "landmark_offsets")
        offsets = offsets.to(dev, torch.float32)
    ns = head.num_shape if config.num_shape is None else min(int(config.num_shape), head.num_shape)
    ne = head.num_expression if config.num_expression is None else min(int(config.num_expression),
                                                                       head.num_expression)
    cam = initial_camera(head, target, select).requires_grad_(True)
    shape_rows = 1 if config.share_shape else batch
    shape = torch.zeros(shape_rows, ns, device=dev)
    if init_shape is not None:
        k = min(init_shape.shape[1], ns)
        shape[:, :k] = init_shape[:, :k].to(dev, torch.float32).expand(shape_rows, -1)
    shape.requires_grad_(config.fit_shape)
    expr = torch.zeros(batch, ne, device=dev, requires_grad=True)
    poses = torch.zeros(batch, 12, device=dev, requires_grad=True)  # neck, jaw, left eye, right eye

    def full_params():
        sh = shape.expand(batch, -1)
        sh = torch.nn.functional.pad(sh, (0, head.num_shape - ns))
        ex = torch.nn.functional.pad(expr, (0, head.num_expression - ne))
        pose = torch.cat([torch.zeros(batch, 3, device=dev), poses], dim=1)
        pose = torch.nn.functional.pad(pose, (0, 3 * head.num_joints - pose.shape[1]))
        return sh, ex, pose

    def evaluate():
        sh, ex, pose = full_params()
        c = camera_frame.camera_label(cam[:, :3], cam[:, 3:])
        rows = contour_rows(camera_frame.head_rotation(c)) if head.has_dynamic_contour else None
        lmk = head(sh, ex, pose, rows)
        if offsets is not None:
            lmk = lmk + offsets
        return c, project_landmarks(lmk, c)

    def data_terms(uv):
        return landmark_loss(uv, target, config, point_weights)

    def prior_terms():
        total = prior_loss(expr, poses, shape if config.fit_shape else None, config).sum()
        if temporal_weight and batch > 1:
            seq = torch.cat([expr, poses[:, 3:6], cam], dim=1)
            total = total + temporal_weight * (seq[1:] - seq[:-1]).pow(2).sum()
        return total

    stages = [("rigid", [cam], config.lr_rigid, config.rigid_iters),
              ("full", [cam, expr, poses] + ([shape] if config.fit_shape else []), config.lr, config.full_iters)]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.rigid_iters + config.full_iters, desc=f"fitting {batch}", unit="step")
    for name, params, lr, iters in stages:
        if iters <= 0:
            continue
        opt = torch.optim.Adam(params, lr=lr)
        for _ in range(iters):
            opt.zero_grad(set_to_none=True)
            _, uv = evaluate()
            loss = data_terms(uv).sum()
            if name == "full":
                loss = loss + prior_terms()
            loss.backward()
            opt.step()
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()

    with torch.no_grad():
        c, uv = evaluate()
        sh, ex, pose = full_params()
        px = uv * sizes[:, None, None]
        dist = (px - landmarks_2d.to(dev, torch.float32)).norm(dim=-1)
        # Mean over the points the fit uses (a dense set: its weighted points).
        err = dist.mean(1) if point_weights is None else (dist * point_weights).sum(1) / point_weights.sum()
        flame_params = {"shape": sh, "expression": ex}
        for k, nm in enumerate(POSE_NAMES):
            flame_params[nm] = pose[:, 3 * (k + 1):3 * (k + 2)]
        return FitResult(cameras=c.cpu(), flame={k: v.detach().cpu().clone() for k, v in flame_params.items()},
                         landmarks_2d=px.cpu(), error_px=err.cpu(), error_frac=(err / sizes).cpu(),
                         angles=camera_frame.camera_angles(c).cpu())
