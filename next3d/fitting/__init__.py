"""From photos to FLAME and a camera: detection, landmarks, alignment crop, fitting.

    from next3d.fitting import DlibDetector, prepare_photo, fit_prepared
    det = DlibDetector()
    photo = prepare_photo("me.jpg", det, resolution=512)      # PreparedPhoto or PhotoFailure
    fit, = fit_prepared([photo], flame)                         # PhotoFit: camera (25,), flame dict

Modules: `photo_io` (reading photos), `detect` (face + 68 landmarks), `facemesh` (MediaPipe's 468-point
mesh, optional) + `mesh_correspondence` (its points on the head's surface), `align` (the published
crop, recorded as a matrix), `camera_frame` (FLAME -> EG3D frame, camera parameters),
`landmark_head` + `landmark_fit` (the batched fit), `calibrate` (detector offsets), `photometric` +
`albedo_basis` (the optional refinement on the pixels: SH lighting, PCA albedo), `overlay`, `pipeline`.
"""

from next3d.fitting.align import CropTransform, crop_image, crop_transform, eg3d_crop_transform, paste_back
from next3d.fitting.detect import Detection, DetectionError, DlibDetector, NoFaceError, make_detector
from next3d.fitting.landmark_fit import FitConfig, FitResult, fit_landmarks
from next3d.fitting.photo_io import PhotoError, read_photo
from next3d.fitting.pipeline import PhotoFailure, PhotoFit, PreparedPhoto, fit_prepared, prepare_photo, summary_line

__all__ = ["CropTransform", "crop_image", "crop_transform", "eg3d_crop_transform", "paste_back", "Detection",
           "DetectionError", "DlibDetector", "NoFaceError", "make_detector", "FitConfig", "FitResult", "fit_landmarks", "PhotoError",
           "read_photo", "PhotoFailure", "PhotoFit", "PreparedPhoto", "fit_prepared", "prepare_photo", "summary_line"]
