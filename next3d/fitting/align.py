"""The alignment crop of the published data, at any output resolution, as a recorded transform.

EG3D / Next3D in-the-wild preprocessing (Deep3DFaceRecon's `align_img`, then EG3D's crop):

1. Five points from the 68 iBUG landmarks: the two eye centres (means of the corners
   36, 39 and 42, 45), the nose tip (30) and the mouth corners (48, 54).
2. In pixel-index coordinates with y flipped (y' = H - 1 - y), a least-squares affine fit
   ("POS") of the five points to the standard face's five 3-D points `LM3D_STD`:
   p' ~ [R1; R2] X + (tx, ty); scale s = (|R1| + |R2|) / 2, centre t = (tx, ty).
3. The image is resized by s' = rescale_factor / s (300) to w = int(W s'), h = int(H s'), and the
   `target_size` (1024) square at left = int(w/2 - 512 + (tx - W/2) s'),
   up = int(h/2 - 512 + (H/2 - ty) s') is cut out; pixels outside the photo are black.
4. The centre 700 px square of that (offset int(1024/2 - 700/2) = 162) is resized to the
   output resolution R (512 published; any R here).

All of it is one affine map of pixel coordinates, `CropTransform.matrix` (3, 3), from the
photo's pixels to the crop's (corner-origin pixel coordinates, x right, y down; pixel
centres at k + 0.5): x_crop = R/700 * (x * w/W - left - 162), likewise for y. The crop
itself is rendered as one resampling of the photo through the inverse map (antialiased
when it shrinks), and `paste_back` resamples a crop-sized image back into the photo.

The crop keeps the head's roll. `crop_transform(..., align="ffhq")` first applies FFHQ's
alignment (a similarity that levels the eyes, `ffhq_align_matrix`), as published data sets
were cut from FFHQ's aligned images, and then the same crop of that frame; the two maps
compose into one matrix. Unlike FFHQ's script, pixels outside the photo stay black (no
reflected, blurred padding).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from PIL import Image

# Deep3DFaceRecon's standard face (BFM mean-face landmarks): left eye centre, right eye centre,
# nose tip, left mouth corner, right mouth corner; x right, y up.
LM3D_STD = np.array([
    [-0.31148657, 0.29036078, 0.13377953],
    [0.30979887, 0.28972036, 0.13179526],
    [0.0032535, -0.04617932, 0.55244243],
    [-0.25216928, -0.38133916, 0.22405732],
    [0.2484662, -0.38128236, 0.22235769],
])
RESCALE_FACTOR = 300.0
TARGET_SIZE = 1024
CENTER_CROP = 700


class AlignmentError(ValueError):
    """Landmarks from which no crop can be computed."""


@dataclass(frozen=True)
class CropTransform:
    """matrix (3, 3) float64: photo pixels -> crop pixels (homogeneous, corner origin);
    resolution: crop side R; photo_size: (W, H) of the photo."""

    matrix: np.ndarray
    resolution: int
    photo_size: Tuple[int, int]

    @property
    def inverse(self) -> np.ndarray:
        """(3, 3): crop pixels -> photo pixels."""
        return np.linalg.inv(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per photo pixel (geometric mean of the two axes)."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:2, :2]))))

    def to_json(self) -> dict:
        return {"matrix": self.matrix.tolist(), "resolution": self.resolution, "photo_size": list(self.photo_size)}


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """68 iBUG landmarks (68, 2) -> the five alignment points (5, 2) (eyes, nose tip, mouth corners)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise AlignmentError(f"landmarks: expected shape (68, 2), got {lm.shape}")
    return np.stack([lm[[36, 39]].mean(0), lm[[42, 45]].mean(0), lm[30], lm[48], lm[54]])


def pos_fit(points_2d: np.ndarray, points_3d: np.ndarray = LM3D_STD) -> Tuple[np.ndarray, float]:
    """Least-squares affine camera fit (Deep3DFaceRecon's POS) -> (t (2,), s).

    points_2d (N, 2) in the fit's coordinates (y up), points_3d (N, 3).
    """
    n = points_2d.shape[0]
    a = np.zeros((2 * n, 8))
    a[0::2, 0:3] = points_3d
    a[0::2, 3] = 1.0
    a[1::2, 4:7] = points_3d
    a[1::2, 7] = 1.0
    b = points_2d.reshape(-1)
    k = np.linalg.lstsq(a, b, rcond=None)[0]
    s = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2.0
    return np.array([k[3], k[7]]), float(s)


