"""Where the face mesh's 468 points lie on a head model's surface: measured on renders, not copied.

Like the dlib calibration (`calibrate`), the correspondence is measured where the truth is known:
the head is rendered photographically (`calibrate.render_photographic_views`: random identities,
expressions, jaw openings and cameras, |yaw| <= 40, |pitch| <= 15 deg), the face mesh runs on each
render, and the FLAME mesh alone is rasterised under the same camera, so each detected point falls
on a known triangle (the one covering its pixel; its screen-space barycentrics at the exact point).
Carried to the mean head (zero shape, expression and pose), the samples of point k are a cloud in
one frame; the point's location is the surface point nearest to the cloud's coordinate-wise median
(searched over the triangles near it). Points whose detections scatter (the cheek contour slides over
the surface as the head turns) are down-weighted: with r_k the median distance, in pixels at 512,
between the detections and the re-projected location over the views, w_k = 1 / (1 + (r_k / 2 px)^2);
points on the mesh in fewer than 75 % of the views or with r_k > 6 px get weight 0. (For the
built-in head r_k is 3.1 / 4.6 / 7.1 px at the 10th / 50th / 90th percentile; 364 points are used.)

Optional per-point FLAME-space offsets (`solve_correspondence(offsets=True)`, the dlib calibration's
solver) lower the residuals only from 4.6 to 4.1 px median and did not lower the rotation error of
held-out fits (3.1 vs 2.9 deg median), so the stored correspondence has none (zeros).

`MeshCorrespondence` holds faces (K,), barycentrics (K, 3), offsets (K, 3) and weights (K,). The
built-in head's (96 views, seed 1000) is stored in `data/facemesh_<head>_<version>_correspondence.npz` (keyed
by head version and topology); `load_correspondence` reads it, or for any other head (a real FLAME
folder) builds it at first use and keeps it in ~/.cache/next3d/facemesh (96 photographic renders:
about 5 minutes of CPU on an idle machine, 14 on a busy one). Regenerate the stored one after the
built-in head changes:
`NEXT3D_REGENERATE_FACEMESH=1 python -m pytest tests/next3d/fitting/test_facemesh.py`.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from next3d.fitting.stored_data import stored_file

RESOLUTION = 512
REF_PX = 2.0
MAX_PX = 6.0
MIN_SEEN = 0.75
SEARCH_RADIUS = 0.02  # metres: triangles this close to a point's median are searched for the nearest


@dataclass(frozen=True)
class MeshCorrespondence:
    """faces (K,) int64 triangle of each point; bary (K, 3) float32; offsets (K, 3) float32 metres, FLAME
    space, added to the surface points; weights (K,) float32 (0 = unused); residual_px (K,) the median
    re-projection residual measured at 512 px; head: head_identity keys."""

    faces: torch.Tensor
    bary: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor
    residual_px: torch.Tensor
    head: dict
    info: dict


def _head_key(head: dict):
    return [head["head_model"], head["head_version"], head["head_topology"]]


def stored_path(head: dict) -> Path:
    return stored_file("facemesh", head, "_correspondence.npz")


def cache_path(head: dict) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    name = f"{head['head_model']}_{head['head_version']}_{head['head_topology'][:16]}.npz"
    return Path(base) / "next3d" / "facemesh" / "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)


def rasterize_flame(verts: torch.Tensor, faces: torch.Tensor, c: torch.Tensor, resolution: int):
    """Fragments of the FLAME mesh (1, V, 3) under the label c (1, 25), and its vertices in pixels (V, 2)."""
    from next3d.render.cameras import project
    from next3d.render.projection import perspective_from_label
    from next3d.render.rasterize import rasterize
    from next3d.render.triplane_coords import flame_to_world

    world = flame_to_world(verts.float())
    ndc, w = perspective_from_label(world, c.float())
    frags = rasterize(ndc, faces, (resolution, resolution), clip_w=w, perspective_correct=True)
    px = project(world, c.float())[0, :, :2] * resolution
    return frags, px


def surface_samples(points: np.ndarray, frags, px: torch.Tensor, faces: torch.Tensor):
    """Detected points (K, 2) pixels -> (face (K,), bary (K, 3)) of the visible triangle under each point;
    face -1 where the point is off the mesh. Barycentrics are solved at the exact point in screen space."""
    res = frags.face_idx.shape[1]
    ij = np.floor(points).astype(np.int64)
    inside = (ij >= 0).all(1) & (ij < res).all(1)
    fid = np.full(len(points), -1, np.int64)
    fid[inside] = frags.face_idx[0, ij[inside, 1], ij[inside, 0]].numpy()
    bary = np.zeros((len(points), 3))
    ok = fid >= 0
    tri = px[faces[fid[ok]]].double().numpy()  # (n, 3, 2)
    a = np.stack([tri[:, 0] - tri[:, 2], tri[:, 1] - tri[:, 2]], axis=2)  # (n, 2, 2)
    lam = np.linalg.solve(a, (points[ok] - tri[:, 2])[..., None])[..., 0]
    b = np.concatenate([lam, 1 - lam.sum(1, keepdims=True)], axis=1).clip(0, None)
    bary[ok] = b / b.sum(1, keepdims=True)
    return fid, bary


def closest_on_triangles(p: np.ndarray, tri: np.ndarray):
    """Closest points on triangles tri (T, 3, 3) to p (3,) -> (distances (T,), barycentrics (T, 3)).
    Projects onto the plane; outside the triangle, the closest point of the three edges."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]

    def on_segment(u, v):
        d = v - u
        t = np.clip(((p - u) * d).sum(1) / np.maximum((d * d).sum(1), 1e-18), 0, 1)
        return t, u + t[:, None] * d

    n = np.cross(b - a, c - a)
    area2 = np.maximum((n * n).sum(1), 1e-24)
    q = p - ((p - a) * n).sum(1, keepdims=True) * n / area2[:, None]
    bb = (np.cross(c - b, q - b) * n).sum(1) / area2
    bc = (np.cross(a - c, q - c) * n).sum(1) / area2
    bary = np.stack([bb, bc, 1 - bb - bc], axis=1)
    best_d = np.where((bary >= 0).all(1), np.linalg.norm(q - p, axis=1), np.inf)
    best_b = bary.copy()
    for (i, j), (u, v) in zip(((0, 1), (1, 2), (2, 0)), ((a, b), (b, c), (c, a))):
        t, s = on_segment(u, v)
        d = np.linalg.norm(s - p, axis=1)
        better = d < best_d
        e = np.zeros_like(bary)
        e[:, i], e[:, j] = 1 - t, t
        best_d = np.where(better, d, best_d)
        best_b[better] = e[better]
    return best_d, best_b


