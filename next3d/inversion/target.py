"""Stage 1 — what to invert: a photo detected, aligned and fitted, or a synthetic-set item as it is.

`InversionTarget` holds everything later stages need, at the generator's output resolution R:

* image (1, 3, R, R) float32 in [-1, 1]: the alignment crop (the published in-the-wild crop of
  `next3d.fitting.align`, the framing the generator was trained on);
* camera (1, 25) and flame {shape, expression, neck, jaw, left_eye, right_eye} (1, k) each,
  zero-padded to G's head model: the fitter's estimate (or the truth of a synthetic item);
* landmarks (1, 68, 2) pixels of the R crop (corner origin) or None: the refinement keeps the
  mesh's landmarks near them; landmark_offsets (68, 3) or None: the detector's calibration for
  this head (`next3d.fitting.calibrate`; None for true landmarks);
* mask (1, 1, R, R) in [0, 1]: the face region (the fitted head mesh rendered under the camera,
  grown by a few pixels and softened) where the pixel L2 counts;
* source: JSON-able provenance (file, SHA-256, crop transform, detection, fit error, angles) and
  warnings: one line each (pose far outside the training range, heavily upsampled crop, ...).

`target_from_photo` runs detection (largest face or `face=K`), the crop and the landmark fit
(`next3d.fitting`); errors are `InversionInputError` with one line. `target_from_dataset`
takes item `index` of a next3d data set (its position in dataset.json's items, any split)
without detection: the stored image is the crop; the camera and FLAME come from the fitter on
the item's true landmarks, or are the truth itself (`true_camera`, `true_flame`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from next3d.errors import Next3DError
from torch_utils.misc import assert_shape

FLAME_KEYS = ("shape", "expression", "neck", "jaw", "left_eye", "right_eye")
MAX_TRAINING_YAW_DEG = 45.0
"""|yaw| beyond which a photo is far outside the training poses (FFHQ and the synthetic set have
almost all faces within +-45 deg): a warning, not an error."""
MAX_UPSAMPLING = 2.0
"""The crop may enlarge the photo by this much before the result is warned about (blur)."""
MIN_CROP_SOURCE_PX = 32.0
"""A crop whose source region in the photo is smaller than this (pixels) is refused."""


class InversionInputError(Next3DError, ValueError):
    """A photo, data-set item or network that cannot be inverted (one line naming it)."""


@dataclass
class InversionTarget:
    """One image to invert (module docstring for every field)."""

    image: torch.Tensor
    camera: torch.Tensor
    flame: Dict[str, torch.Tensor]
    mask: torch.Tensor
    landmarks: Optional[torch.Tensor] = None
    landmark_offsets: Optional[torch.Tensor] = None
    name: str = "image"
    source: Dict[str, object] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    fit_seconds: float = 0.0
    fit_cpu_seconds: float = 0.0

    def __post_init__(self):
        assert_shape(self.image, [1, 3, None, None], "target image")
        assert_shape(self.camera, [1, 25], "target camera")
        assert_shape(self.mask, [1, 1, self.image.shape[2], self.image.shape[3]], "target mask")
        if self.landmarks is not None:
            assert_shape(self.landmarks, [1, 68, 2], "target landmarks")

    @property
    def resolution(self) -> int:
        return int(self.image.shape[-1])

    def to(self, device) -> "InversionTarget":
        return InversionTarget(image=self.image.to(device), camera=self.camera.to(device),
                               flame={k: v.to(device) for k, v in self.flame.items()}, mask=self.mask.to(device),
                               landmarks=None if self.landmarks is None else self.landmarks.to(device),
                               landmark_offsets=self.landmark_offsets, name=self.name, source=self.source, warnings=self.warnings,
                               fit_seconds=self.fit_seconds, fit_cpu_seconds=self.fit_cpu_seconds)


# --------------------------------------------------------------------------- helpers


def image_tensor(image: np.ndarray, resolution: int) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, R, R) float32 in [-1, 1] (area-resized when H != R)."""
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 127.5 - 1.0  # a copy: inputs may be read-only
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return x


