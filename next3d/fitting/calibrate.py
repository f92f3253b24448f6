"""Detector calibration: where a landmark detector puts the 68 points on a head model's renders.

A head model's landmark embedding and a detector's notion of "landmark k" need not agree:
on shaded renders of the built-in head, dlib's eye points sit ~5 px (of 512) above the
embedding's, its nose points ~7 px below, its jaw contour ~17 px higher; fitted to those
detections, the camera pitch comes out ~12-15 degrees off. With the truth known on renders,
the fix is measured: per-landmark offsets delta (68, 3) in FLAME space (head frame) such that
the model's landmarks + delta re-project onto the detections across many poses, identities
and expressions (robust least squares, small-norm prior). The fit adds delta to the model's
landmarks (`fit_landmarks(..., landmark_offsets=delta)`).

The stored offsets were solved on photographic renders (`render_photographic_views`: the synthetic
set's renderer, textured skin, hair, a dark mouth interior with teeth), not on grey Lambertian
ones: on grey renders the inside of an open mouth is lit like skin and dlib sees the mouth
closed, which biased the mouth (and jaw) offsets. On `dataset synth` renders (held out) the
photographic calibration gives rotation error 5.0 deg median (grey: 5.1), jaw error 2.3 deg
(grey: 3.6), expression + jaw vertex error 1.4 mm (grey: 1.9).

`calibrate_offsets` computes them; `load_offsets` reads the stored ones
(`data/<detector>_<head>_<version>_offsets.json`, keyed by the head's topology hash and version) and
returns None for any other head. Regenerate after the built-in head changes:
`NEXT3D_REGENERATE_CALIBRATION=1 python -m pytest tests/next3d/fitting/test_calibrate.py`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from next3d.fitting import camera_frame
from next3d.fitting.landmark_fit import torch_threads, project_landmarks
from next3d.fitting.landmark_head import LandmarkHead, contour_rows
from next3d.fitting.stored_data import DATA_DIR, stored_file

RESOLUTION = 512


def _ibug_mirror():
    """iBUG-68 index of each point's mirror image (left <-> right)."""
    m = list(range(68))
    pairs = [(i, 16 - i) for i in range(17)] + [(17 + i, 26 - i) for i in range(10)] + \
        [(31 + i, 35 - i) for i in range(5)] + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)] + \
        [(48 + i, 54 - i) for i in range(7)] + [(55 + i, 59 - i) for i in range(5)] + \
        [(60 + i, 64 - i) for i in range(5)] + [(65, 67), (66, 66)]
    for a, b in pairs:
        m[a], m[b] = b, a
    return tuple(m)


IBUG_MIRROR = _ibug_mirror()


def offsets_path(detector_name: str, head: dict) -> Path:
    return stored_file(detector_name, head, "_offsets.json")


def calibration_views(flame, count: int, seed: int) -> Tuple[Dict[str, torch.Tensor], torch.Tensor]:
    """`count` random heads and cameras: FLAME params (shape, expression at 0.5 std, jaw 0-0.25 rad)
    and orbit cameras (|yaw| <= 40 deg, |pitch| <= 15 deg)."""
    g = torch.Generator().manual_seed(seed)
    params = {"shape": torch.randn(count, flame.num_shape, generator=g) * 0.5,
              "expression": torch.randn(count, flame.num_expression, generator=g) * 0.5,
              "jaw": torch.zeros(count, 3)}
    params["jaw"][:, 0] = torch.rand(count, generator=g) * 0.25
    yaw = (torch.rand(count, generator=g) * 2 - 1) * math.radians(40)
    pitch = (torch.rand(count, generator=g) * 2 - 1) * math.radians(15)
    from next3d.render.cameras import orbit_label

    return params, orbit_label(yaw, pitch)


