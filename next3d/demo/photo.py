"""The Photo tab's library side: an uploaded photo -> crop, fit overlay, and the fitted face as
Generate-tab controls. Needs `next3d.fitting` (dlib detector, the published crop, the
landmark fit); imported only when that package exists.

Failures of the fitter (unreadable file, no face, fit failed) are DemoErrors naming the
uploaded file by its base name.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from next3d.demo.controls import RANGES, DemoControls, DemoError
from next3d.demo.uploads import DEFAULT_MAX_UPLOAD_BYTES, uploaded_file

CROP_RESOLUTION = 256  # The crop the page shows and fits on.


@dataclass(frozen=True)
class PhotoResult:
    """One fitted photo."""

    crop: np.ndarray  # (R, R, 3) uint8, the published EG3D crop.
    overlay: np.ndarray  # (R, R, 3) uint8, the fitted mesh and landmarks over the crop.
    camera: torch.Tensor  # (25,) camera label of the fit.
    flame: Dict[str, torch.Tensor]  # Fitted FLAME parameters, (n,) tensors.
    summary: str  # One line: landmark error and head angles.


class PhotoFitter:
    """Detector, head facts and calibration loaded once; `fit` per upload (thread-safe)."""

    def __init__(self, flame, flame_dir: Optional[str] = None, full_iters: Optional[int] = None, head_data=None):
        from next3d.fitting import DetectionError, DlibDetector
        from next3d.fitting.calibrate import load_offsets
        from next3d.flame import load_flame_model
        from training.dataset_schema import head_identity

        self.flame = flame
        try:
            self.detector = DlibDetector()
        except DetectionError as exc:
            raise DemoError(f"photo fitting is unavailable: {exc}") from None
        # The calibration of the head `flame` was built from (`head_data`; a shipped network's own).
        self.offsets = load_offsets(self.detector.name, head_identity(head_data or load_flame_model(flame_dir)))
        self._lock = threading.Lock()
        from next3d.fitting import FitConfig

        self.config = FitConfig() if full_iters is None else FitConfig(full_iters=int(full_iters))

    def fit(self, upload: Optional[Union[str, Path]], max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
            resolution: int = CROP_RESOLUTION) -> PhotoResult:
        from next3d.fitting import PhotoFailure, fit_prepared, prepare_photo
        from next3d.fitting.overlay import draw_overlay
        from next3d.fitting.pipeline import summary_line

        path = uploaded_file(upload, "photo", max_bytes)
        name = path.name
        with self._lock:
            prepared = prepare_photo(path.read_bytes(), self.detector, resolution, name=name)
            if isinstance(prepared, PhotoFailure):
                raise DemoError(_without_folders(prepared.message, path))
            fit, = fit_prepared([prepared], self.flame, self.config, landmark_offsets=self.offsets)
            if isinstance(fit, PhotoFailure):
                raise DemoError(_without_folders(fit.message, path))
            overlay = draw_overlay(prepared.crop, fit.camera, fit.flame, self.flame, detected=prepared.landmarks,
                                   fitted=fit.fitted_landmarks)
        return PhotoResult(crop=prepared.crop, overlay=overlay, camera=fit.camera, flame=fit.flame,
                           summary=summary_line(fit))


def _without_folders(message: str, path: Path) -> str:
    return str(message).replace(str(path.parent) + "/", "")


def controls_from_fit(result: PhotoResult, base: DemoControls, num_sliders: int) -> Tuple[DemoControls, str]:
    """The fitted expression and jaw on top of `base` (seed, truncation and camera kept),
    clipped to the page's ranges -> (controls, note on what was clipped)."""
    lo, hi = RANGES["expression"]
    expression = result.flame.get("expression", torch.zeros(0)).reshape(-1).tolist()
    kept = [min(max(float(v), lo), hi) for v in expression[:num_sliders]]
    jaw = result.flame.get("jaw", torch.zeros(3)).reshape(-1)
    jaw_deg = math.degrees(float(jaw[0])) if jaw.numel() else 0.0
    jaw_lo, jaw_hi = RANGES["jaw_open"]
    jaw_kept = min(max(jaw_deg, jaw_lo), jaw_hi)
    notes = []
    if len(expression) > num_sliders:
        notes.append(f"expression components after the first {num_sliders} dropped")
    if jaw_kept != jaw_deg:
        notes.append(f"jaw {jaw_deg:.1f}° clipped to {jaw_kept:.1f}°")
    return base.replace(expression=tuple(kept), jaw_open=jaw_kept), "; ".join(notes)


__all__ = ["PhotoFitter", "PhotoResult", "controls_from_fit", "CROP_RESOLUTION"]