def full_flame(G: torch.nn.Module, flame: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """FLAME parameters (1, k) or (k,) per key -> every key of FLAME_KEYS, (1, n) zero-padded/cut to G's head."""
    sizes = {"shape": G.flame.num_shape, "expression": G.flame.num_expression}
    out = {}
    for key in FLAME_KEYS:
        n = sizes.get(key, 3)
        v = flame.get(key)
        v = torch.zeros(1, n) if v is None else torch.as_tensor(v, dtype=torch.float32).reshape(1, -1)
        if v.shape[1] > n:
            if key in sizes and bool(v[:, n:].abs().max() > 1e-6):
                raise InversionInputError(f"flame '{key}' has {v.shape[1]} components, the network's head model {n}")
            v = v[:, :n]
        out[key] = F.pad(v, (0, n - v.shape[1])).cpu()
    return out


@torch.no_grad()
def face_mask(G: torch.nn.Module, camera: torch.Tensor, flame: Dict[str, torch.Tensor], resolution: int,
              grow_px: float = 2.0) -> torch.Tensor:
    """The head mesh's coverage under `camera` (1, 1, R, R) in [0, 1], grown by ~grow_px pixels and softened."""
    from next3d.render.mesh_shading import render_mesh

    vertices, _ = G.head_mesh({k: v.to(next(G.parameters()).device) for k, v in flame.items()})
    mask = render_mesh(vertices.float().cpu(), G.flame.faces.cpu(), camera.float().cpu(), image_size=resolution).mask
    k = max(1, int(round(grow_px)))
    grown = F.max_pool2d(mask.float(), 2 * k + 1, stride=1, padding=k)
    return F.avg_pool2d(grown, 3, stride=1, padding=1, count_include_pad=False).clamp(0, 1)


def check_topology(G: torch.nn.Module, topology: Optional[str], what: str) -> None:
    """InversionInputError when `topology` (a head-topology hash) is not G's head model's."""
    from next3d.checkpoint import built_head_topology

    mine = built_head_topology(G)
    if topology is not None and mine is not None and topology != mine:
        raise InversionInputError(f"{what}: made for head topology {topology}, but the network's head model has "
                                  f"{mine} (use a network trained on that head model, or --flame-dir)")


def yaw_warning(angles_deg, limit: float = MAX_TRAINING_YAW_DEG) -> Optional[str]:
    """One warning line when |yaw| > limit, else None."""
    yaw = float(angles_deg[0])
    if abs(yaw) <= limit:
        return None
    return (f"the fitted head pose (yaw {yaw:+.1f} deg, pitch {float(angles_deg[1]):+.1f}) is far outside the "
            f"training range (|yaw| <= {limit:.0f} deg): novel views and the avatar will be poor")


# --------------------------------------------------------------------------- photos


def target_from_photo(photo: Union[str, Path, bytes], G: torch.nn.Module, detector=None, *, face: Optional[int] = None,
                      fit_config=None, name: Optional[str] = None, max_yaw_deg: float = MAX_TRAINING_YAW_DEG
                      ) -> InversionTarget:
    """Detect, crop and fit one photo for G (module docstring). InversionInputError on bad input."""
    from next3d.fitting import FitConfig, PhotoFailure, fit_prepared, prepare_photo
    from next3d.fitting.calibrate import load_offsets
    from next3d.fitting.photo_io import PhotoError, read_photo
    from training.dataset_schema import generator_head_identity

    started, cpu = time.perf_counter(), time.process_time()
    name = name or (Path(photo).name if isinstance(photo, (str, Path)) else "photo")
    try:
        raw = Path(photo).read_bytes() if isinstance(photo, (str, Path)) else bytes(photo)
    except OSError as exc:
        raise InversionInputError(f"{name}: cannot read the photo ({exc.strerror or exc})") from None
    try:
        image = read_photo(raw, name)
    except PhotoError as exc:
        raise InversionInputError(str(exc)) from None
    if detector is None:
        from next3d.fitting import DetectionError, DlibDetector

        try:
            detector = DlibDetector()
        except DetectionError as exc:
            raise InversionInputError(str(exc)) from None
    res = int(G.img_resolution)
    prepared = prepare_photo(image, detector, resolution=res, face=face, name=name)
    if isinstance(prepared, PhotoFailure):
        raise InversionInputError(prepared.message if prepared.message.startswith(name) else
                                  f"{name}: {prepared.message}")
    warnings = []
    det = prepared.detection
    if det.num_faces > 1:
        which = "the largest" if face is None else f"face {face} (0 = the largest)"
        warnings.append(f"{det.num_faces} faces found; inverting {which} (choose another with --face K)")
    source_px = res / prepared.transform.scale
    if source_px < MIN_CROP_SOURCE_PX:
        raise InversionInputError(f"{name}: the face crop covers only {source_px:.0f} px of the photo (at least "
                                  f"{MIN_CROP_SOURCE_PX:.0f} needed); use a larger or sharper photo of the face")
    if prepared.transform.scale > MAX_UPSAMPLING:
        warnings.append(f"the face is small in the photo: the {res} px crop enlarges it {prepared.transform.scale:.1f}x "
                        f"(expect a blurry target)")
    offsets = load_offsets(getattr(detector, "name", "dlib"), generator_head_identity(G))
    fit = fit_prepared([prepared], G.flame, fit_config or FitConfig(), landmark_offsets=offsets)[0]
    if isinstance(fit, PhotoFailure):
        raise InversionInputError(fit.message)
    flame = full_flame(G, {k: v[None] for k, v in fit.flame.items()})
    camera = fit.camera[None].float()
    warn = yaw_warning(fit.angles, max_yaw_deg)
    if warn:
        warnings.append(warn)
    source = {"kind": "photo", "file": str(photo) if isinstance(photo, (str, Path)) else None, "name": name,
              "sha256": hashlib.sha256(raw).hexdigest(), "photo_size": [int(image.shape[1]), int(image.shape[0])],
              "crop_transform": prepared.transform.to_json(),
              "detection": {"box": [float(x) for x in det.box], "num_faces": det.num_faces,
                            "face_index": det.face_index},
              "landmark_error_px": float(fit.error_px), "yaw_pitch_roll_deg": [float(a) for a in fit.angles],
              "calibrated": offsets is not None}
    lmk = torch.as_tensor(prepared.landmarks, dtype=torch.float32)[None]
    return InversionTarget(image=image_tensor(prepared.crop, res), camera=camera, flame=flame,
                           mask=face_mask(G, camera, flame, res), landmarks=lmk, landmark_offsets=offsets, name=name, source=source,
                           warnings=warnings, fit_seconds=time.perf_counter() - started,
                           fit_cpu_seconds=time.process_time() - cpu)


# --------------------------------------------------------------------------- synthetic items


def parse_item_spec(spec: str):
    """'DATASET:INDEX' -> (Path, int); the index is the item's position in dataset.json (any split)."""
    path, sep, index = str(spec).rpartition(":")
    if not sep or not path or not index.strip().isdigit():
        raise InversionInputError(f"target item {spec!r}: expected DATASET:INDEX such as /data/synth128:17")
    return Path(path), int(index)


def dataset_item(path: Union[str, Path], index: int, G: torch.nn.Module, dataset=None):
    """(data set, item `index` with its FLAME parameters) of a next3d set made for G's head topology;
    InversionInputError (one line) for a missing item, another topology or an unreadable set."""
    from training.dataset import ImageDataset
    from training.dataset_schema import DatasetError

    try:
        ds = dataset if dataset is not None else ImageDataset(path, split=None, verify_images=False)
        check_topology(G, ds.head_topology, f"data set {path}")
        if not 0 <= int(index) < len(ds):
            raise InversionInputError(f"data set {path}: item {index} does not exist (it has {len(ds)} items)")
        item = ds[int(index)]
    except DatasetError as exc:
        raise InversionInputError(str(exc)) from None
    if "flame" not in item:
        raise InversionInputError(f"data set {path}: item {index} has meshes, not FLAME parameters")
    return ds, item


def target_from_dataset(path: Union[str, Path], index: int, G: torch.nn.Module, *, true_camera: bool = False,
                        true_flame: bool = False, fit_config=None, dataset=None,
                        max_yaw_deg: float = MAX_TRAINING_YAW_DEG) -> InversionTarget:
    """Item `index` of a next3d data set as a target (module docstring)."""
    from next3d.fitting import FitConfig, fit_landmarks
    from next3d.fitting.camera_frame import camera_angles
    started, cpu = time.perf_counter(), time.process_time()
    ds, item = dataset_item(path, index, G, dataset)
    res = int(G.img_resolution)
    scale = res / ds.resolution
    image = image_tensor(item["image"].permute(1, 2, 0).numpy(), res)
    lmk = item["landmarks_2d"].float()[None] * scale
    truth = full_flame(G, {k: v[None] for k, v in item["flame"].items()})
    true_cam = item["camera"].float()[None]
    fitted_err = None
    if true_camera and true_flame:
        camera, flame = true_cam, truth
    else:
        fit = fit_landmarks(lmk, res, G.flame, fit_config or FitConfig())
        fitted_err = float(fit.error_px[0])
        camera = true_cam if true_camera else fit.cameras.float()
        flame = truth if true_flame else full_flame(G, fit.flame)
    angles = camera_angles(camera)[0]
    warnings = [w for w in [yaw_warning(angles, max_yaw_deg)] if w]
    source = {"kind": "dataset_item", "dataset": str(path), "index": int(index), "image": ds.image_name(int(index)),
              "true_camera": bool(true_camera), "true_flame": bool(true_flame),
              "landmark_error_px": fitted_err, "yaw_pitch_roll_deg": [float(a) for a in angles],
              "sha256": hashlib.sha256(item["image"].numpy().tobytes()).hexdigest()}
    return InversionTarget(image=image, camera=camera, flame=flame, mask=face_mask(G, camera, flame, res),
                           landmarks=lmk, name=f"{Path(path).name}:{index}", source=source, warnings=warnings,
                           fit_seconds=time.perf_counter() - started, fit_cpu_seconds=time.process_time() - cpu)


__all__ = ["FLAME_KEYS", "MAX_TRAINING_YAW_DEG", "InversionInputError", "InversionTarget", "image_tensor",
           "full_flame", "face_mask", "check_topology", "yaw_warning", "target_from_photo", "parse_item_spec",
           "dataset_item", "target_from_dataset"]
