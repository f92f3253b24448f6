"""Driving sequences for `next3d reenact`: FLAME parameter files, folders of meshes, driving videos.

`load_driver(path)` reads any of the three and returns a `DriverSequence`; every problem
is one `DriverError` line naming the file, the key or frame, and what was expected.
Frame i of the output always uses driver frame i (the published reenactment indexed
frames with an off-by-one; here frame 0 is the first file / row / video frame).

1. FLAME parameter sequence, `.npz` or `.json` (format "next3d-flame-sequence", version 1)
   -------------------------------------------------------------------------------------
   Per frame, FLAME keyword arguments (`next3d.flame.layer.FLAME.forward`), axis-angle
   radians, FLAME space (the global rotation is zero: head rotation is the camera's):

   | key | shape | required | meaning |
   |---|---|---|---|
   | `expression` | (N, E) | yes | expression coefficients, E <= the head model's count (missing trailing ones are 0) |
   | `jaw` | (N, 3) | yes | jaw rotation (x = opening) |
   | `neck` | (N, 3) | no (0) | neck rotation |
   | `left_eye`, `right_eye` | (N, 3) | no (0) | eyeball rotations; or `eyes` (N, 6) = left then right |
   | `camera` | (N, 25) | no | per-frame camera label (`next3d.render.cameras`), used by `--camera driver` |
   | `shape` | (S,) | no | the driver's identity (only for drawing the driver; the avatar keeps its own) |
   | `fps` | scalar | no | the driver's frame rate (default for `--fps`) |

   `.npz`: one array per key (N rows), loaded without pickles. `.json`:

       {"format": "next3d-flame-sequence", "version": 1, "fps": 30, "shape": [...],
        "frames": [{"expression": [...], "jaw": [x, y, z], "neck": [...], "left_eye": [...],
                    "right_eye": [...], "camera": [25 floats]}, ...]}

   (a bare list of frame objects is read too). Every frame must have the same keys.
   Refused with one line: unknown keys, missing required keys, wrong shapes, rows that
   disagree in N, NaN or infinite values (the first bad frame is named), no frames.

2. A folder of per-frame FLAME meshes in the published layout
   ----------------------------------------------------------
   `NAME.obj` (FLAME-space vertices of one topology) with 68x3 landmarks in
   `NAME_kpt.txt` or `NAME.txt` beside it. Frames are ordered by a natural sort of their
   names (`1, 2, 10`, not `1, 10, 2`); the published preprocessing also writes mirrored
   copies (`NAME_mirror.*`), which are skipped with a note (never mixed into the
   sequence); `.obj` files without a number in their name are skipped with a note; two
   files with the same number (`1.obj`, `01.obj`) are refused. Cameras come from a
   `dataset_mead.json` (`{"labels": [["NAME.png", [25 floats]], ...]}`) in the folder when
   it names every frame.

3. A driving video (any format ffmpeg reads)
   ------------------------------------------
   Decoded frame by frame and tracked by a `Tracker` (frames -> per-frame FLAME
   parameters + cameras; `TrackResult`). Frames where no face is found are carried
   over from the last good frame (leading ones from the first good frame) and reported
   in the notes; parameters and cameras are then smoothed in time (`smooth_track`,
   a zero-phase Gaussian filter: no lag). The default tracker is the project's FLAME
   fitter (`next3d.fitting`, wrapped in `next3d.animation.tracking.FitterTracker`: dlib
   landmarks, the published crop, one batched landmark fit per chunk of frames); without
   it, a driving video is refused with one line.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

import numpy as np
import torch

FORMAT = "next3d-flame-sequence"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("expression", "jaw")
POSE_KEYS = ("jaw", "neck", "left_eye", "right_eye")
PARAM_KEYS = ("expression",) + POSE_KEYS
OPTIONAL_KEYS = ("neck", "left_eye", "right_eye", "eyes", "camera", "shape", "fps")
ALL_KEYS = REQUIRED_KEYS + OPTIONAL_KEYS
MIRROR_PATTERN = re.compile(r"mirror|(^|[_\-. ])flip(ped)?([_\-. ]|$)", re.IGNORECASE)
SEQUENCE_SUFFIXES = (".npz", ".json")

PathLike = Union[str, Path]


class DriverError(ValueError):
    """A driving sequence that cannot be used (module docstring)."""


@dataclass(frozen=True)
class DriverSequence:
    """A driving sequence of N frames (CPU tensors, float32).

    kind: "params" | "meshes" | "video".
    params: FLAME parameters per key (`expression` (N, E), `jaw`, `neck`, `left_eye`,
        `right_eye` (N, 3)), or None for meshes.
    vertices (N, V, 3), landmarks (N, 68, 3): FLAME-space meshes, or None for params.
    cameras (N, 25): per-frame camera labels, or None.
    shape (S,): the driver's identity (params / video), or None.
    images (N, H, W, 3) uint8: the driving video's frames (video only).
    names: one name per frame (file stem, `frame i`); fps: the driver's rate or None;
    notes: what was skipped or repaired, one line each.
    """

    kind: str
    names: Tuple[str, ...]
    params: Optional[Dict[str, torch.Tensor]] = None
    vertices: Optional[torch.Tensor] = None
    landmarks: Optional[torch.Tensor] = None
    cameras: Optional[torch.Tensor] = None
    shape: Optional[torch.Tensor] = None
    images: Optional[np.ndarray] = None
    fps: Optional[float] = None
    notes: Tuple[str, ...] = field(default_factory=tuple)

    @property
    def num_frames(self) -> int:
        return len(self.names)

    def check_head(self, num_vertices: int, num_expression: int, num_shape: Optional[int] = None,
                   source: str = "driver") -> None:
        """Refuse meshes of another topology and more expression / shape components than the head has."""
        if self.vertices is not None and self.vertices.shape[1] != num_vertices:
            raise DriverError(f"{source}: meshes have {self.vertices.shape[1]} vertices, the head model "
                              f"{num_vertices} (use meshes of the generator's head model)")
        if self.params is not None and self.params["expression"].shape[1] > num_expression:
            raise DriverError(f"{source}: expression has {self.params['expression'].shape[1]} components, the head "
                              f"model {num_expression}")
        if self.shape is not None and num_shape is not None and self.shape.shape[0] > num_shape:
            raise DriverError(f"{source}: shape has {self.shape.shape[0]} components, the head model {num_shape}")


# --------------------------------------------------------------------------- parameter files


def _as_array(value, key: str, path: Path) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DriverError(f"{path}: '{key}' is not numeric (expected numbers)") from None
    return arr


def _check_rows(arr: np.ndarray, key: str, width: Optional[int], path: Path) -> np.ndarray:
    if arr.ndim == 1 and width is None:
        arr = arr[:, None]
    if arr.ndim != 2 or (width is not None and arr.shape[1] != width):
        want = f"(N, {width})" if width is not None else "(N, E)"
        raise DriverError(f"{path}: '{key}' has shape {tuple(arr.shape)}, expected {want}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise DriverError(f"{path}: '{key}' holds NaN or infinite values (first at frame {int(np.argmax(bad))})")
    return arr


def params_from_arrays(arrays: Mapping[str, np.ndarray], path: PathLike) -> DriverSequence:
    """Validate per-key arrays (module docstring, table 1) -> a "params" DriverSequence."""
    path = Path(path)
    unknown = sorted(set(arrays) - set(ALL_KEYS))
    if unknown:
        raise DriverError(f"{path}: unknown key(s) {', '.join(unknown)}; expected {', '.join(ALL_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise DriverError(f"{path}: missing required key(s) {', '.join(missing)} "
                          f"(a FLAME sequence needs per-frame {' and '.join(REQUIRED_KEYS)})")
    if "eyes" in arrays and ("left_eye" in arrays or "right_eye" in arrays):
        raise DriverError(f"{path}: give either 'eyes' (N, 6) or 'left_eye' and 'right_eye' (N, 3), not both")
    rows: Dict[str, np.ndarray] = {}
    widths = {"jaw": 3, "neck": 3, "left_eye": 3, "right_eye": 3, "eyes": 6, "camera": 25, "expression": None}
    for key, width in widths.items():
        if key in arrays:
            rows[key] = _check_rows(_as_array(arrays[key], key, path), key, width, path)
    counts = {k: v.shape[0] for k, v in rows.items()}
    n = counts["expression"]
    if n == 0 or any(c == 0 for c in counts.values()):
        raise DriverError(f"{path}: the sequence is empty (no frames)")
    if rows["expression"].shape[1] == 0:
        raise DriverError(f"{path}: 'expression' has no components, expected (N, E) with E >= 1")
    disagree = {k: c for k, c in counts.items() if c != n}
    if disagree:
        raise DriverError(f"{path}: frame counts disagree: expression has {n} rows but "
                          + ", ".join(f"{k} has {c}" for k, c in disagree.items()))
    if "eyes" in rows:
        eyes = rows.pop("eyes")
        rows["left_eye"], rows["right_eye"] = eyes[:, :3], eyes[:, 3:]
    params = {k: torch.from_numpy(np.ascontiguousarray(rows[k])).float() if k in rows else torch.zeros(n, 3)
              for k in PARAM_KEYS}
    cameras = torch.from_numpy(rows["camera"]).float() if "camera" in rows else None
    shape = None
    if "shape" in arrays:
        s = _as_array(arrays["shape"], "shape", path)
        if s.ndim == 2 and s.shape[0] >= 1:
            if not np.allclose(s, s[:1]):
                raise DriverError(f"{path}: 'shape' changes between frames; a driver has one identity, "
                                  f"expected (S,)")
            s = s[0]
        if s.ndim != 1 or s.shape[0] == 0:
            raise DriverError(f"{path}: 'shape' has shape {tuple(s.shape)}, expected (S,)")
        if not np.isfinite(s).all():
            raise DriverError(f"{path}: 'shape' holds NaN or infinite values")
        shape = torch.from_numpy(s).float()
    fps = None
    if "fps" in arrays:
        f = _as_array(arrays["fps"], "fps", path).reshape(-1)
        if f.shape[0] != 1 or not (np.isfinite(f[0]) and f[0] > 0):
            raise DriverError(f"{path}: 'fps' must be one positive number, got {arrays['fps']!r}")
        fps = float(f[0])
    return DriverSequence(kind="params", names=tuple(f"frame {i}" for i in range(n)), params=params,
                          cameras=cameras, shape=shape, fps=fps)


def _read_npz(path: Path) -> Dict[str, np.ndarray]:
    # np.load reads a non-zip file as a pickle or a .npy: refuse anything that is not a zip up front.
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise DriverError(f"{path}: not an .npz archive (expected a NumPy zip of arrays, e.g. from np.savez)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DriverError(f"{path}: holds object arrays (pickles), which are not read; store plain "
                              f"numeric arrays") from None
        raise DriverError(f"{path}: not a readable .npz archive ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DriverError(f"{path}: not a readable .npz archive ({exc})") from None


def _read_json(path: Path) -> Dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DriverError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, list):
        data = {"frames": data}
    if not isinstance(data, dict):
        raise DriverError(f"{path}: expected a JSON object with 'frames' (or a list of frame objects)")
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise DriverError(f"{path}: format {fmt!r}, expected {FORMAT!r}")
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise DriverError(f"{path}: version {version!r} of the FLAME sequence format; this next3d reads "
                          f"version {FORMAT_VERSION}")
    frames = data.get("frames")
    if not isinstance(frames, list):
        raise DriverError(f"{path}: missing 'frames' (a list of per-frame objects)")
    if not frames:
        raise DriverError(f"{path}: the sequence is empty (no frames)")
    keys = None
    columns: Dict[str, list] = {}
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise DriverError(f"{path}: frame {i} is not an object")
        if keys is None:
            keys = set(frame)
        elif set(frame) != keys:
            diff = sorted(keys.symmetric_difference(frame))
            raise DriverError(f"{path}: frame {i} has different keys from frame 0 ({', '.join(diff)})")
        for key, value in frame.items():
            if key in ("shape", "fps"):
                raise DriverError(f"{path}: '{key}' belongs at the top level, not in frame {i}")
            columns.setdefault(key, []).append(value)
    arrays: Dict[str, object] = {}
    for key, values in columns.items():
        lengths = {len(v) if isinstance(v, list) else -1 for v in values}
        if len(lengths) != 1 or -1 in lengths:
            raise DriverError(f"{path}: '{key}' must be a list of the same length in every frame")
        arrays[key] = values
    for key in ("shape", "fps"):
        if key in data:
            arrays[key] = data[key]
    extra = sorted(set(data) - {"format", "version", "frames", "shape", "fps"})
    if extra:
        raise DriverError(f"{path}: unknown top-level key(s) {', '.join(extra)}")
    return arrays


def load_param_sequence(path: PathLike) -> DriverSequence:
    """Read a FLAME parameter sequence (.npz or .json; module docstring, part 1)."""
    path = Path(path)
    if not path.is_file():
        raise DriverError(f"driver {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _read_npz(path)
    elif suffix == ".json":
        arrays = _read_json(path)
    else:
        raise DriverError(f"driver {path}: expected a .npz or .json FLAME sequence")
    return params_from_arrays(arrays, path)


def save_param_sequence(path: PathLike, params: Mapping[str, torch.Tensor], cameras: Optional[torch.Tensor] = None,
                        shape: Optional[torch.Tensor] = None, fps: Optional[float] = None) -> Path:
    """Write a FLAME sequence (.npz or .json by suffix), atomically. params: per key (N, k)."""
    import os

    path = Path(path)
    arrays = {k: np.asarray(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v, dtype=np.float32)
              for k, v in params.items()}
    if cameras is not None:
        arrays["camera"] = np.asarray(cameras.detach().cpu().numpy(), dtype=np.float32)
    if shape is not None:
        arrays["shape"] = np.asarray(shape.detach().cpu().numpy(), dtype=np.float32).reshape(-1)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}{path.suffix}")
    try:
        if path.suffix.lower() == ".npz":
            if fps is not None:
                arrays["fps"] = np.float64(fps)
            np.savez(tmp, **arrays)
        elif path.suffix.lower() == ".json":
            n = arrays["expression"].shape[0]
            per_frame = [k for k in arrays if k != "shape"]
            doc = {"format": FORMAT, "version": FORMAT_VERSION,
                   "frames": [{k: arrays[k][i].tolist() for k in per_frame} for i in range(n)]}
            if shape is not None:
                doc["shape"] = arrays["shape"].tolist()
            if fps is not None:
                doc["fps"] = float(fps)
            tmp.write_text(json.dumps(doc))
        else:
            raise DriverError(f"{path}: expected a .npz or .json file name")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# --------------------------------------------------------------------------- mesh folders


def natural_key(name: str) -> Tuple:
    """Sort key: digit runs compare as numbers ('frame2' < 'frame10')."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", name) if part != "")


