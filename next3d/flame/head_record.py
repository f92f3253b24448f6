"""Which head model a generator was trained on: version, content hash, and the head's arrays
as tensors (so a checkpoint can carry its head and never depend on later head code).

    record = describe_head(data)          # HeadRecord(name, version, content_hash)
    tensors = head_to_tensors(data)       # {name: tensor}, canonical dtypes (HEAD_ARRAYS)
    data2 = head_from_tensors(tensors, record.name, source="...")   # the same FlameModelData

Version: the built-in head's `next3d.flame.builtin.BUILTIN_VERSION` (`v<N>-<hash of the
generator's sources>`, also its cache folder's name); a FLAME folder's model name
(`flame2020`, `flame2023`, ...). The version says which code or files made the head; the
content hash says what the head *is*: sha256 over every array the FLAME layer and the
generator read (`HEAD_ARRAYS`, in that order, each cast to its canonical dtype, little
endian, with its name and shape), so two heads with the same hash give the same meshes,
landmarks, UV layout and mask bit for bit.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping

import numpy as np
import torch

from next3d.errors import Next3DError
from next3d.flame.files import FlameModelData
from next3d.flame.landmarks import LandmarkEmbedding

HASH_PREFIX = "sha256:"
_BUILTIN_VERSION_RE = re.compile(r"^v\d+-[0-9a-f]{12}$")

# name -> (canonical dtype, getter from FlameModelData). Order matters for the hash.
HEAD_ARRAYS: Dict[str, tuple] = {
    "v_template": (np.float32, lambda d: d.v_template),
    "faces": (np.int64, lambda d: d.faces),
    "shapedirs": (np.float32, lambda d: d.shapedirs),
    "exprdirs": (np.float32, lambda d: d.exprdirs),
    "posedirs": (np.float32, lambda d: d.posedirs),
    "j_regressor": (np.float32, lambda d: d.j_regressor),
    "weights": (np.float32, lambda d: d.weights),
    "parents": (np.int64, lambda d: d.parents),
    "uv_coords": (np.float32, lambda d: d.uv_coords),
    "uv_faces": (np.int64, lambda d: d.uv_faces),
    "uv_mask": (np.float32, lambda d: d.uv_mask),
    "lmk_full_faces": (np.int64, lambda d: d.landmarks.full_faces),
    "lmk_full_bary": (np.float64, lambda d: d.landmarks.full_bary),
    "lmk_dynamic_faces": (np.int64, lambda d: d.landmarks.dynamic_faces),
    "lmk_dynamic_bary": (np.float64, lambda d: d.landmarks.dynamic_bary),
}
OPTIONAL_ARRAYS = ("lmk_dynamic_faces", "lmk_dynamic_bary")
"""Absent when the landmark embedding has no yaw-dependent contour."""


class HeadRecordError(Next3DError, ValueError):
    """Stored head arrays or a head record are malformed or do not match each other."""


@dataclass(frozen=True)
class HeadRecord:
    """name: the model's name ('builtin', 'flame2020', ...); version: which code or files made it
    (module docstring); content_hash: `head_content_hash`; num_vertices, num_shape,
    num_expression: its sizes (for messages)."""

    name: str
    version: str
    content_hash: str
    num_vertices: int = 0
    num_shape: int = 0
    num_expression: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "version": self.version, "content_hash": self.content_hash,
                "num_vertices": self.num_vertices, "num_shape": self.num_shape,
                "num_expression": self.num_expression}

    @classmethod
    def from_dict(cls, data: Any, what: str = "head record") -> "HeadRecord":
        if not isinstance(data, dict):
            raise HeadRecordError(f"{what}: expected an object, got {type(data).__name__}")
        for key in ("name", "version", "content_hash"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise HeadRecordError(f"{what}: '{key}' must be a non-empty string, got {data.get(key)!r}")
        if not data["content_hash"].startswith(HASH_PREFIX):
            raise HeadRecordError(f"{what}: content_hash {data['content_hash']!r} must start with '{HASH_PREFIX}'")
        sizes = {}
        for key in ("num_vertices", "num_shape", "num_expression"):
            value = data.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise HeadRecordError(f"{what}: '{key}' must be a non-negative integer, got {value!r}")
            sizes[key] = value
        return cls(name=data["name"], version=data["version"], content_hash=data["content_hash"], **sizes)

    def describe(self) -> str:
        return f"{self.name} head {self.version} ({self.content_hash})"


def _canonical(data: FlameModelData) -> Dict[str, np.ndarray]:
    out = {}
    for name, (dtype, get) in HEAD_ARRAYS.items():
        value = get(data)
        if value is None:
            if name in OPTIONAL_ARRAYS:
                continue
            raise HeadRecordError(f"head model {data.source}: '{name}' is missing")
        out[name] = np.ascontiguousarray(np.asarray(value).astype(dtype, copy=False))
    return out


def _hash_arrays(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256(b"next3d-head-content-v1\n")
    for name in HEAD_ARRAYS:
        if name not in arrays:
            continue
        arr = np.ascontiguousarray(arrays[name])
        digest.update(f"{name} {arr.dtype.str} {list(arr.shape)}\n".encode())
        digest.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return HASH_PREFIX + digest.hexdigest()[:32]


def head_content_hash(data: FlameModelData) -> str:
    """sha256 (32 hex digits) over the head's arrays in `HEAD_ARRAYS` order and canonical dtypes."""
    return _hash_arrays(_canonical(data))


