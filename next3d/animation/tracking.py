"""The FLAME fitter (`next3d.fitting`) as a `Tracker` for driving videos.

Per frame: dlib detection and 68 landmarks, the published crop (`prepare_photo`), then one
batched landmark fit of all frames of a chunk (`fit_prepared`): per-frame FLAME parameters
(expression, jaw, neck, eyes) and the camera label of that frame's crop. Frames without a
face, or whose fit fails, are reported as not found (`TrackResult.found`); the caller
(`drivers.load_video_driver`) carries values over to them and smooths the track in time.
The identity shape is the median of the per-frame fits.
"""

from __future__ import annotations

from typing import List, Optional

import numpy as np
import torch

from next3d.animation.drivers import PARAM_KEYS, DriverError, TrackResult


class FitterTracker:
    """`Tracker` built on the project's fitter.

    flame_dir: the head model (None = $NEXT3D_FLAME_DIR or the built-in head; use the
    generator's). resolution: crop size the fit works at. detector: a
    `next3d.fitting.detect.LandmarkDetector` (default dlib). iters: Adam steps of the
    fitter's full stage (None = its default).
    """

    def __init__(self, flame_dir: Optional[str] = None, resolution: int = 256, detector=None,
                 iters: Optional[int] = None):
        from dataclasses import replace

        from next3d.fitting import DetectionError, DlibDetector, FitConfig
        from next3d.fitting.calibrate import load_offsets
        from next3d.flame import FLAME, load_flame_model
        from training.dataset_schema import head_identity

        model = load_flame_model(flame_dir)
        self.flame = FLAME(model)
        try:
            self.detector = detector if detector is not None else DlibDetector()
        except DetectionError as exc:
            raise DriverError(f"driving video: {exc}") from None
        self.offsets = load_offsets(getattr(self.detector, "name", "dlib"), head_identity(model))
        self.config = FitConfig() if iters is None else replace(FitConfig(), full_iters=iters)
        self.resolution = int(resolution)

    def track(self, frames: torch.Tensor) -> TrackResult:
        """frames (N, 3, H, W) float32 in [-1, 1] -> TrackResult (see `drivers.Tracker`)."""
        from next3d.fitting import PhotoFailure, fit_prepared, prepare_photo

        n = frames.shape[0]
        images = ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        prepared, where = [], []
        for i in range(n):
            item = prepare_photo(np.ascontiguousarray(images[i]), self.detector, self.resolution,
                                 name=f"frame {i}")
            if not isinstance(item, PhotoFailure):
                prepared.append(item)
                where.append(i)
        num_e = self.flame.num_expression
        params = {k: torch.zeros(n, num_e if k == "expression" else 3) for k in PARAM_KEYS}
        cameras = torch.zeros(n, 25)
        found = torch.zeros(n, dtype=torch.bool)
        shapes: List[torch.Tensor] = []
        fits = fit_prepared(prepared, self.flame, self.config, landmark_offsets=self.offsets) if prepared else []
        for i, fit in zip(where, fits):
            if isinstance(fit, PhotoFailure):
                continue
            found[i] = True
            cameras[i] = fit.camera.float()
            for key in PARAM_KEYS:
                if key in fit.flame:
                    v = fit.flame[key].float().reshape(-1)
                    params[key][i, :v.shape[0]] = v[:params[key].shape[1]]
            if "shape" in fit.flame:
                shapes.append(fit.flame["shape"].float().reshape(-1))
        shape = torch.stack(shapes).median(dim=0).values if shapes else None
        return TrackResult(params=params, cameras=cameras, found=found, shape=shape)


__all__ = ["FitterTracker"]