def is_mirrored(name: str) -> bool:
    """Whether a file stem names a mirrored copy (`12_mirror`, `mirror-12`, `12.flip`)."""
    return MIRROR_PATTERN.search(name) is not None


def _read_landmarks(path: Path) -> np.ndarray:
    try:
        arr = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DriverError(f"{path}: not a table of numbers ({exc})") from None
    if arr.shape != (68, 3):
        raise DriverError(f"{path}: landmarks have shape {arr.shape}, expected (68, 3)")
    if not np.isfinite(arr).all():
        raise DriverError(f"{path}: landmarks hold NaN or infinite values")
    return arr


def _mead_cameras(folder: Path, stems: Sequence[str], notes: List[str]) -> Optional[torch.Tensor]:
    labels_path = folder / "dataset_mead.json"
    if not labels_path.is_file():
        return None
    try:
        labels = json.loads(labels_path.read_text(encoding="utf-8")).get("labels") or []
        table = {Path(str(name)).stem: np.asarray(label, dtype=np.float64) for name, label in labels}
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        notes.append(f"{labels_path}: unreadable ({exc}); no driver cameras")
        return None
    if not all(s in table and table[s].shape == (25,) and np.isfinite(table[s]).all() for s in stems):
        notes.append(f"{labels_path}: does not hold a 25-float label for every frame; no driver cameras")
        return None
    return torch.from_numpy(np.stack([table[s] for s in stems])).float()


