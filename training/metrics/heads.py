"""Does a generator draw heads that a face detector sees, that open their mouths when the jaw
opens, with a plausible depth, and how fast? Four measurements for any network.

`face_detection_rate` (metric `face_rate`). Sample k: z_k ~ N(0, I) (torch.Generator(seed)),
the FLAME parameters of data-set item idx[k] (as `sampling`), and an orbit camera at yaw
uniform in (−max_yaw, +max_yaw) (default 30°) and pitch uniform in (−max_pitch, +max_pitch)
(default 0.15 rad) on the configuration's orbit (`avg_camera_radius`, `avg_camera_pivot`);
the mapping is conditioned on the same camera. Reported: `face_rate`, the share of images in
which dlib's HOG frontal detector (`face_models.FaceModels`, images upscaled to 256 px
before detection) finds at least one face.

`jaw_mouth_opening` (metric `jaw_mouth`). Identity k (z_k as above) is rendered from the
frontal camera (mapping conditioned on it) with neutral FLAME parameters except the jaw
opening angle, for each of `jaws` (default 0, 0.1, 0.2, 0.3 rad). dlib's 68 landmarks give
the mouth opening d = mean over the inner-lip pairs (61, 67), (62, 66), (63, 65) of the
distance between upper and lower point, divided by the distance between the outer eye
corners 36 and 45 (scale-free). Reported: `jaw_gap_<angle>` (mean d at each angle),
`jaw_gap_increase` (mean d(last) − d(first)), `jaw_monotonic` (share of identities whose d
increases strictly from each angle to the next), `jaw_mean_monotonic` (1 when the mean
curve does), `jaw_detected` (share of renders where dlib found the face; landmarks of the
others come from its fallback box).

`depth_against_ground_truth` (metric `depth`). For data-set items with ground truth (the
synthetic set's `gt/*.npz`, docs/dataset_format.md) the generator renders z_k under the
item's own camera and FLAME parameters (the known pairing), with deterministic ray samples.
Over each item's ground-truth foreground: `depth_l1` and `normal_deg` as
`consistency.geometry_error`, `depth_mean` / `depth_gt_mean` (mean camera-space z, world
units), `depth_relief` / `depth_gt_relief` (per-image standard deviation of z over the
foreground, averaged: how much relief the head has), `depth_valid` (share of items with
foreground pixels).

`generate_speed` (metric `speed`): images per second of `next3d.generate.generate` (one
frontal view per seed, seeds 0..num−1, the given batch, noise 'const') after one warm-up
seed, on the generator's device with torch's current thread count; `cpu_seconds_per_image`
(process CPU time) shows how much of the wall time a busy machine took away.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch

from training.metrics.feature_nets import MetricError
from training.metrics.sampling import condition_indices, flame_input, generator_device, render, to_uint8

DEFAULT_JAWS = (0.0, 0.1, 0.2, 0.3)
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
EYE_CORNERS = (36, 45)

Progress = Optional[Callable[[int], None]]


def _orbit(G, yaw: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
    from next3d.render.cameras import orbit_label

    r = G.config.render
    return orbit_label(yaw, pitch, radius=r.avg_camera_radius, pivot=r.avg_camera_pivot,
                       device=generator_device(G))


def _face_models():
    from training.metrics.face_models import FaceModels

    return FaceModels()


def face_detection_rate(G: torch.nn.Module, dataset, num: int, *, batch: int = 4, seed: int = 0,
                        max_yaw_deg: float = 30.0, max_pitch: float = 0.15, truncation_psi: float = 1.0,
                        faces=None, on_progress: Progress = None) -> Dict[str, float]:
    """Metric `face_rate` (module docstring) -> {'face_rate', 'face_rate_num', 'face_rate_max_yaw_deg'}."""
    if num < 1:
        raise MetricError(f"face_rate: expected at least 1 image, got {num}")
    if not 0 < max_yaw_deg < 90:
        raise MetricError(f"face_rate: max_yaw_deg must be in (0, 90), got {max_yaw_deg}")
    faces = faces or _face_models()
    device = generator_device(G)
    gen = torch.Generator().manual_seed(seed)
    z_all = torch.randn(num, G.z_dim, generator=gen)
    yaw = (torch.rand(num, generator=gen) * 2 - 1) * math.radians(max_yaw_deg)
    pitch = (torch.rand(num, generator=gen) * 2 - 1) * max_pitch
    indices = condition_indices(len(dataset), num, seed)
    found = []
    for k, lo in enumerate(range(0, num, batch)):
        idx = indices[lo:lo + batch]
        items = [dataset[int(i)] for i in idx]
        camera = _orbit(G, yaw[lo:lo + batch], pitch[lo:lo + batch])
        out = render(G, z_all[lo:lo + batch].to(device), camera, flame_input(G, items, device),
                     seed=seed * 100003 + k, truncation_psi=truncation_psi)
        for image in to_uint8(out["image"]):
            found.append(faces.analyse(image, descriptor=False, landmarks=False).detected)
        if on_progress is not None:
            on_progress(len(idx))
    return {"face_rate": float(np.mean(found)), "face_rate_num": int(num), "face_rate_max_yaw_deg": float(max_yaw_deg)}


def mouth_gap(landmarks: np.ndarray) -> float:
    """Inner-lip opening of 68 landmarks (68, 2): mean distance of the pairs (61, 67), (62, 66),
    (63, 65) over the outer-eye-corner distance (36, 45)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise MetricError(f"landmarks: expected (68, 2), got {lm.shape}")
    gap = np.mean([np.linalg.norm(lm[a] - lm[b]) for a, b in INNER_LIP_PAIRS])
    return float(gap / max(np.linalg.norm(lm[EYE_CORNERS[0]] - lm[EYE_CORNERS[1]]), 1e-9))