@dataclass(frozen=True)
class ViewSamples:
    """Detections on calibration renders: params / c of the views used (N); fid (N, K) triangle under each
    point (-1: off the mesh), bary (N, K, 3); det_px (N, K, 2) the detected points; resolution."""

    params: dict
    c: torch.Tensor
    fid: np.ndarray
    bary: np.ndarray
    det_px: np.ndarray
    resolution: int


def measure_views(flame, detector, count: int = 96, seed: int = 1000, flame_dir=None,
                  resolution: int = RESOLUTION) -> ViewSamples:
    """Render `count` calibration views photographically, run `detector` (a `FaceMeshDetector`) and find the
    surface sample under each detected point."""
    from next3d.fitting.calibrate import calibration_views, render_photographic_views

    params, c = calibration_views(flame, count, seed)
    images = render_photographic_views(params, c, resolution, seed=seed, flame_dir=flame_dir)
    with torch.no_grad():
        verts = flame(**params).vertices
    keep, samples = [], []
    for i, img in enumerate(images):
        try:
            det = detector.detect(img)
        except ValueError:
            continue
        frags, px = rasterize_flame(verts[i:i + 1], flame.faces, c[i:i + 1], resolution)
        samples.append(surface_samples(det.mesh, frags, px, flame.faces) + (det.mesh,))
        keep.append(i)
    if len(keep) < max(4, count // 2):
        raise RuntimeError(f"face-mesh correspondence: the detector found only {len(keep)} of {count} faces")
    idx = torch.as_tensor(keep)
    return ViewSamples(params={k: v[idx] for k, v in params.items()}, c=c[idx],
                       fid=np.stack([s[0] for s in samples]), bary=np.stack([s[1] for s in samples]),
                       det_px=np.stack([s[2] for s in samples]), resolution=resolution)


def surface_locations(flame, views: ViewSamples):
    """Per point the surface location (faces (K,), bary (K, 3)) nearest to the median of its samples carried
    to the mean head, and the fraction of views in which it fell on the mesh (K,)."""
    with torch.no_grad():
        mean_v = flame().vertices[0].double().numpy()
    f_np = flame.faces.numpy()
    fid, seen = views.fid, views.fid >= 0
    pos = (mean_v[f_np[fid.clip(0)]] * views.bary[..., None]).sum(2)  # (N, K, 3) on the mean head
    centroids = mean_v[f_np].mean(1)
    k_pts = fid.shape[1]
    out_f = np.zeros(k_pts, np.int64)
    out_b = np.full((k_pts, 3), 1 / 3)
    for k in range(k_pts):
        if seen[:, k].sum() == 0:
            continue
        med = np.median(pos[seen[:, k], k], axis=0)
        near = np.nonzero(np.linalg.norm(centroids - med, axis=1) < SEARCH_RADIUS)[0]
        if near.size == 0:
            near = np.argsort(np.linalg.norm(centroids - med, axis=1))[:16]
        d, b = closest_on_triangles(med, mean_v[f_np[near]])
        j = int(np.argmin(d))
        out_f[k], out_b[k] = near[j], b[j]
    return out_f, out_b, seen.mean(0)


def solve_correspondence(flame, views: ViewSamples, head: Optional[dict] = None, offsets: bool = False,
                         info: Optional[dict] = None) -> MeshCorrespondence:
    """Surface locations, then (offsets=True) FLAME-space offsets (K, 3) solved like the dlib calibration's
    (`calibrate.solve_offsets`: robust re-projection over the views, small-norm prior), then weights from
    each point's median re-projection residual."""
    from next3d.fitting.calibrate import solve_offsets
    from next3d.fitting.landmark_fit import project_landmarks
    from next3d.fitting.landmark_head import LandmarkHead

    faces, bary, frac = surface_locations(flame, views)
    head_pts = LandmarkHead(flame, (torch.as_tensor(faces), torch.as_tensor(bary, dtype=torch.float32)))
    n = views.c.shape[0]
    p = views.params
    shape = torch.nn.functional.pad(p["shape"], (0, head_pts.num_shape - p["shape"].shape[1]))
    expr = torch.nn.functional.pad(p["expression"], (0, head_pts.num_expression - p["expression"].shape[1]))
    pose = torch.zeros(n, 3 * head_pts.num_joints)
    pose[:, 6:9] = p["jaw"]
    with torch.no_grad():
        lmk = head_pts(shape, expr, pose)
    detected = torch.as_tensor(views.det_px, dtype=torch.float32)
    delta = solve_offsets(lmk, views.c, detected, views.resolution) if offsets else torch.zeros_like(lmk[0])
    with torch.no_grad():
        uv = project_landmarks(lmk + delta, views.c).numpy() * views.resolution
    err2 = ((uv - views.det_px) ** 2).sum(-1)
    med = np.sqrt(np.median(err2, axis=0)) * (RESOLUTION / views.resolution)
    weights = 1.0 / (1.0 + (med / REF_PX) ** 2)
    weights[(frac < MIN_SEEN) | (med > MAX_PX)] = 0.0
    info = {**(info or {}), "views": n, "resolution": views.resolution, "renders": "photographic",
            "ref_px": REF_PX, "max_px": MAX_PX, "offsets": bool(offsets)}
    return MeshCorrespondence(faces=torch.as_tensor(faces), bary=torch.as_tensor(bary, dtype=torch.float32),
                              offsets=delta.float(), weights=torch.as_tensor(weights, dtype=torch.float32),
                              residual_px=torch.as_tensor(med, dtype=torch.float32), head=dict(head or {}), info=info)


def build_correspondence(flame, detector, count: int = 96, seed: int = 1000, flame_dir=None,
                         resolution: int = RESOLUTION, head: Optional[dict] = None) -> MeshCorrespondence:
    """Measure the correspondence of `detector`'s mesh points (a `FaceMeshDetector`) on `count` renders."""
    views = measure_views(flame, detector, count, seed, flame_dir, resolution)
    return solve_correspondence(flame, views, head, info={"seed": seed,
                                                          "model": Path(getattr(detector, "model_path", "")).name})


def save_correspondence(corr: MeshCorrespondence, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, faces=corr.faces.numpy().astype(np.int32), bary=corr.bary.numpy().astype(np.float32),
                        offsets=corr.offsets.numpy().astype(np.float32),
                        weights=corr.weights.numpy().astype(np.float32),
                        residual_px=corr.residual_px.numpy().astype(np.float32),
                        head=np.array(_head_key(corr.head)), info=np.array(json.dumps(corr.info)))
    tmp.replace(path)
    return path


def read_correspondence(path: Path, head: dict) -> Optional[MeshCorrespondence]:
    """The correspondence in `path` if it belongs to `head` (model, version, topology), else None."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        if [str(v) for v in data["head"]] != _head_key(head):
            return None
        return MeshCorrespondence(faces=torch.from_numpy(data["faces"].astype(np.int64)),
                                  bary=torch.from_numpy(data["bary"]), offsets=torch.from_numpy(data["offsets"]),
                                  weights=torch.from_numpy(data["weights"]),
                                  residual_px=torch.from_numpy(data["residual_px"]), head=dict(head),
                                  info=json.loads(str(data["info"])))


@functools.lru_cache(maxsize=4)
def _load(flame_dir: Optional[str]) -> MeshCorrespondence:
    from next3d.fitting.facemesh import FaceMeshDetector
    from next3d.flame import FLAME, load_flame_model
    from training.dataset_schema import head_identity

    model = load_flame_model(flame_dir)
    head = head_identity(model)
    for path in (stored_path(head), cache_path(head)):
        corr = read_correspondence(path, head)
        if corr is not None:
            return corr
    corr = build_correspondence(FLAME(model), FaceMeshDetector(), flame_dir=flame_dir, head=head)
    save_correspondence(corr, cache_path(head))
    return corr


def load_correspondence(flame_dir: Optional[str] = None) -> MeshCorrespondence:
    """The face-mesh correspondence of the head in `flame_dir` (None: $NEXT3D_FLAME_DIR, else the built-in
    head): stored, cached, or built now (needs the face-mesh packages)."""
    from next3d.flame.files import resolve_flame_dir

    resolved = resolve_flame_dir(flame_dir)
    return _load(None if resolved is None else str(resolved))
