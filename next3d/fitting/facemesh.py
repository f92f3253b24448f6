"""MediaPipe's 468-point face mesh as a landmark source, behind the `LandmarkDetector` interface.

The network is MediaPipe's `face_landmark.tflite` (Apache-2.0; 192 x 192 RGB in [0, 1] -> 468
points (x, y, z) in the input's pixel frame and a face-presence logit), run by the TFLite
interpreter of `ai-edge-litert`. Only the model FILE is used: it is read from `model_path`,
from $NEXT3D_FACEMESH_MODEL, or from an installed `mediapipe` 0.10.14 package (located through
importlib, never imported: its declared dependencies pull jax, opencv and matplotlib, so install
it with `pip install --no-deps mediapipe==0.10.14`; later versions ship no model files).

Cropping follows MediaPipe's own pipeline: a square region 1.5x the face box, rotated so that
the eyes are level, resized to 192. The first region comes from dlib (its box, and its eye
centres for the roll); the mesh is then run again on the region its own points give (bounding
box of the points, roll from the eye corners 33 and 263), as MediaPipe's tracking does, which
removes the dependence on dlib's box size. The z output (relative depth) is not used.

`FaceMeshDetector.detect` returns a `Detection` whose `landmarks` are dlib's 68 (the alignment
crop and the photometric stage use them) and whose `mesh` holds the 468 points (pixels, corner
origin, as `detect`'s convention).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import replace
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from next3d.fitting.detect import Detection, DetectionError, DlibDetector, LandmarkDetector, _check_image

NUM_MESH = 468
INPUT_SIZE = 192
ROI_SCALE = 1.5
# Eye corners of the mesh (right eye outer, left eye outer) that MediaPipe levels the region by.
EYE_CORNERS = (33, 263)
MODEL_ENV = "NEXT3D_FACEMESH_MODEL"
INSTALL_HINT = "pip install ai-edge-litert==2.3.0 && pip install --no-deps mediapipe==0.10.14"


def facemesh_model_path(model_path=None) -> Path:
    """The face-mesh model file: `model_path`, else $NEXT3D_FACEMESH_MODEL, else the installed mediapipe's."""
    given = model_path or os.environ.get(MODEL_ENV)
    if given:
        path = Path(given)
        if not path.is_file():
            raise DetectionError(f"face-mesh model not found at {path} (give face_landmark.tflite, or {INSTALL_HINT})")
        return path
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise DetectionError(f"the face-mesh model is missing: {INSTALL_HINT} (only its face_landmark.tflite is "
                             f"read), or set ${MODEL_ENV}")
    path = Path(list(spec.submodule_search_locations)[0]) / "modules" / "face_landmark" / "face_landmark.tflite"
    if not path.is_file():
        raise DetectionError(f"the installed mediapipe has no {path.name} (versions after 0.10.14 ship none): "
                             f"{INSTALL_HINT}")
    return path


def roi_matrix(centre: np.ndarray, size: float, angle: float, out: int = INPUT_SIZE) -> np.ndarray:
    """(3, 3) photo pixels -> region pixels: a square of side `size` about `centre`, rotated by `angle`
    (radians; the photo's eye line runs at `angle`), mapped onto out x out."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, s], [-s, c]])  # undoes the roll
    k = out / size
    m = np.eye(3)
    m[:2, :2] = k * rot
    m[:2, 2] = out / 2 - k * rot @ np.asarray(centre, dtype=np.float64)
    return m


def _roi_from_points(pts: np.ndarray, angle: float, scale: float) -> Tuple[np.ndarray, float]:
    """Centre and side of the region around points (N, 2), measured in the frame rotated by -angle."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, s], [-s, c]])
    q = pts @ rot.T
    lo, hi = q.min(0), q.max(0)
    centre = rot.T @ ((lo + hi) / 2)
    return centre, float(scale * max(hi - lo))


