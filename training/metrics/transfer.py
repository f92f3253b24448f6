"""AED / APD (expression and pose transfer) and the landmark error of control.

Each generated image (sample k as in `sampling`: z_k, the camera c_k and FLAME
parameters (β_k, ψ_k, θ_k) of a random data-set item) goes through the photo pipeline's
analysis: dlib finds the face and its 68 iBUG landmarks (`face_models`), and the fitter
(`next3d.fitting.fit_landmarks`, DECA-style landmark fit of FLAME shape, expression,
jaw/neck/eye pose and the camera, FFHQ intrinsics) recovers (β̂, ψ̂, θ̂, ĉ). Images
where no face is detected are left out and counted (`transfer_detect_rate`). The fit
uses the fitter's stored dlib calibration for the generator's head model when there is
one (`next3d.fitting.calibrate.load_offsets`).

* **AED** (average expression distance), millimetres: for each image, the mean Euclidean
  distance between the 51 inner-face landmarks (iBUG 17..67) of the FLAME head with the
  driving expression and jaw (ψ, θ_jaw) and of the head with the recovered (ψ̂, θ̂_jaw),
  both with the mean shape (β = 0) and neck = eyes = 0, in canonical FLAME space (metres
  ×1000); averaged over images. Shape and camera are factored out, so only the
  expression (including mouth opening) counts, and its units do not depend on how a
  basis is scaled.
* **APD** (average pose distance), degrees: head rotation lives in the camera (FLAME's
  global rotation is zero), so pose distance is the geodesic angle between the driving
  camera's rotation and the recovered camera's (`camera_frame.rotation_error_deg`),
  averaged over images.
* **Landmark error of control** (`lmk`), percent of the image side: the mean distance
  between the driving mesh's 68 landmarks projected with the driving camera and the 68
  landmarks dlib detects in the generated image, over detected images. It needs no fit.

Values for the data set itself (`reference=True` in `transfer_metrics` of real images)
give the floor set by the detector and the fitter.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from next3d.render import cameras
from next3d.render.triplane_coords import flame_to_world
from torch_utils.misc import assert_shape
from training.metrics.face_models import FaceModels
from training.metrics.feature_nets import MetricError
from training.metrics.sampling import generated_batches

INNER = slice(17, 68)


def _fitting():
    try:
        from next3d.fitting import FitConfig, fit_landmarks
        from next3d.fitting.camera_frame import rotation_error_deg
    except ImportError as exc:
        raise MetricError(f"AED/APD need the FLAME fitter (next3d.fitting), which cannot be imported: {exc}") from None
    return FitConfig, fit_landmarks, rotation_error_deg


def expression_distance_mm(flame_layer: torch.nn.Module, driving: Dict[str, torch.Tensor],
                           recovered: Dict[str, torch.Tensor]) -> torch.Tensor:
    """AED per item (B,) in millimetres (module docstring). driving / recovered: dicts with
    'expression' (B, <= E) and 'jaw' (B, 3) (missing = zero); other keys are ignored."""
    def inner_landmarks(params):
        ref = next(iter(params.values()))
        batch = ref.shape[0]
        expr = params.get("expression", ref.new_zeros(batch, 0)).float()[:, :flame_layer.num_expression]
        jaw = params.get("jaw", ref.new_zeros(batch, 3)).float()
        out = flame_layer(expression=expr.to(flame_layer.v_template.device), jaw=jaw.to(flame_layer.v_template.device))
        return out.landmarks[:, INNER]

    a, b = inner_landmarks(driving), inner_landmarks(recovered)
    if a.shape != b.shape:
        raise MetricError(f"AED: driving and recovered batches differ ({a.shape[0]} vs {b.shape[0]})")
    return (a - b).norm(dim=-1).mean(dim=-1) * 1000.0


def pose_distance_deg(c_driving: torch.Tensor, c_recovered: torch.Tensor) -> torch.Tensor:
    """APD per item (B,) in degrees: angle between the two cameras' rotations."""
    assert_shape(c_driving, [None, 25], "driving camera")
    assert_shape(c_recovered, [c_driving.shape[0], 25], "recovered camera")
    return _fitting()[2](c_driving.float().cpu(), c_recovered.float().cpu())


def projected_landmarks_px(flame_layer: torch.nn.Module, flame: Dict[str, torch.Tensor], c: torch.Tensor,
                           image_size: int, G: Optional[torch.nn.Module] = None) -> torch.Tensor:
    """Driving landmarks (B, 68, 2) in pixels (corner origin) of an image of side `image_size`."""
    if G is not None:
        _, lmk = G.head_mesh(flame)
    else:
        lmk = flame_layer(**flame).landmarks
    uv = cameras.project(flame_to_world(lmk.float()), c.float().to(lmk.device))[..., :2]
    return uv * image_size


def generator_landmark_offsets(G: torch.nn.Module) -> Optional[torch.Tensor]:
    """The fitter's stored dlib calibration (68, 3) for G's head model, or None (`next3d.fitting.calibrate`)."""
    try:
        from next3d.fitting.calibrate import load_offsets
        from training.dataset_schema import generator_head_identity
    except ImportError:
        return None
    try:
        return load_offsets("dlib", generator_head_identity(G))
    except (OSError, ValueError, KeyError):
        return None