def load_mesh_folder(folder: PathLike) -> DriverSequence:
    """Read a folder of per-frame FLAME meshes (module docstring, part 2)."""
    from next3d.flame.obj_io import read_obj

    folder = Path(folder)
    if not folder.is_dir():
        raise DriverError(f"driver {folder}: no such folder")
    notes: List[str] = []
    frames: List[Tuple[Tuple[int, ...], Path]] = []
    mirrored, unnumbered = [], []
    for path in sorted(folder.glob("*.obj")) + sorted(folder.glob("*.OBJ")):
        stem = path.stem
        if is_mirrored(stem):
            mirrored.append(path.name)
            continue
        numbers = tuple(int(n) for n in re.findall(r"\d+", stem))
        if not numbers:
            unnumbered.append(path.name)
            continue
        frames.append((numbers, path))
    if mirrored:
        notes.append(f"skipped {len(mirrored)} mirrored mesh(es) ({', '.join(sorted(mirrored, key=natural_key)[:3])}"
                     f"{', ...' if len(mirrored) > 3 else ''}): mirrored copies are not frames of the sequence")
    if unnumbered:
        notes.append(f"skipped {len(unnumbered)} .obj file(s) without a frame number ({', '.join(unnumbered[:3])})")
    if not frames:
        raise DriverError(f"driver {folder}: no numbered .obj meshes (expected NAME.obj with NAME_kpt.txt per frame)")
    frames.sort(key=lambda item: natural_key(item[1].stem))
    seen: Dict[Tuple, str] = {}
    for numbers, path in frames:
        key = (re.sub(r"\d+", "#", path.stem), numbers)
        if key in seen:
            raise DriverError(f"driver {folder}: {seen[key]} and {path.name} have the same frame number")
        seen[key] = path.name
    verts, lmks, names = [], [], []
    for _, path in frames:
        lmk_path = next((p for p in (path.with_name(path.stem + "_kpt.txt"), path.with_suffix(".txt"))
                         if p.is_file()), None)
        if lmk_path is None:
            raise DriverError(f"driver {folder}: frame {path.name} has no landmark file "
                              f"({path.stem}_kpt.txt or {path.stem}.txt)")
        try:
            mesh = read_obj(path)
        except (ValueError, OSError) as exc:
            raise DriverError(f"driver {path}: {exc}") from None
        if verts and mesh.vertices.shape != verts[0].shape:
            raise DriverError(f"driver {path}: {mesh.vertices.shape[0]} vertices, but {names[0]} has "
                              f"{verts[0].shape[0]} (every frame must share one topology)")
        if not np.isfinite(mesh.vertices).all():
            raise DriverError(f"driver {path}: vertices hold NaN or infinite values")
        verts.append(mesh.vertices)
        lmks.append(_read_landmarks(lmk_path))
        names.append(path.stem)
    numbers = [n[-1] for n, _ in frames]
    gaps = [(a, b) for a, b in zip(numbers, numbers[1:]) if b - a > 1]
    if gaps:
        notes.append(f"frame numbers have {len(gaps)} gap(s) (first after {gaps[0][0]}); frames are used in order")
    cameras = _mead_cameras(folder, names, notes)
    return DriverSequence(kind="meshes", names=tuple(names), vertices=torch.from_numpy(np.stack(verts)).float(),
                          landmarks=torch.from_numpy(np.stack(lmks)).float(), cameras=cameras, notes=tuple(notes))