def jaw_mouth_opening(G: torch.nn.Module, num: int, *, jaws: Sequence[float] = DEFAULT_JAWS, batch: int = 4,
                      seed: int = 0, truncation_psi: float = 1.0, faces=None,
                      on_progress: Progress = None) -> Dict[str, float]:
    """Metric `jaw_mouth` (module docstring); `num` identities x len(jaws) renders."""
    jaws = [float(j) for j in jaws]
    if num < 1 or len(jaws) < 2:
        raise MetricError(f"jaw_mouth: expected at least 1 identity and 2 jaw angles, got {num} and {len(jaws)}")
    if any(b <= a for a, b in zip(jaws, jaws[1:])):
        raise MetricError(f"jaw_mouth: jaw angles must increase, got {jaws}")
    faces = faces or _face_models()
    device = generator_device(G)
    z_all = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed))
    gaps = np.zeros((num, len(jaws)))
    detected = []
    zero = torch.zeros(1, 3, device=device)
    for k, lo in enumerate(range(0, num, batch)):
        z = z_all[lo:lo + batch].to(device)
        n = z.shape[0]
        camera = _orbit(G, torch.zeros(n), torch.zeros(n))
        ws = G.mapping(z, camera, truncation_psi=truncation_psi)
        for j, angle in enumerate(jaws):
            jaw = torch.tensor([[angle, 0.0, 0.0]], device=device).expand(n, 3)
            flame = {"jaw": jaw, "neck": zero.expand(n, 3), "left_eye": zero.expand(n, 3),
                     "right_eye": zero.expand(n, 3)}
            out = render(G, None, camera, flame, seed=seed * 100003 + k, ws=ws)
            for i, image in enumerate(to_uint8(out["image"])):
                res = faces.analyse(image, descriptor=False, landmarks=True)
                gaps[lo + i, j] = mouth_gap(res.landmarks)
                detected.append(res.detected)
        if on_progress is not None:
            on_progress(n)
    means = gaps.mean(axis=0)
    out = {f"jaw_gap_{angle:g}": float(m) for angle, m in zip(jaws, means)}
    out.update({"jaw_gap_increase": float(np.mean(gaps[:, -1] - gaps[:, 0])),
                "jaw_monotonic": float(np.mean(np.all(np.diff(gaps, axis=1) > 0, axis=1))),
                "jaw_mean_monotonic": float(np.all(np.diff(means) > 0)),
                "jaw_detected": float(np.mean(detected)), "jaw_num": int(num)})
    return out