def head_version(data: FlameModelData) -> str:
    """The built-in head: its cache folder's name (= `BUILTIN_VERSION` of the code that wrote it);
    otherwise the model name. A built-in head loaded from an unversioned folder is 'builtin-unversioned'.
    A head rebuilt from a checkpoint keeps the version recorded there (`data.version`)."""
    if data.version:
        return data.version
    if data.name == "builtin":
        folder = Path(str(data.source)).name
        return folder if _BUILTIN_VERSION_RE.match(folder) else "builtin-unversioned"
    return data.name


def describe_head(data: FlameModelData) -> HeadRecord:
    """The HeadRecord of a loaded head model."""
    return HeadRecord(name=data.name, version=head_version(data), content_hash=head_content_hash(data),
                      num_vertices=data.num_vertices, num_shape=data.num_shape, num_expression=data.num_expression)


def head_to_tensors(data: FlameModelData) -> Dict[str, torch.Tensor]:
    """The head's arrays as CPU tensors {name: tensor} in canonical dtypes (for a checkpoint group)."""
    return {name: torch.from_numpy(arr.copy()) for name, arr in _canonical(data).items()}


def head_from_tensors(tensors: Mapping[str, torch.Tensor], record: HeadRecord, source: str) -> FlameModelData:
    """Rebuild the FlameModelData from `head_to_tensors` output, checking names, dtypes, shapes
    and that the content hash equals `record.content_hash` (HeadRecordError otherwise)."""
    missing = [n for n in HEAD_ARRAYS if n not in tensors and n not in OPTIONAL_ARRAYS]
    unknown = [n for n in tensors if n not in HEAD_ARRAYS]
    if missing or unknown:
        raise HeadRecordError(f"{source}: stored head arrays: missing {missing or 'none'}, unknown {unknown or 'none'}")
    arrays = {}
    for name, tensor in tensors.items():
        dtype = HEAD_ARRAYS[name][0]
        arr = tensor.detach().cpu().numpy()
        if arr.dtype != np.dtype(dtype):
            raise HeadRecordError(f"{source}: stored head array '{name}' is {arr.dtype}, expected {np.dtype(dtype)}")
        arrays[name] = arr
    got = _hash_arrays(arrays)
    if got != record.content_hash:
        raise HeadRecordError(f"{source}: the stored head arrays hash to {got}, but the record says "
                              f"{record.content_hash} (corrupt file)")
    v = arrays["v_template"]
    checks = [("v_template", v.ndim == 2 and v.shape[1] == 3),
              ("faces", arrays["faces"].ndim == 2 and arrays["faces"].shape[1] == 3),
              ("uv_faces", arrays["uv_faces"].shape == arrays["faces"].shape),
              ("shapedirs", arrays["shapedirs"].shape[:2] == v.shape),
              ("exprdirs", arrays["exprdirs"].shape[:2] == v.shape),
              ("weights", arrays["weights"].shape[0] == v.shape[0]),
              ("lmk_full_faces", arrays["lmk_full_faces"].shape == (68,))]
    bad = [name for name, ok in checks if not ok]
    if bad:
        raise HeadRecordError(f"{source}: stored head arrays have inconsistent shapes ({', '.join(bad)})")
    landmarks = LandmarkEmbedding(full_faces=arrays["lmk_full_faces"], full_bary=arrays["lmk_full_bary"],
                                  dynamic_faces=arrays.get("lmk_dynamic_faces"),
                                  dynamic_bary=arrays.get("lmk_dynamic_bary"))
    return FlameModelData(
        v_template=arrays["v_template"], faces=arrays["faces"], shapedirs=arrays["shapedirs"],
        exprdirs=arrays["exprdirs"], posedirs=arrays["posedirs"], j_regressor=arrays["j_regressor"],
        weights=arrays["weights"], parents=arrays["parents"], uv_coords=arrays["uv_coords"],
        uv_faces=arrays["uv_faces"], uv_mask=arrays["uv_mask"], landmarks=landmarks, name=record.name,
        source=source, version=record.version)