# --------------------------------------------------------------------------- driving videos


@dataclass(frozen=True)
class TrackResult:
    """What a tracker returns for N frames: params per key (N, k) as in table 1, cameras (N, 25),
    found (N,) bool (False = no face in that frame; its values are ignored), shape (S,) or None."""

    params: Dict[str, torch.Tensor]
    cameras: torch.Tensor
    found: torch.Tensor
    shape: Optional[torch.Tensor] = None


class Tracker(Protocol):
    """Frames -> per-frame FLAME parameters and cameras.

    `track(frames)`: frames (N, 3, H, W) float32 in [-1, 1], RGB, consecutive video frames
    (a tracker may use the temporal order, e.g. as a prior). Returns a `TrackResult`.
    """

    def track(self, frames: torch.Tensor) -> TrackResult:  # pragma: no cover - protocol
        ...


def fill_missing(result: TrackResult) -> Tuple[TrackResult, List[int]]:
    """Carry values over to frames without a face: from the last good frame (leading ones from
    the first good). Returns the repaired result and the indices that were filled."""
    found = result.found.bool().cpu()
    n = found.shape[0]
    if not bool(found.any()):
        raise DriverError("driving video: no face found in any frame")
    src = torch.arange(n)
    last = -1
    first = int(torch.nonzero(found)[0])
    for i in range(n):
        if bool(found[i]):
            last = i
        src[i] = last if last >= 0 else first
    filled = [i for i in range(n) if not bool(found[i])]
    params = {k: v[src] for k, v in result.params.items()}
    return replace(result, params=params, cameras=result.cameras[src], found=torch.ones(n, dtype=torch.bool)), filled


