"""Checking a data set: counts, splits, label statistics and every problem found.

Unlike `ImageDataset`, which stops at the first problem, `check_dataset` goes through the
whole set (decoding every image, reading every ground-truth file and mesh) and collects
all problems, one line each, naming the file or item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from training.dataset_schema import FLAME_KEYS, LABELS_FILE, SPLITS, DatasetError, parse_labels
from training.dataset_storage import IMAGE_SUFFIXES, Storage, decode_image, probe_image, read_npz
from training.published_layout import PUBLISHED_LABELS, parse_published, read_landmarks_3d, read_vertices

PathLike = Union[str, Path]
MAX_PROBLEMS_LISTED = 50


def camera_angles(cameras: np.ndarray) -> Dict[str, np.ndarray]:
    """Yaw and pitch (radians) of camera labels (N, 25): the direction from the subject to
    the camera, -forward = (cos p sin y, sin p, cos p cos y) as `orbit_cam2world`; also the
    distance of the camera from the world origin."""
    c2w = cameras[:, :16].reshape(-1, 4, 4)
    back = -c2w[:, :3, 2]
    back = back / np.maximum(np.linalg.norm(back, axis=1, keepdims=True), 1e-12)
    return {"yaw": np.arctan2(back[:, 0], back[:, 2]), "pitch": np.arcsin(np.clip(back[:, 1], -1, 1)),
            "distance": np.linalg.norm(c2w[:, :3, 3], axis=1)}


def _camera_problems(cameras: np.ndarray, names: List[str]) -> List[str]:
    out = []
    c2w = cameras[:, :16].reshape(-1, 4, 4).astype(np.float64)
    rot = c2w[:, :3, :3]
    ortho = np.abs(np.einsum("nij,nkj->nik", rot, rot) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(rot)
    intr = cameras[:, 16:].reshape(-1, 3, 3)
    for i in np.flatnonzero((ortho > 1e-3) | (det < 0)):
        out.append(f"{names[i]}: camera rotation is not a rotation (|R R^T - I| = {ortho[i]:.2g}, det {det[i]:.3f})")
    for i in np.flatnonzero(~np.isclose(c2w[:, 3], [0, 0, 0, 1], atol=1e-5).all(axis=1)):
        out.append(f"{names[i]}: camera cam2world last row is not (0, 0, 0, 1)")
    for i in np.flatnonzero((intr[:, 0, 0] <= 0) | (intr[:, 1, 1] <= 0) | ~np.isclose(intr[:, 2, 2], 1)):
        out.append(f"{names[i]}: camera intrinsics are not normalised (fx, fy > 0 and K[2, 2] = 1 expected)")
    return out


def _stats(values: np.ndarray) -> Dict[str, Any]:
    return {"mean": values.mean(axis=0).tolist(), "std": values.std(axis=0).tolist(),
            "min": float(values.min()), "max": float(values.max())}


@dataclass
class DatasetReport:
    """What `check_dataset` found. `problems` empty = the set is fine."""

    path: str
    layout: str = "unknown"
    num_items: int = 0
    splits: Dict[str, int] = field(default_factory=dict)
    resolution: Optional[int] = None
    head: Dict[str, Any] = field(default_factory=dict)
    cameras: Dict[str, Any] = field(default_factory=dict)
    flame: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    ground_truth_items: int = 0
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)

    def to_text(self) -> str:
        lines = [f"data set {self.path} ({self.layout} layout)"]
        if self.num_items:
            lines.append(f"  items: {self.num_items} (" + ", ".join(f"{k} {v}" for k, v in self.splits.items()) + ")")
        if self.resolution:
            lines.append(f"  resolution: {self.resolution}x{self.resolution}")
        if self.head:
            lines.append("  head: " + ", ".join(f"{k}={v}" for k, v in self.head.items()))
        if self.cameras:
            c = self.cameras
            lines.append(f"  yaw: {c['yaw_min']:.1f} .. {c['yaw_max']:.1f} deg (mean {c['yaw_mean']:.1f}, std "
                         f"{c['yaw_std']:.1f}); pitch: {c['pitch_min']:.1f} .. {c['pitch_max']:.1f} deg (mean "
                         f"{c['pitch_mean']:.1f}, std {c['pitch_std']:.1f}); camera distance {c['distance_min']:.2f}"
                         f" .. {c['distance_max']:.2f}; focal {c['focal_min']:.4f} .. {c['focal_max']:.4f}")
        for key, s in self.flame.items():
            mean, std = np.asarray(s["mean"]), np.asarray(s["std"])
            if mean.size == 0:
                continue
            lines.append(f"  flame.{key} ({mean.size}): mean {mean.mean():+.3f} (|max| {np.abs(mean).max():.3f}), "
                         f"std {std.mean():.3f} ({std.min():.3f} .. {std.max():.3f}), range {s['min']:+.3f} .. "
                         f"{s['max']:+.3f}")
        if self.layout == "next3d":
            lines.append(f"  ground truth: {self.ground_truth_items} of {self.num_items} items")
        if self.problems:
            lines.append(f"  problems ({len(self.problems)}):")
            lines += [f"    {p}" for p in self.problems[:MAX_PROBLEMS_LISTED]]
            if len(self.problems) > MAX_PROBLEMS_LISTED:
                lines.append(f"    ... and {len(self.problems) - MAX_PROBLEMS_LISTED} more")
        else:
            lines.append("  no problems found")
        return "\n".join(lines)


def _camera_summary(cameras: np.ndarray) -> Dict[str, float]:
    ang = camera_angles(cameras)
    out = {}
    for key in ("yaw", "pitch"):
        deg = np.degrees(ang[key])
        out.update({f"{key}_min": float(deg.min()), f"{key}_max": float(deg.max()), f"{key}_mean": float(deg.mean()),
                    f"{key}_std": float(deg.std())})
    out.update(distance_min=float(ang["distance"].min()), distance_max=float(ang["distance"].max()),
               focal_min=float(cameras[:, 16].min()), focal_max=float(cameras[:, 16].max()))
    return out


def _check_image(storage: Storage, name: str, resolution: Optional[int], problems: List[str]) -> Optional[int]:
    try:
        _, width, height = probe_image(storage, name)
        image = decode_image(storage, name)
    except DatasetError as exc:
        problems.append(str(exc))
        return None
    if width != height:
        problems.append(f"{storage.where(name)}: {width}x{height} image, expected a square image")
    elif resolution is not None and width != resolution:
        problems.append(f"{storage.where(name)}: {width}x{height} image, expected {resolution}x{resolution}")
    if image.shape[:2] != (height, width):
        problems.append(f"{storage.where(name)}: decodes to {image.shape[1]}x{image.shape[0]}, header says "
                        f"{width}x{height}")
    return width


def check_dataset(path: PathLike, progress=None) -> DatasetReport:
    """Check a data set completely; never raises for problems of the set (they are listed).

    `progress`: an optional wrapper for the item loop (e.g. tqdm).
    """
    report = DatasetReport(path=str(path))
    wrap = progress or (lambda it, **kw: it)
    try:
        storage = Storage(path)
    except DatasetError as exc:
        report.problems.append(str(exc))
        return report
    if storage.exists(LABELS_FILE):
        _check_next3d(storage, report, wrap)
    elif storage.exists(PUBLISHED_LABELS):
        _check_published(storage, report, wrap)
    else:
        report.problems.append(f"{path}: no {LABELS_FILE} (next3d format) and no {PUBLISHED_LABELS} (published "
                               f"Next3D layout)")
    return report


def _check_next3d(storage: Storage, report: DatasetReport, wrap) -> None:
    report.layout = "next3d"
    try:
        labels = parse_labels(storage.read(LABELS_FILE), storage.where(LABELS_FILE))
    except DatasetError as exc:
        report.problems.append(str(exc))
        return
    n = len(labels)
    report.num_items = n
    report.splits = {s: labels.splits.count(s) for s in SPLITS}
    report.resolution = labels.resolution
    report.head = {"model": labels.head_model, "version": labels.head_version, "topology": labels.head_topology,
                   "num_shape": labels.num_shape, "num_expression": labels.num_expression}
    report.cameras = _camera_summary(labels.cameras)
    report.flame = {k: _stats(labels.flame[k]) for k in FLAME_KEYS}
    report.problems += _camera_problems(labels.cameras, labels.images)
    listed = set(labels.images) | {g for g in labels.ground_truth if g}
    unlisted = sorted(x for x in storage.names() if x.lower().endswith(IMAGE_SUFFIXES) and x not in listed)
    if unlisted:
        report.problems.append(f"{storage.where(unlisted[0])} and {len(unlisted) - 1} more: {len(unlisted)} images "
                               f"not listed in {LABELS_FILE} ({n} items listed, {n + len(unlisted)} images found)")
    r = labels.resolution
    for i in wrap(range(n), desc="checking", unit="img"):
        name = labels.images[i]
        if not storage.exists(name):
            report.problems.append(f"{storage.where(name)}: missing (listed as item {i})")
            continue
        _check_image(storage, name, r, report.problems)
        lmk = labels.landmarks_2d[i]
        outside = int(((lmk < -0.5 * r) | (lmk > 1.5 * r)).any(axis=1).sum())
        if outside:
            report.problems.append(f"{storage.where(name)}: {outside} of 68 landmarks lie far outside the image "
                                   f"(pixel coordinates expected)")
        gt = labels.ground_truth[i]
        if gt is None:
            continue
        if not storage.exists(gt):
            report.problems.append(f"{storage.where(gt)}: missing (ground truth of item {i})")
            continue
        try:
            arrays = read_npz(storage, gt)
        except DatasetError as exc:
            report.problems.append(str(exc))
            continue
        report.ground_truth_items += 1
        for key, arr in arrays.items():
            if key in ("depth", "mask", "segmentation", "normals") and arr.shape[:2] != (r, r):
                report.problems.append(f"{storage.where(gt)}: '{key}' has shape {arr.shape}, expected ({r}, {r}, ...)")
            if key == "normals" and arr.shape[-1:] != (3,):
                report.problems.append(f"{storage.where(gt)}: 'normals' must end in 3 channels, got {arr.shape}")
            if key == "vertices" and (arr.ndim != 2 or arr.shape[1] != 3):
                report.problems.append(f"{storage.where(gt)}: 'vertices' must be (V, 3), got {arr.shape}")


def _check_published(storage: Storage, report: DatasetReport, wrap) -> None:
    report.layout = "published"
    try:
        pub = parse_published(storage)
    except DatasetError as exc:
        report.problems.append(str(exc))
        return
    report.num_items = len(pub)
    report.splits = {"train": len(pub)}
    report.head = {"model": "flame (meshes)", "vertices": pub.num_vertices, "topology": pub.head_topology}
    report.cameras = _camera_summary(pub.cameras)
    report.problems += _camera_problems(pub.cameras, pub.images)
    first = None
    for i in wrap(range(len(pub)), desc="checking", unit="img"):
        size = _check_image(storage, pub.images[i], first, report.problems)
        first = first or size
        for reader, name in ((lambda n: read_vertices(storage, n, pub.num_vertices), pub.meshes[i]),
                             (lambda n: read_landmarks_3d(storage, n), pub.landmark_files[i])):
            try:
                reader(name)
            except DatasetError as exc:
                report.problems.append(str(exc))
    report.resolution = first


def label_arrays(path: PathLike) -> Dict[str, np.ndarray]:
    """Pose and expression labels of every item, for plots: yaw, pitch (degrees), jaw
    opening (degrees, the jaw's rotation about x), expression (N, E) (empty for the published layout)."""
    storage = Storage(path)
    if storage.exists(LABELS_FILE):
        labels = parse_labels(storage.read(LABELS_FILE), storage.where(LABELS_FILE))
        cameras, jaw, expr = labels.cameras, labels.flame["jaw"][:, 0], labels.flame["expression"]
    elif storage.exists(PUBLISHED_LABELS):
        pub = parse_published(storage)
        cameras, jaw, expr = pub.cameras, np.zeros(0), np.zeros((len(pub), 0))
    else:
        raise DatasetError(f"{path}: no {LABELS_FILE} and no {PUBLISHED_LABELS}")
    ang = camera_angles(cameras)
    return {"yaw": np.degrees(ang["yaw"]), "pitch": np.degrees(ang["pitch"]), "jaw": np.degrees(jaw),
            "expression": expr}