def render_views(flame, params: Dict[str, torch.Tensor], c: torch.Tensor, resolution: int = RESOLUTION,
                 rasterize_impl: str = "auto") -> np.ndarray:
    """Grey shaded renders (N, R, R, 3) uint8 on a mid-grey background."""
    from next3d.render.mesh_shading import render_mesh

    out = []
    with torch.no_grad():
        verts = flame(**params).vertices
        for i in range(c.shape[0]):
            r = render_mesh(verts[i:i + 1], flame.faces, c[i:i + 1], resolution, rasterize_impl=rasterize_impl)
            img = ((r.shaded[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
            img[r.mask[0, 0].numpy() < 0.5] = 110
            out.append(img)
    return np.stack(out)


def render_photographic_views(params: Dict[str, torch.Tensor], c: torch.Tensor, resolution: int = RESOLUTION,
                              seed: int = 1000, flame_dir=None) -> np.ndarray:
    """Photographic renders (N, R, R, 3) uint8 of the views (`next3d.synthetic`: textured skin, hair, mouth
    interior with teeth, SH + key lighting, background, sensor noise; the appearance of item i drawn from
    `sample_scene(seed, i)`), with the head's shape, expression and jaw from `params`, neck and eyes at rest
    and the camera `c[i]`. Unlike the grey renders, an open mouth is dark inside, as in photos."""
    from next3d.synthetic.distributions import SynthDistributions
    from next3d.synthetic.head import load_head_assets
    from next3d.synthetic.render import render_scene
    from next3d.synthetic.scene import sample_scene

    assets = load_head_assets(flame_dir)
    dist = SynthDistributions()
    out = []
    for i in range(c.shape[0]):
        scene = sample_scene(dist, assets, seed, i)
        for name in ("shape", "expression", "jaw"):
            scene.flame[name] = params[name][i].numpy().astype(np.float32)
        for name in ("neck", "left_eye", "right_eye"):
            scene.flame[name] = np.zeros(3, np.float32)
        scene.camera = c[i].numpy().astype(np.float32)
        out.append(render_scene(assets, scene, resolution, dist.supersample, dist.shadows, i).image)
    return np.stack(out)


def model_landmarks(flame, params: Dict[str, torch.Tensor], c: torch.Tensor) -> torch.Tensor:
    """The model's landmarks (N, 68, 3) in FLAME space with the contour picked by the camera."""
    head = LandmarkHead(flame)
    n = c.shape[0]
    shape = torch.nn.functional.pad(params["shape"], (0, head.num_shape - params["shape"].shape[1]))
    expr = torch.nn.functional.pad(params["expression"], (0, head.num_expression - params["expression"].shape[1]))
    pose = torch.zeros(n, 3 * head.num_joints)
    pose[:, 6:9] = params["jaw"]
    with torch.no_grad():
        return head(shape, expr, pose, contour_rows(camera_frame.head_rotation(c)))


def solve_offsets(lmk: torch.Tensor, c: torch.Tensor, detected: torch.Tensor, resolution: int = RESOLUTION,
                  prior: float = 1e-3, iters: int = 400) -> torch.Tensor:
    """Offsets (K, 3) in metres minimising robust re-projection error of lmk (N, K, 3) + delta onto `detected`
    (N, K, 2) pixels under cameras c (N, 25), plus prior * |delta / 1 cm|^2 (K = 68 for dlib)."""
    delta = torch.zeros(lmk.shape[1], 3, requires_grad=True)
    target = detected / resolution
    opt = torch.optim.Adam([delta], lr=5e-4)
    with torch_threads(1):
        for _ in range(iters):
            opt.zero_grad(set_to_none=True)
            uv = project_landmarks(lmk + delta, c)
            res = (uv - target).norm(dim=-1) / 0.004
            loss = (torch.sqrt(1 + res * res) - 1).mean(0).sum() + prior * ((delta / 0.01) ** 2).sum()
            loss.backward()
            opt.step()
    return delta.detach()


def symmetrise(delta: torch.Tensor) -> torch.Tensor:
    """Left-right symmetric offsets: the mean of delta and its mirror image (x negated, iBUG pairs swapped)."""
    mirrored = delta[torch.as_tensor(IBUG_MIRROR)] * torch.tensor([-1.0, 1.0, 1.0])
    return (delta + mirrored) / 2


RENDER_STYLES = ("photographic", "grey")


def calibrate_offsets(flame, detector, count: int = 48, seed: int = 1000, rasterize_impl: str = "auto",
                      style: str = "photographic"):
    """Render `count` random views (`style` "photographic": `render_photographic_views`; "grey":
    `render_views`), detect, solve offsets -> (delta (68, 3), detections used)."""
    if style not in RENDER_STYLES:
        raise ValueError(f"style: expected one of {RENDER_STYLES}, got {style!r}")
    params, c = calibration_views(flame, count, seed)
    if style == "grey":
        images = render_views(flame, params, c, rasterize_impl=rasterize_impl)
    else:
        images = render_photographic_views(params, c, seed=seed)
    keep, dets = [], []
    for i, img in enumerate(images):
        try:
            dets.append(detector.detect(img).landmarks)
            keep.append(i)
        except ValueError:
            continue
    if len(keep) < max(4, count // 2):
        raise RuntimeError(f"calibration: the detector found only {len(keep)} of {count} rendered faces")
    idx = torch.tensor(keep)
    lmk = model_landmarks(flame, {k: v[idx] for k, v in params.items()}, c[idx])
    detected = torch.tensor(np.stack(dets), dtype=torch.float32)
    return symmetrise(solve_offsets(lmk, c[idx], detected)), len(keep)


def save_offsets(delta: torch.Tensor, detector_name: str, head: dict, info: dict) -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = offsets_path(detector_name, head)
    data = {"detector": detector_name, "head_model": head["head_model"], "head_version": head["head_version"],
            "head_topology": head["head_topology"], "info": info,
            "offsets_m": np.round(delta.numpy().astype(np.float64), 6).tolist()}
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def load_offsets(detector_name: str, head: dict) -> Optional[torch.Tensor]:
    """Stored offsets (68, 3) for this detector and head (matching topology and version), else None."""
    path = offsets_path(detector_name, head)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if data.get("head_topology") != head.get("head_topology") or data.get("head_version") != head.get("head_version"):
        return None
    return torch.tensor(data["offsets_m"], dtype=torch.float32)