class FaceMeshDetector(LandmarkDetector):
    """dlib's detector for the face box and 68 points, MediaPipe's face mesh for 468 points.

    Args:
        model_path: the `face_landmark.tflite` file (None: $NEXT3D_FACEMESH_MODEL or the installed mediapipe).
        refine: passes of the mesh on its own region after the first (MediaPipe's tracking re-crop).
        min_presence: faces whose presence score (0..1) is below this are rejected.
        dlib: a `DlibDetector` to reuse (None: a new one with default settings).
        num_threads: interpreter threads.
    """

    name = "facemesh"

    def __init__(self, model_path=None, refine: int = 1, min_presence: float = 0.5,
                 dlib: Optional[DlibDetector] = None, num_threads: int = 1):
        path = facemesh_model_path(model_path)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise DetectionError(f"the TFLite interpreter is missing: {INSTALL_HINT}") from None
        self._interp = Interpreter(model_path=str(path), num_threads=int(num_threads))
        self._interp.allocate_tensors()
        self._input = self._interp.get_input_details()[0]["index"]
        outs = {int(np.prod(d["shape"])): d["index"] for d in self._interp.get_output_details()}
        if NUM_MESH * 3 not in outs or 1 not in outs:
            raise DetectionError(f"{path}: not a 468-point face-mesh model (outputs {sorted(outs)})")
        self._out_points, self._out_score = outs[NUM_MESH * 3], outs[1]
        self.model_path = path
        self.refine = int(refine)
        self.min_presence = float(min_presence)
        self.dlib = dlib if dlib is not None else DlibDetector()

    def run_region(self, image: np.ndarray, matrix: np.ndarray) -> Tuple[np.ndarray, float]:
        """The mesh in the region `matrix` (photo -> 192 px region) -> (points (468, 2) photo pixels, presence)."""
        from next3d.fitting.align import CropTransform, crop_image

        h, w = image.shape[:2]
        crop = crop_image(image, CropTransform(matrix, INPUT_SIZE, (w, h)))
        self._interp.set_tensor(self._input, (crop.astype(np.float32) / 255.0)[None])
        self._interp.invoke()
        pts = self._interp.get_tensor(self._out_points).reshape(NUM_MESH, 3)[:, :2].astype(np.float64)
        logit = float(self._interp.get_tensor(self._out_score).reshape(-1)[0])
        inv = np.linalg.inv(matrix)
        photo = pts @ inv[:2, :2].T + inv[:2, 2]
        return photo, float(1.0 / (1.0 + np.exp(-logit)))

    def mesh_from_dlib(self, image: np.ndarray, det: Detection) -> Tuple[np.ndarray, float]:
        """The 468 points (photo pixels) and presence for a dlib detection."""
        lm = det.landmarks
        right, left = lm[36:42].mean(0), lm[42:48].mean(0)
        angle = float(np.arctan2(left[1] - right[1], left[0] - right[0]))
        x0, y0, x1, y1 = det.box
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        pts, score = self.run_region(image, roi_matrix(centre, ROI_SCALE * max(x1 - x0, y1 - y0), angle))
        for _ in range(self.refine):
            a, b = pts[EYE_CORNERS[0]], pts[EYE_CORNERS[1]]
            angle = float(np.arctan2(b[1] - a[1], b[0] - a[0]))
            centre, size = _roi_from_points(pts, angle, ROI_SCALE)
            pts, score = self.run_region(image, roi_matrix(centre, size, angle))
        return pts, score

    def detect(self, image: np.ndarray, face: Optional[int] = None, what: str = "image") -> Detection:
        """dlib's detection of face `face`, with the face mesh's 468 points in `mesh`."""
        _check_image(image, what)
        det = self.dlib.detect(image, face=face, what=what)
        pts, score = self.mesh_from_dlib(image, det)
        if score < self.min_presence:
            raise DetectionError(f"{what}: the face mesh does not see a face in the detected box "
                                 f"(presence {score:.2f} < {self.min_presence})")
        return replace(det, mesh=pts)