def eg3d_crop_transform(landmarks: np.ndarray, photo_size: Tuple[int, int], resolution: int = 512,
                        rescale_factor: float = RESCALE_FACTOR, target_size: int = TARGET_SIZE,
                        center_crop: int = CENTER_CROP) -> CropTransform:
    """The published crop for 68 landmarks (68, 2) (corner-origin pixels) of a (W, H) photo.

    Reproduces the published integer arithmetic (sizes and crop offsets truncated with int()).
    """
    width, height = int(photo_size[0]), int(photo_size[1])
    lm5 = five_points(landmarks) - 0.5  # pixel-index coordinates, as the published code reads them
    lm5_up = np.stack([lm5[:, 0], height - 1 - lm5[:, 1]], axis=1)
    t, s = pos_fit(lm5_up)
    if not np.isfinite(s) or s <= 1e-6:
        raise AlignmentError(f"degenerate landmarks: alignment scale {s}")
    s_new = rescale_factor / s
    w = int(width * s_new)
    h = int(height * s_new)
    if w <= 0 or h <= 0:
        raise AlignmentError(f"degenerate landmarks: resized photo would be {w}x{h} px")
    left = int(w / 2 - target_size / 2 + float((t[0] - width / 2) * s_new))
    up = int(h / 2 - target_size / 2 + float((height / 2 - t[1]) * s_new))
    off = int(target_size / 2 - center_crop / 2)
    k = resolution / center_crop
    sx, sy = w / width, h / height
    matrix = np.array([[k * sx, 0.0, -k * (left + off)],
                       [0.0, k * sy, -k * (up + off)],
                       [0.0, 0.0, 1.0]])
    return CropTransform(matrix=matrix, resolution=int(resolution), photo_size=(width, height))


FFHQ_SIZE = 1024
ALIGNMENTS = ("eg3d", "ffhq")


def ffhq_align_matrix(landmarks: np.ndarray, size: int = FFHQ_SIZE) -> np.ndarray:
    """(3, 3) similarity: photo pixels -> the FFHQ-aligned `size` square (eyes levelled).

    FFHQ's recipe from the 68 landmarks: eye centres (means of 36-41 and 42-47), mouth centre
    (mean of 48 and 54); the square's half-side vector x points along the eye line tilted by
    the eye-to-mouth direction, |x| = max(2 |eye_to_eye|, 1.8 |eye_to_mouth|), y is x turned
    by 90 degrees, the centre is 10 % of the way from the eyes to the mouth. The square
    (c - x - y, c + x - y, c + x + y, c - x + y) becomes (0, 0), (size, 0), (size, size), (0, size).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise AlignmentError(f"landmarks: expected shape (68, 2), got {lm.shape}")
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_l + eye_r) / 2, eye_r - eye_l
    eye_to_mouth = (lm[48] + lm[54]) / 2 - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = float(np.hypot(*x))
    half = max(float(np.hypot(*eye_to_eye)) * 2.0, float(np.hypot(*eye_to_mouth)) * 1.8)
    if not np.isfinite(norm) or norm <= 1e-6 or half <= 1e-6:
        raise AlignmentError("degenerate landmarks: eyes and mouth coincide")
    x = x / norm * half
    y = np.array([-x[1], x[0]])
    c = eye_avg + 0.1 * eye_to_mouth
    # aligned (u, v) -> photo: c - x - y + (u / size) 2x + (v / size) 2y
    to_photo = np.array([[2 * x[0] / size, 2 * y[0] / size, c[0] - x[0] - y[0]],
                         [2 * x[1] / size, 2 * y[1] / size, c[1] - x[1] - y[1]],
                         [0.0, 0.0, 1.0]])
    return np.linalg.inv(to_photo)


def crop_transform(landmarks: np.ndarray, photo_size: Tuple[int, int], resolution: int = 512,
                   align: str = "eg3d") -> CropTransform:
    """The crop for 68 landmarks of a (W, H) photo.

    align "eg3d": the published in-the-wild crop (`eg3d_crop_transform`), which keeps the head's
    roll. "ffhq": FFHQ's eye-levelling alignment first (`ffhq_align_matrix`), then the EG3D crop
    of that aligned frame, as published data sets were made from FFHQ's aligned images; the two
    maps are composed into one, so the photo is resampled once.
    """
    if align not in ALIGNMENTS:
        raise ValueError(f"align: got {align!r}, expected one of {', '.join(ALIGNMENTS)}")
    if align == "eg3d":
        return eg3d_crop_transform(landmarks, photo_size, resolution)
    to_ffhq = ffhq_align_matrix(landmarks)
    inner = eg3d_crop_transform(transform_points(to_ffhq, landmarks), (FFHQ_SIZE, FFHQ_SIZE), resolution)
    return CropTransform(matrix=inner.matrix @ to_ffhq, resolution=int(resolution),
                         photo_size=(int(photo_size[0]), int(photo_size[1])))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (3, 3) pixel transform to points (N, 2)."""
    pts = np.asarray(points, dtype=np.float64)
    hom = np.concatenate([pts, np.ones((pts.shape[0], 1))], axis=1) @ np.asarray(matrix, dtype=np.float64).T
    return hom[:, :2] / hom[:, 2:3]


