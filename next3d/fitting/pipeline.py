"""From photos to fits: read -> detect -> crop -> fit, per photo errors kept, never raised.

`prepare_photo` reads one photo, finds the face and cuts the published alignment crop;
`fit_prepared` fits FLAME and the camera to a batch of prepared photos at once. Every
failure is a `PhotoFailure` (name, stage, message) instead of an exception, so a batch run
carries on past bad photos.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

from next3d.atomic_io import atomic_write_bytes
from next3d.fitting.align import AlignmentError, CropTransform, crop_image, crop_transform, transform_points
from next3d.fitting.detect import Detection, DetectionError, LandmarkDetector
from next3d.fitting.landmark_fit import FitConfig, fit_landmarks
from next3d.fitting.photo_io import PhotoError, read_photo
from next3d.flame.layer import FLAME

if TYPE_CHECKING:
    from next3d.fitting.photometric import PhotometricConfig, PhotometricModel

# A fit whose mean landmark error exceeds this fraction of the crop is reported as failed.
MAX_FIT_ERROR = 0.05


@dataclass(frozen=True)
class PhotoFailure:
    """Why a photo was skipped: stage is "read", "detect", "align" or "fit"."""

    name: str
    stage: str
    message: str


@dataclass(frozen=True)
class PreparedPhoto:
    """A photo ready to fit: crop (R, R, 3) uint8; transform photo -> crop; detection in photo
    pixels; landmarks (68, 2) in crop pixels; mesh (N, 2) the dense points in crop pixels (a
    face-mesh detector), else None."""

    name: str
    crop: np.ndarray
    transform: CropTransform
    detection: Detection
    landmarks: np.ndarray
    mesh: Optional[np.ndarray] = None


@dataclass(frozen=True)
class PhotoFit:
    """A fitted photo: camera (25,), flame dict of (n,) tensors, fitted landmarks (68, 2) crop
    pixels (a face-mesh fit: the fitted mesh points (N, 2)), error_px (mean landmark distance, crop
    pixels; face mesh: weighted mean over its points), angles (yaw, pitch, roll) degrees."""

    photo: PreparedPhoto
    camera: torch.Tensor
    flame: Dict[str, torch.Tensor]
    fitted_landmarks: np.ndarray
    error_px: float
    angles: np.ndarray

    def to_json(self, head: Optional[dict] = None) -> dict:
        p = self.photo
        out = {
            "name": p.name,
            "resolution": p.transform.resolution,
            "camera": [float(x) for x in self.camera],
            "flame": {k: [float(x) for x in v] for k, v in self.flame.items()},
            "landmarks": "dlib" if p.mesh is None or len(self.fitted_landmarks) == len(p.landmarks) else "facemesh",
            "landmarks_2d": np.round(p.landmarks if p.mesh is None or len(self.fitted_landmarks) == len(p.landmarks)
                                     else p.mesh, 3).tolist(),
            "landmarks_fitted": np.round(self.fitted_landmarks, 3).tolist(),
            "landmark_error_px": self.error_px,
            "landmark_error_frac": self.error_px / p.transform.resolution,
            "yaw_pitch_roll_deg": [float(x) for x in self.angles],
            "crop_transform": p.transform.to_json(),
            "detection": {"box": [float(x) for x in p.detection.box], "num_faces": p.detection.num_faces,
                          "face_index": p.detection.face_index,
                          "landmarks_photo": np.round(p.detection.landmarks, 3).tolist()},
        }
        if head is not None:
            out["head"] = head
        return out


def prepare_photo(source: Union[str, Path, bytes, np.ndarray], detector: LandmarkDetector, resolution: int = 512,
                  face: Optional[int] = None, name: Optional[str] = None,
                  align: str = "eg3d") -> Union[PreparedPhoto, PhotoFailure]:
    """Read (path, bytes, or an (H, W, 3) uint8 array), detect, and crop one photo
    (`align`: "eg3d" or "ffhq", see `align.crop_transform`)."""
    name = name or (str(source) if isinstance(source, (str, Path)) else "image")
    try:
        image = source if isinstance(source, np.ndarray) else read_photo(source, name)
    except PhotoError as exc:
        return PhotoFailure(name, "read", str(exc))
    try:
        det = detector.detect(image, face=face, what=name)
    except (DetectionError, ValueError) as exc:
        return PhotoFailure(name, "detect", str(exc))
    try:
        tf = crop_transform(det.landmarks, (image.shape[1], image.shape[0]), resolution, align=align)
        crop = crop_image(image, tf)
    except AlignmentError as exc:
        return PhotoFailure(name, "align", f"{name}: {exc}")
    return PreparedPhoto(name=name, crop=crop, transform=tf, detection=det,
                         landmarks=transform_points(tf.matrix, det.landmarks),
                         mesh=None if det.mesh is None else transform_points(tf.matrix, det.mesh))


def fit_prepared(photos: Sequence[PreparedPhoto], flame: FLAME, config: FitConfig = FitConfig(),
                 progress: bool = False, landmark_offsets: Optional[torch.Tensor] = None,
                 photometric: Optional["PhotometricConfig"] = None,
                 photometric_model: Optional["PhotometricModel"] = None,
                 correspondence=None) -> List[Union[PhotoFit, PhotoFailure]]:
    """Fit a batch of prepared photos (one optimisation for all of them).

    config.landmarks "facemesh" fits the photos' dense points (`PreparedPhoto.mesh`, from a
    `FaceMeshDetector`) through `correspondence` (None: `mesh_correspondence.load_correspondence()`,
    the built-in or $NEXT3D_FLAME_DIR head's); the photometric stage is dlib-only.

    landmark_offsets: the detector's calibration for this head (`calibrate.load_offsets`), or None.
    photometric: run the photometric stage (`photometric.refine_photometric`) after the landmark
    stages with these settings (None: landmarks only); photometric_model: its head data
    (`photometric.load_photometric_model`; None loads the built-in head's).
    """
    if not photos:
        return []
    if config.landmarks not in ("dlib", "facemesh"):
        raise ValueError(f"config.landmarks: expected 'dlib' or 'facemesh', got {config.landmarks!r}")
    lm = torch.as_tensor(np.stack([p.landmarks for p in photos]), dtype=torch.float32)
    sizes = [p.transform.resolution for p in photos]
    if config.landmarks == "facemesh":
        if photometric is not None:
            raise ValueError("the photometric stage works with dlib landmarks only (landmarks='dlib')")
        missing = [p.name for p in photos if p.mesh is None]
        if missing:
            raise ValueError(f"{missing[0]}: no face-mesh points (prepare the photos with a FaceMeshDetector)")
        if correspondence is None:
            from next3d.fitting.mesh_correspondence import load_correspondence

            correspondence = load_correspondence(None)
        mesh = torch.as_tensor(np.stack([p.mesh for p in photos]), dtype=torch.float32)
        res = fit_landmarks(mesh, sizes, flame, config, progress=progress, correspondence=correspondence)
    else:
        res = fit_landmarks(lm, sizes, flame, config, progress=progress, landmark_offsets=landmark_offsets)
    if photometric is not None:
        res = _photometric(photos, lm, res, flame, config, landmark_offsets, photometric, photometric_model)
    out: List[Union[PhotoFit, PhotoFailure]] = []
    for i, p in enumerate(photos):
        err = float(res.error_px[i])
        if not np.isfinite(err) or err / sizes[i] > MAX_FIT_ERROR:
            out.append(PhotoFailure(p.name, "fit", f"{p.name}: fit failed (mean landmark error {err:.1f} px, "
                                                   f"{100 * err / sizes[i]:.1f}% of the crop; limit "
                                                   f"{100 * MAX_FIT_ERROR:.0f}%)"))
            continue
        out.append(PhotoFit(photo=p, camera=res.cameras[i], flame={k: v[i] for k, v in res.flame.items()},
                            fitted_landmarks=res.landmarks_2d[i].numpy().astype(np.float64), error_px=err,
                            angles=res.angles[i].numpy()))
    return out


def _photometric(photos, lm, res, flame, config, offsets, photometric, model):
    """The photometric stage per crop size (the stage works on square crops of one size)."""
    from next3d.fitting.landmark_fit import FitResult
    from next3d.fitting.photometric import load_photometric_model, refine_photometric

    model = model or load_photometric_model(None)
    sizes = np.array([p.transform.resolution for p in photos])
    parts = {}
    for size in np.unique(sizes):
        idx = np.nonzero(sizes == size)[0]
        sel = torch.as_tensor(idx)
        init = FitResult(cameras=res.cameras[sel], flame={k: v[sel] for k, v in res.flame.items()},
                         landmarks_2d=res.landmarks_2d[sel], error_px=res.error_px[sel],
                         error_frac=res.error_frac[sel], angles=res.angles[sel])
        out = refine_photometric(np.stack([photos[i].crop for i in idx]), lm[sel], init, flame, model.basis,
                                 model.uv_corners, model.face_class, photometric, config, offsets).fit
        for j, i in enumerate(idx):
            parts[int(i)] = (out, j)

    def gather(get):
        return torch.stack([get(parts[i][0])[parts[i][1]] for i in range(len(photos))])

    return FitResult(cameras=gather(lambda r: r.cameras),
                     flame={k: gather(lambda r, k=k: r.flame[k]) for k in res.flame},
                     landmarks_2d=gather(lambda r: r.landmarks_2d), error_px=gather(lambda r: r.error_px),
                     error_frac=gather(lambda r: r.error_frac), angles=gather(lambda r: r.angles))


def summary_line(fit: Union[PhotoFit, PhotoFailure]) -> str:
    """One line per photo: landmark error and head angles, or why it was skipped."""
    if isinstance(fit, PhotoFailure):
        msg = fit.message[len(fit.name) + 2:] if fit.message.startswith(f"{fit.name}: ") else fit.message
        return f"{fit.name}: skipped ({fit.stage}): {msg}"
    yaw, pitch, roll = fit.angles
    res = fit.photo.transform.resolution
    return (f"{fit.photo.name}: landmark error {fit.error_px:.2f} px ({100 * fit.error_px / res:.2f}% of {res}), "
            f"yaw {yaw:+.1f} pitch {pitch:+.1f} roll {roll:+.1f} deg")


def _png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_fit_folder(fit: PhotoFit, folder: Union[str, Path], flame: FLAME, head: Optional[dict] = None) -> Path:
    """Write crop.png, overlay.png and fit.json of one fit into `folder` (each file atomically)."""
    from next3d.fitting.overlay import draw_overlay

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    detected = fit.photo.landmarks if len(fit.fitted_landmarks) == len(fit.photo.landmarks) else fit.photo.mesh
    overlay = draw_overlay(fit.photo.crop, fit.camera, fit.flame, flame, detected, fit.fitted_landmarks)
    atomic_write_bytes(folder / "crop.png", _png_bytes(fit.photo.crop))
    atomic_write_bytes(folder / "overlay.png", _png_bytes(overlay))
    atomic_write_bytes(folder / "fit.json", (json.dumps(fit.to_json(head), indent=1) + "\n").encode())
    return folder
