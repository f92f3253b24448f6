"""Stage 3 — GAR-style refinement: the face parameters themselves, fitted through the generator.

GAR's idea (inverting a generative renderer to refine the face model's parameters): once the
latent explains the person, the generator *is* a renderer of (camera, FLAME) — so the
expression, jaw, eye poses and camera can be fitted to the photo's pixels, not only to 68
landmarks. The latent (and G) stay fixed here; shape stays the fitter's (identity is the
latent's job). The published generator detaches the mesh -> texture lookup; here the render
runs under `losses.mesh_gradients`, so the pixels' gradients reach the vertices through the
UVs each tri-plane pixel reads (and the camera through the volume renderer).

Unknowns (each switchable): expression (1, E), jaw (1, 3), left/right eye (1, 3) each, and the
camera as the fitter's parameters (`next3d.fitting.camera_frame`: rotation (1, 3) axis-angle
and translation (1, 3) about the pivot, FFHQ intrinsics fixed), all starting at the fit.

Objective:

    image loss (ST-LPIPS + face-region L2, at the refined camera and mesh)
    + fit_weight · [ robust landmark term + the fitter's Gaussian priors ]

with the landmark term and priors exactly the fitter's (`next3d.fitting.landmark_fit`:
Charbonnier on the landmark residual in units of `sigma` · image size, contour weight, the
calibration offsets of a photo; priors on expression, jaw (sideways, twist and over-closing
penalised 100x), eyes) — so the refined mesh stays a plausible explanation of the landmarks
while the pixels decide the details. Without landmarks (a target that has none) only the
priors apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch

from next3d.inversion.losses import ImageLoss, mesh_gradients, render
from next3d.inversion.target import InversionTarget


@dataclass(frozen=True)
class RefineConfig:
    """Settings of the refinement."""

    steps: int = 30
    """Adam steps."""
    lr: float = 0.02
    """Learning rate of expression coefficients (standard deviations) and poses (radians)."""
    lr_camera: float = 0.002
    """Learning rate of the camera rotation (radians) and translation (world units)."""
    expression: bool = True
    """Refine the expression coefficients."""
    jaw: bool = True
    """Refine the jaw pose."""
    eyes: bool = True
    """Refine both eye poses."""
    camera: bool = True
    """Refine the camera."""
    fit_weight: float = 1e-3
    """Weight of the fitter's landmark term and priors relative to the image loss."""


@dataclass
class RefineResult:
    """camera (1, 25), flame (1, k) per key (shape as given), per-step losses."""

    camera: torch.Tensor
    flame: Dict[str, torch.Tensor]
    losses: List[float] = field(default_factory=list)
    image_losses: List[float] = field(default_factory=list)


def _fit_terms(head, target: InversionTarget, camera, flame, fit_config) -> torch.Tensor:
    """The fitter's landmark term (when the target has landmarks) and priors, for one item."""
    from next3d.fitting.camera_frame import head_rotation
    from next3d.fitting.landmark_fit import _robust, project_landmarks
    from next3d.fitting.landmark_head import contour_rows
    from next3d.flame.landmarks import NUM_CONTOUR

    cfg = fit_config
    jaw, expr = flame["jaw"], flame["expression"]
    eyes = torch.cat([flame["left_eye"], flame["right_eye"]], dim=1)
    prior = cfg.expression_prior * expr.square().sum() + cfg.eye_prior * eyes.square().sum()
    prior = prior + cfg.jaw_prior * (jaw[:, 0].square() + 100 * jaw[:, 1:].square().sum(1)
                                     + 100 * torch.relu(-jaw[:, 0]).square()).sum()
    if target.landmarks is None:
        return prior
    device = camera.device
    pose = torch.cat([torch.zeros(1, 3, device=device), flame["neck"], jaw, flame["left_eye"], flame["right_eye"]], 1)
    pose = torch.nn.functional.pad(pose, (0, 3 * head.num_joints - pose.shape[1]))
    rows = contour_rows(head_rotation(camera)) if head.has_dynamic_contour else None
    lmk = head(flame["shape"], expr, pose, rows)
    if target.landmark_offsets is not None:
        lmk = lmk + target.landmark_offsets.to(device)
    uv = project_landmarks(lmk, camera)
    goal = target.landmarks.to(device) / target.resolution
    weights = torch.ones(68, device=device)
    weights[:NUM_CONTOUR] = cfg.contour_weight
    data = (weights * _robust((uv - goal).norm(dim=-1) / cfg.sigma)).sum()
    return data + prior


def refine_face(G: torch.nn.Module, ws: torch.Tensor, target: InversionTarget, loss_fn: ImageLoss,
                config: RefineConfig = RefineConfig(), fit_config=None, neural_resolution: Optional[int] = None,
                on_step: Optional[Callable[[Dict[str, float]], None]] = None,
                camera: Optional[torch.Tensor] = None, flame: Optional[Dict[str, torch.Tensor]] = None) -> RefineResult:
    """Refine expression, jaw, eyes and camera of `target` through G at latent ws (module docstring).

    camera / flame: the starting point (default: the target's fit).
    """
    from next3d.fitting import FitConfig
    from next3d.fitting.camera_frame import camera_label, camera_params_from_label

    from next3d.fitting.landmark_head import LandmarkHead

    fit_config = fit_config or FitConfig()
    device = next(G.parameters()).device
    head = LandmarkHead(G.flame).to(device) if target.landmarks is not None else None
    start_cam = (target.camera if camera is None else camera).to(device).float()
    start = {k: v.to(device).float() for k, v in (target.flame if flame is None else flame).items()}
    rot0, trans0 = camera_params_from_label(start_cam)
    rot = rot0.clone().requires_grad_(config.camera)
    trans = trans0.clone().requires_grad_(config.camera)
    free = {"expression": config.expression, "jaw": config.jaw, "left_eye": config.eyes, "right_eye": config.eyes}
    params = {k: start[k].clone().requires_grad_(on) for k, on in free.items()}
    groups = [{"params": [p for k, p in params.items() if free[k]], "lr": config.lr}]
    if config.camera:
        groups.append({"params": [rot, trans], "lr": config.lr_camera})
    groups = [g for g in groups if g["params"]]
    ws = ws.to(device).detach()
    image, mask = target.image.to(device), target.mask.to(device)
    result = RefineResult(camera=start_cam.detach().clone(), flame={k: v.detach().clone() for k, v in start.items()})
    if not groups or config.steps <= 0:
        return result
    opt = torch.optim.Adam(groups, betas=(0.9, 0.999))
    G.requires_grad_(False)

    def current():
        flame_now = dict(start)
        flame_now.update(params)
        return camera_label(rot, trans).to(start_cam.dtype), flame_now

    for _ in range(config.steps):
        cam, flame_now = current()
        with mesh_gradients(G):
            pred = render(G, ws, cam, flame_now, neural_resolution)
        parts = loss_fn(pred, image, mask)
        image_loss = parts["total"].sum()
        loss = image_loss + config.fit_weight * _fit_terms(head, target, cam, flame_now, fit_config)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        result.losses.append(float(loss.detach()))
        result.image_losses.append(float(image_loss.detach()))
        if on_step is not None:
            on_step({"total": result.losses[-1], "image": result.image_losses[-1]})
    with torch.no_grad():
        cam, flame_now = current()
    result.camera = cam.detach().clone()
    result.flame = {k: v.detach().clone() for k, v in flame_now.items()}
    return result


__all__ = ["RefineConfig", "RefineResult", "refine_face"]