def _warp(image: np.ndarray, matrix: np.ndarray, out_size: Tuple[int, int]) -> np.ndarray:
    """Resample `image` (H, W, C) uint8 into out_size (W', H') so that out(p) = image(matrix^-1 p).

    Shrinking by more than 2x first box-reduces the source by an integer factor (antialiasing).
    """
    pil = Image.fromarray(image)
    m = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:2, :2]))))
    factor = int(np.floor(1.0 / scale)) if scale < 0.5 else 1
    if factor > 1:
        pil = pil.reduce(factor)
        # Reduced pixel (corner coords) q = p / factor.
        m = m @ np.diag([factor, factor, 1.0])
    inv = np.linalg.inv(m)
    # PIL's AFFINE maps output pixel CENTRE coordinates (x+0.5) to input coordinates; our matrices are
    # in corner-origin coordinates, which is the same continuous frame PIL uses.
    coeffs = tuple(inv[0].tolist() + inv[1].tolist())
    out = pil.transform(out_size, Image.AFFINE, data=coeffs, resample=Image.BICUBIC, fillcolor=0)
    return np.asarray(out)


def crop_image(image: np.ndarray, transform: CropTransform) -> np.ndarray:
    """The crop (R, R, 3) uint8 of a photo (H, W, 3) uint8."""
    h, w = image.shape[:2]
    if (w, h) != tuple(transform.photo_size):
        raise AlignmentError(f"photo is {w}x{h} px but the crop transform was made for "
                             f"{transform.photo_size[0]}x{transform.photo_size[1]}")
    return _warp(image, transform.matrix, (transform.resolution, transform.resolution))


def paste_back(crop: np.ndarray, transform: CropTransform, photo: Optional[np.ndarray] = None,
               mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Resample a crop-sized image (R, R, C) back into the photo's frame (H, W, C).

    With `photo` given, pixels outside the crop (or where `mask` (R, R) in [0, 1] is 0) keep the
    photo's values; otherwise they are 0.
    """
    w, h = transform.photo_size
    back = _warp(crop, transform.inverse, (w, h))
    cover = np.ones(crop.shape[:2], dtype=np.uint8) * 255 if mask is None else \
        np.clip(np.asarray(mask, dtype=np.float64) * 255, 0, 255).astype(np.uint8)
    alpha = _warp(cover, transform.inverse, (w, h)).astype(np.float64) / 255.0
    if back.ndim == 3:
        alpha = alpha[..., None]
    base = np.zeros_like(back) if photo is None else photo
    return np.round(alpha * back + (1 - alpha) * base).astype(np.uint8)