def gaussian_smooth(values: torch.Tensor, sigma: float) -> torch.Tensor:
    """Zero-phase Gaussian filter along the frames: (N, k) -> (N, k); sigma in frames (0 = none).

    Edges are reflected, so a constant sequence stays constant and there is no lag.
    """
    if values.ndim != 2:
        raise ValueError(f"gaussian_smooth: expected (N, k), got {tuple(values.shape)}")
    if sigma <= 0 or values.shape[0] < 2:
        return values.clone()
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, values.shape[0] - 1)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    v = values.double().T[None]  # (1, k, N)
    padded = torch.nn.functional.pad(v, (radius, radius), mode="reflect")
    out = torch.nn.functional.conv1d(padded.reshape(-1, 1, padded.shape[-1]), kernel[None, None])
    return out.reshape(values.shape[1], -1).T.to(values.dtype)


def smooth_cameras(cameras: torch.Tensor, sigma: float) -> torch.Tensor:
    """Smooth camera labels (N, 25) in time: positions and intrinsics filtered, rotations filtered
    then projected back onto rotation matrices (polar decomposition)."""
    if sigma <= 0:
        return cameras.clone()
    out = gaussian_smooth(cameras, sigma).double()
    c2w = out[:, :16].reshape(-1, 4, 4)
    u, _, vh = torch.linalg.svd(c2w[:, :3, :3])
    d = torch.sign(torch.linalg.det(u @ vh))
    u = torch.cat([u[:, :, :2], u[:, :, 2:] * d[:, None, None]], dim=2)
    c2w[:, :3, :3] = u @ vh
    c2w[:, 3] = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype)
    out[:, :16] = c2w.reshape(-1, 16)
    return out.to(cameras.dtype)