def depth_against_ground_truth(G: torch.nn.Module, dataset, num: int, *, batch: int = 4, seed: int = 0,
                               truncation_psi: float = 1.0, on_progress: Progress = None) -> Dict[str, float]:
    """Metric `depth` (module docstring); `dataset` must load ground truth (`load_ground_truth=True`)."""
    from next3d.generate import deterministic_rays
    from training.metrics.consistency import camera_points, geometry_error

    if num < 1:
        raise MetricError(f"depth: expected at least 1 item, got {num}")
    device = generator_device(G)
    indices = condition_indices(len(dataset), num, seed)
    z_all = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed))
    rows: Dict[str, list] = {k: [] for k in ("depth_l1", "normal_deg", "depth_mean", "depth_gt_mean",
                                             "depth_relief", "depth_gt_relief")}
    valid = []
    with deterministic_rays(G):
        for k, lo in enumerate(range(0, num, batch)):
            idx = indices[lo:lo + batch]
            items = [dataset[int(i)] for i in idx]
            if any("ground_truth" not in it for it in items):
                raise MetricError("depth: the data set items carry no ground truth (a next3d set with gt/*.npz, "
                                  "opened with load_ground_truth=True; `next3d dataset synth` writes it)")
            camera = torch.stack([torch.as_tensor(it["camera"]).float() for it in items]).to(device)
            out = render(G, z_all[lo:lo + batch].to(device), camera, flame_input(G, items, device),
                         seed=seed * 100003 + k, truncation_psi=truncation_psi)
            gt = {key: torch.stack([it["ground_truth"][key] for it in items]).to(device)
                  for key in ("depth", "mask", "normals") if key in items[0]["ground_truth"]}
            if "depth" not in gt or "mask" not in gt:
                raise MetricError("depth: the ground truth needs 'depth' and 'mask' arrays (docs/dataset_format.md)")
            err = geometry_error(out["image_depth"], camera, gt["depth"], gt["mask"], gt.get("normals"))
            res = out["image_depth"].shape[-1]
            near = torch.nn.functional.interpolate
            z_gt = near(gt["depth"][:, None].float(), size=(res, res), mode="nearest")[:, 0]
            mask = (near(gt["mask"][:, None].float(), size=(res, res), mode="nearest")[:, 0] > 0) & (z_gt > 0)
            z = camera_points(out["image_depth"], camera)[..., 2]
            for b in range(len(idx)):
                m = mask[b]
                valid.append(bool(m.any()))
                if not m.any():
                    continue
                rows["depth_l1"].append(float(err["depth_l1"][b]))
                if "normal_deg" in err and math.isfinite(float(err["normal_deg"][b])):
                    rows["normal_deg"].append(float(err["normal_deg"][b]))
                rows["depth_mean"].append(float(z[b][m].mean()))
                rows["depth_gt_mean"].append(float(z_gt[b][m].mean()))
                rows["depth_relief"].append(float(z[b][m].std(unbiased=False)))
                rows["depth_gt_relief"].append(float(z_gt[b][m].std(unbiased=False)))
            if on_progress is not None:
                on_progress(len(idx))
    result = {key: float(np.mean(v)) if v else float("nan") for key, v in rows.items()}
    result.update({"depth_valid": float(np.mean(valid)), "depth_num": int(num)})
    return result


def generate_speed(G: torch.nn.Module, num: int, *, batch: int = 4, on_progress: Progress = None) -> Dict[str, float]:
    """Metric `speed` (module docstring) -> {'images_per_s', 'seconds_per_image', 'cpu_seconds_per_image',
    'speed_num', 'speed_batch', 'speed_threads'}."""
    from next3d.generate import GenerateOptions, generate

    if num < 1:
        raise MetricError(f"speed: expected at least 1 image, got {num}")
    options = GenerateOptions(views=1, batch=batch)
    device = generator_device(G)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in generate(G, [num], None, options):  # warm-up: op builds, allocator, caches
        pass
    sync()
    started, cpu_started = time.perf_counter(), time.process_time()
    for result in generate(G, list(range(num)), None, options):
        if on_progress is not None:
            on_progress(int(result.images.shape[0]))
    sync()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return {"images_per_s": num / seconds, "seconds_per_image": seconds / num, "cpu_seconds_per_image": cpu / num,
            "speed_num": int(num), "speed_batch": int(batch), "speed_threads": int(torch.get_num_threads())}
