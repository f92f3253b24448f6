"""Face detection and 68 iBUG landmarks, offline on the CPU.

Interface: a `LandmarkDetector` turns an (H, W, 3) uint8 RGB image into a `Detection`
(68 landmarks in pixels, the face box, how many faces were found). Backends:

* `DlibDetector` (default): dlib's HOG frontal-face detector and its 68-point shape
  predictor; the model file comes from the `face_recognition_models` package, located
  through importlib (never imported: its `__init__` needs pkg_resources).
* `facemesh.FaceMeshDetector` ("facemesh"): dlib's box and 68 points plus MediaPipe's 468-point
  face mesh in `Detection.mesh` (optional packages; see `next3d.fitting.facemesh`).

Pixel convention (as `docs/dataset_format.md`): origin at the top-left CORNER of the
top-left pixel, x right, y down; pixel centres at k + 0.5. dlib reports integer pixel
indices (centres), so 0.5 is added.

Several faces: the largest box is used, or the K-th largest with `face=K` (0-based).
Huge images are downscaled to at most `detect_max_side` pixels for the detector; the
landmark predictor then runs on the full-resolution image inside the scaled-back box.
"""

from __future__ import annotations

import abc
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

NUM_LANDMARKS = 68


class DetectionError(ValueError):
    """No usable face in an image; the message says why."""


class NoFaceError(DetectionError):
    """The detector found no face."""


class FaceTooSmallError(DetectionError):
    """A face was found but is too small to fit."""


@dataclass(frozen=True)
class Detection:
    """landmarks (68, 2) float64 pixels (corner origin); box (x0, y0, x1, y1) pixels;
    num_faces: faces the detector found; face_index: which one was used (0 = largest);
    mesh: a dense landmark set (N, 2) pixels from a mesh backend (`facemesh`), else None."""

    landmarks: np.ndarray
    box: Tuple[float, float, float, float]
    num_faces: int
    face_index: int
    mesh: Optional[np.ndarray] = None


def face_models_dir() -> Path:
    """The `models/` folder of the installed `face_recognition_models` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectionError("the dlib landmark model is missing: install the 'face_recognition_models' package "
                             "(pip install face_recognition_models)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class LandmarkDetector(abc.ABC):
    """Interface: `detect(image (H, W, 3) uint8, face=None, what="image") -> Detection`."""

    name = "base"

    @abc.abstractmethod
    def detect(self, image: np.ndarray, face: Optional[int] = None, what: str = "image") -> Detection:
        """Landmarks of face `face` (None = the largest) in `image`; DetectionError when none."""


def _check_image(image: np.ndarray, what: str) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        desc = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"{what}: expected an (H, W, 3) uint8 RGB array, got {desc}")


class DlibDetector(LandmarkDetector):
    """dlib HOG detector + 68-point shape predictor.

    Args:
        detect_max_side: images larger than this (longest side, px) are downscaled for detection.
        upsample: dlib's upsampling passes (1 finds faces down to ~40 px at detection scale).
        min_face: faces whose box is smaller than this (px, in the original image) are rejected.
    """

    name = "dlib"

    def __init__(self, detect_max_side: int = 1024, upsample: int = 1, min_face: float = 40.0):
        try:
            import dlib
        except ImportError:
            raise DetectionError("dlib is not installed (pip install dlib-bin)") from None
        model = face_models_dir() / "shape_predictor_68_face_landmarks.dat"
        if not model.is_file():
            raise DetectionError(f"dlib landmark model not found at {model}")
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(model))
        self.detect_max_side = int(detect_max_side)
        self.upsample = int(upsample)
        self.min_face = float(min_face)

    def detect(self, image: np.ndarray, face: Optional[int] = None, what: str = "image") -> Detection:
        """Find faces, pick the largest (or the `face`-th largest), return its 68 landmarks."""
        _check_image(image, what)
        h, w = image.shape[:2]
        scale = min(1.0, self.detect_max_side / max(h, w))
        small = image
        if scale < 1.0:
            from PIL import Image

            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
            scale_x, scale_y = size[0] / w, size[1] / h
        else:
            scale_x = scale_y = 1.0
        rects = list(self._detector(np.ascontiguousarray(small), self.upsample))
        if not rects:
            raise NoFaceError(f"{what}: no face found")
        boxes = [(r.left() / scale_x, r.top() / scale_y, (r.right() + 1) / scale_x, (r.bottom() + 1) / scale_y)
                 for r in rects]
        order = sorted(range(len(boxes)), key=lambda i: -(boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1]))
        k = 0 if face is None else int(face)
        if not 0 <= k < len(order):
            raise NoFaceError(f"{what}: face {k} requested but only {len(order)} face(s) found")
        x0, y0, x1, y1 = boxes[order[k]]
        if min(x1 - x0, y1 - y0) < self.min_face:
            raise FaceTooSmallError(f"{what}: face too small ({x1 - x0:.0f} px wide; at least {self.min_face:.0f} "
                                    f"px needed)")
        rect = self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)) - 1, int(round(y1)) - 1)
        shape = self._predictor(np.ascontiguousarray(image), rect)
        pts = np.array([[shape.part(i).x, shape.part(i).y] for i in range(NUM_LANDMARKS)], dtype=np.float64) + 0.5
        return Detection(landmarks=pts, box=(x0, y0, x1, y1), num_faces=len(boxes), face_index=k)


def make_detector(name: str = "dlib", **kwargs) -> LandmarkDetector:
    """A detector backend by name ("dlib" or "facemesh")."""
    if name == "dlib":
        return DlibDetector(**kwargs)
    if name == "facemesh":
        from next3d.fitting.facemesh import FaceMeshDetector

        return FaceMeshDetector(**kwargs)
    raise ValueError(f"unknown landmark detector {name!r}; available: 'dlib', 'facemesh'")