def smooth_track(result: TrackResult, sigma: float = 1.0) -> TrackResult:
    """Temporal smoothing of a complete track (after `fill_missing`): every parameter and the cameras."""
    params = {k: gaussian_smooth(v, sigma) for k, v in result.params.items()}
    return replace(result, params=params, cameras=smooth_cameras(result.cameras, sigma))


def default_tracker(flame_dir: Optional[str] = None) -> Tracker:
    """The project's FLAME fitter as a Tracker (`next3d.animation.tracking.FitterTracker`) for the
    head model `flame_dir`; DriverError when `next3d.fitting` or its detector is not available."""
    try:
        import next3d.fitting  # noqa: F401 - the fitter (issue 9)
    except ImportError:
        raise DriverError("tracking a driving video needs the FLAME fitter (next3d.fitting), which this "
                          "installation does not have; track the video elsewhere and pass a .npz/.json "
                          "FLAME sequence or a folder of meshes") from None
    from next3d.animation.tracking import FitterTracker

    try:
        return FitterTracker(flame_dir=flame_dir)
    except ImportError as exc:
        raise DriverError(f"tracking a driving video needs the fitter's face detector ({exc}); install the "
                          f"'photos' extra (pip install 'next3d[photos]')") from None


def load_video_driver(path: PathLike, tracker: Optional[Tracker] = None, max_frames: Optional[int] = None,
                      smoothing: float = 1.0, batch: int = 64, flame_dir: Optional[str] = None) -> DriverSequence:
    """Decode and track a driving video (module docstring, part 3); tracker None = `default_tracker(flame_dir)`."""
    from next3d.animation.video_writer import VideoWriterError, read_video

    path = Path(path)
    if not path.is_file():
        raise DriverError(f"driver {path}: no such file")
    tracker = tracker if tracker is not None else default_tracker(flame_dir)
    try:
        images, meta = read_video(path, max_frames=max_frames)
    except VideoWriterError as exc:
        raise DriverError(str(exc)) from None
    parts: List[TrackResult] = []
    for lo in range(0, images.shape[0], batch):
        chunk = torch.from_numpy(images[lo:lo + batch].copy()).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        parts.append(tracker.track(chunk))
    keys = parts[0].params.keys()
    result = TrackResult(params={k: torch.cat([p.params[k] for p in parts]).float() for k in keys},
                         cameras=torch.cat([p.cameras for p in parts]).float(),
                         found=torch.cat([p.found for p in parts]).bool(), shape=parts[0].shape)
    result, filled = fill_missing(result)
    result = smooth_track(result, smoothing)
    notes = []
    if filled:
        shown = ", ".join(str(i) for i in filled[:8]) + (", ..." if len(filled) > 8 else "")
        notes.append(f"no face in {len(filled)} of {images.shape[0]} frame(s) ({shown}): carried over from "
                     f"the last good frame")
    arrays = {k: v.numpy() for k, v in result.params.items()}
    seq = params_from_arrays(arrays, path)
    fps = float(meta.get("fps") or 0) or None
    return replace(seq, kind="video", names=tuple(f"frame {i}" for i in range(images.shape[0])),
                   cameras=result.cameras, shape=result.shape, images=images, fps=fps, notes=tuple(notes))