def transfer_from_images(images: torch.Tensor, driving_flame: Dict[str, torch.Tensor], driving_camera: torch.Tensor,
                         flame_layer: torch.nn.Module, *, models: Optional[FaceModels] = None,
                         fit_config=None, G: Optional[torch.nn.Module] = None,
                         with_fit: bool = True, landmarks: Optional[torch.Tensor] = None,
                         landmark_offsets: Optional[torch.Tensor] = None) -> Dict[str, np.ndarray]:
    """Per-image AED (mm), APD (deg), landmark error (% of side) and detection flags for
    images (B, 3, S, S) (uint8 or float [-1, 1]) driven by the given FLAME parameters and cameras.
    Entries of undetected images are NaN. `landmarks` (B, 68, 2) pixels replaces the dlib
    detection (tests, or another detector); `landmark_offsets` (68, 3) is the detector's
    calibration for the head model, passed to the fitter."""
    assert_shape(images, [None, 3, None, None], "images")
    batch, size = images.shape[0], images.shape[-1]
    if images.shape[-2] != size:
        raise MetricError(f"images: expected square images, got {tuple(images.shape[-2:])}")
    if landmarks is not None:
        assert_shape(landmarks, [batch, 68, 2], "landmarks")
        found, lmks = np.ones(batch, dtype=bool), list(landmarks.detach().cpu().double().numpy())
    else:
        models = models or FaceModels()
        found, lmks = [], []
        for img in images:
            res = models.analyse(img, descriptor=False, landmarks=True)
            found.append(res.detected)
            lmks.append(res.landmarks)
        found = np.array(found)
    aed = np.full(batch, np.nan)
    apd = np.full(batch, np.nan)
    lmk = np.full(batch, np.nan)
    if not found.any():
        return {"aed": aed, "apd": apd, "lmk": lmk, "detected": found}
    detected = torch.from_numpy(np.stack(lmks)[found]).float()
    sel = torch.from_numpy(np.flatnonzero(found))
    flame_sel = {k: v[sel.to(v.device)] for k, v in driving_flame.items()}
    cam_sel = driving_camera[sel.to(driving_camera.device)]
    with torch.no_grad():
        target = projected_landmarks_px(flame_layer, flame_sel, cam_sel, size, G=G).cpu()
    lmk[found] = ((target - detected).norm(dim=-1).mean(dim=-1) / size * 100.0).numpy()
    if with_fit and "vertices" not in flame_sel:
        FitConfig, fit_landmarks, _ = _fitting()
        fit = fit_landmarks(detected, size, flame_layer, fit_config or FitConfig(), landmark_offsets=landmark_offsets)
        with torch.no_grad():
            aed[found] = expression_distance_mm(flame_layer, {k: v.cpu() for k, v in flame_sel.items()},
                                                fit.flame).numpy()
        apd[found] = pose_distance_deg(cam_sel, fit.cameras).numpy()
    return {"aed": aed, "apd": apd, "lmk": lmk, "detected": found}


def _summary(parts: List[Dict[str, np.ndarray]], num: int, with_fit: bool) -> Dict[str, float]:
    cat = {k: np.concatenate([p[k] for p in parts]) for k in ("aed", "apd", "lmk", "detected")}
    found = cat["detected"]
    mean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")  # noqa: E731
    out = {"lmk": mean(cat["lmk"]), "transfer_detect_rate": float(found.mean()), "transfer_num": int(num)}
    if with_fit:
        out.update(aed=mean(cat["aed"]), apd=mean(cat["apd"]))
    return out


def transfer_metrics(G: torch.nn.Module, dataset, num: int, *, batch: int = 4, seed: int = 0,
                     with_fit: bool = True, fit_config=None, models: Optional[FaceModels] = None,
                     on_progress: Optional[Callable[[int], None]] = None) -> Dict[str, float]:
    """AED, APD and lmk of `num` generated images (module docstring) ->
    {'aed', 'apd', 'lmk', 'transfer_detect_rate', 'transfer_num'} (no aed/apd with with_fit=False)."""
    if with_fit:
        _fitting()
    models = models or FaceModels()
    offsets = generator_landmark_offsets(G) if with_fit else None
    parts = []
    for gen in generated_batches(G, dataset, num, batch=batch, seed=seed):
        flame = {k: v for k, v in gen.flame.items()}
        parts.append(transfer_from_images(gen.images, flame, gen.camera, G.flame, models=models,
                                          fit_config=fit_config, G=G, with_fit=with_fit, landmark_offsets=offsets))
        if on_progress is not None:
            on_progress(gen.images.shape[0])
    return _summary(parts, num, with_fit)


def reference_transfer(dataset, num: Optional[int] = None, *, flame_layer: torch.nn.Module, batch: int = 8,
                       fit_config=None, models: Optional[FaceModels] = None) -> Dict[str, float]:
    """The same numbers for real data-set images against their own labels (the floor)."""
    models = models or FaceModels()
    n = len(dataset) if num is None else min(int(num), len(dataset))
    parts = []
    for lo in range(0, n, batch):
        items = [dataset[i] for i in range(lo, min(n, lo + batch))]
        images = torch.stack([it["image"] for it in items])
        flame = {k: torch.stack([it["flame"][k] for it in items]).float() for k in items[0]["flame"]}
        flame = {k: (v[:, :flame_layer.num_shape] if k == "shape" else
                     v[:, :flame_layer.num_expression] if k == "expression" else v) for k, v in flame.items()}
        camera = torch.stack([it["camera"] for it in items]).float()
        parts.append(transfer_from_images(images, flame, camera, flame_layer, models=models, fit_config=fit_config))
    return _summary(parts, n, True)