def load_driver(path: PathLike, tracker: Optional[Tracker] = None, max_frames: Optional[int] = None,
                smoothing: float = 1.0, flame_dir: Optional[str] = None) -> DriverSequence:
    """A folder -> meshes; .npz/.json -> FLAME parameters; any other file -> a driving video."""
    path = Path(path)
    if path.is_dir():
        seq = load_mesh_folder(path)
    elif not path.exists():
        raise DriverError(f"driver {path}: no such file or folder")
    elif path.suffix.lower() in SEQUENCE_SUFFIXES:
        seq = load_param_sequence(path)
    else:
        return load_video_driver(path, tracker=tracker, max_frames=max_frames, smoothing=smoothing,
                                 flame_dir=flame_dir)
    if max_frames is not None and seq.num_frames > max_frames:
        seq = truncate(seq, max_frames)
    return seq


def truncate(seq: DriverSequence, count: int) -> DriverSequence:
    """The first `count` frames of a sequence."""
    return replace(seq, names=seq.names[:count],
                   params=None if seq.params is None else {k: v[:count] for k, v in seq.params.items()},
                   vertices=None if seq.vertices is None else seq.vertices[:count],
                   landmarks=None if seq.landmarks is None else seq.landmarks[:count],
                   cameras=None if seq.cameras is None else seq.cameras[:count],
                   images=None if seq.images is None else seq.images[:count])


__all__ = ["FORMAT", "FORMAT_VERSION", "DriverError", "DriverSequence", "TrackResult", "Tracker", "load_driver",
           "load_param_sequence", "save_param_sequence", "params_from_arrays", "load_mesh_folder",
           "load_video_driver", "natural_key", "is_mirrored", "fill_missing", "gaussian_smooth", "smooth_cameras",
           "smooth_track", "default_tracker", "truncate"]
