"""The `dataset.json` schema (format version 1): constants, validation and serialisation.

The format is specified in `docs/dataset_format.md`. This module turns the JSON text into
validated numpy label arrays (`DatasetLabels`) and back; it reads no images.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

FORMAT_NAME = "next3d-dataset"
FORMAT_VERSION = 1
LABELS_FILE = "dataset.json"
SPLITS = ("train", "test")
HEAD_MODELS = ("builtin", "flame")
POSE_KEYS = ("neck", "jaw", "left_eye", "right_eye")
FLAME_KEYS = ("shape", "expression") + POSE_KEYS
NUM_LANDMARKS = 68
CAMERA_DIM = 25
DOC = "docs/dataset_format.md"


class DatasetError(ValueError):
    """A data set (or one of its files) is missing, malformed or does not fit what was asked.

    The message is one line naming the file or item and what was expected.
    """


@dataclass
class DatasetLabels:
    """All labels of a next3d data set as arrays (N items).

    images: N entry names ("images/00000000.png"); splits: N of "train" | "test";
    cameras (N, 25) float32; flame: dict of float32 arrays, `shape` (N, num_shape),
    `expression` (N, num_expression), `neck`/`jaw`/`left_eye`/`right_eye` (N, 3), zero-padded;
    landmarks_2d (N, 68, 2) float32 pixels; ground_truth: N entry names or None;
    appearance: N dicts or None; header: the top-level keys other than "items".
    """

    resolution: int
    head_model: str
    head_version: Optional[str]
    head_topology: Optional[str]
    num_shape: int
    num_expression: int
    images: List[str]
    splits: List[str]
    cameras: np.ndarray
    flame: Dict[str, np.ndarray]
    landmarks_2d: np.ndarray
    ground_truth: List[Optional[str]]
    appearance: List[Optional[dict]]
    source: Optional[dict] = None
    header: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)


def _positive_int(value: Any, key: str, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DatasetError(f"{where}: '{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def _vector(value: Any, length: Optional[int], max_length: Optional[int], what: str) -> np.ndarray:
    """A finite 1-D float vector of exactly `length` (or at most `max_length`) numbers."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{what} must be a list of numbers, got {type(value).__name__}") from None
    if arr.ndim != 1:
        raise DatasetError(f"{what} must be a flat list of numbers, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise DatasetError(f"{what} must have {length} numbers, got {arr.shape[0]}")
    if max_length is not None and arr.shape[0] > max_length:
        raise DatasetError(f"{what} must have at most {max_length} numbers, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise DatasetError(f"{what} holds NaN or infinite values")
    return arr


def parse_labels(text: bytes, where: str) -> DatasetLabels:
    """Validate the bytes of a `dataset.json` and return its labels.

    `where` names the file in messages (e.g. "data/set.zip:dataset.json").
    Raises DatasetError on the first problem.
    """
    try:
        doc = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{where}: not valid JSON ({exc}); see {DOC}") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT_NAME:
        raise DatasetError(f"{where}: 'format' must be {FORMAT_NAME!r}, got {doc.get('format')!r}; see {DOC}")
    version = doc.get("version")
    if version != FORMAT_VERSION:
        raise DatasetError(f"{where}: format version {version!r} is not supported (this next3d reads version "
                           f"{FORMAT_VERSION})")
    resolution = _positive_int(doc.get("resolution"), "resolution", where)
    head_model = doc.get("head_model")
    if head_model not in HEAD_MODELS:
        raise DatasetError(f"{where}: 'head_model' must be one of {', '.join(HEAD_MODELS)}, got {head_model!r}")
    for key in ("head_version", "head_topology"):
        if doc.get(key) is not None and not isinstance(doc.get(key), str):
            raise DatasetError(f"{where}: '{key}' must be a string or null, got {doc.get(key)!r}")
    num_shape = _positive_int(doc.get("num_shape"), "num_shape", where, minimum=0)
    num_expr = _positive_int(doc.get("num_expression"), "num_expression", where, minimum=0)
    items = doc.get("items")
    if not isinstance(items, list):
        raise DatasetError(f"{where}: 'items' must be a list of items, got {type(items).__name__}")
    if not items:
        raise DatasetError(f"{where}: 'items' is empty (a data set needs at least one image)")
    source = doc.get("source")
    if source is not None and not isinstance(source, dict):
        raise DatasetError(f"{where}: 'source' must be an object or null, got {type(source).__name__}")

    n = len(items)
    cameras = np.zeros((n, CAMERA_DIM), np.float32)
    counts = {"shape": num_shape, "expression": num_expr, **{k: 3 for k in POSE_KEYS}}
    flame = {k: np.zeros((n, c), np.float32) for k, c in counts.items()}
    landmarks = np.zeros((n, NUM_LANDMARKS, 2), np.float32)
    images, splits, gts, appearance, seen = [], [], [], [], set()
    for i, item in enumerate(items):
        label = f"{where}: items[{i}]"
        if not isinstance(item, dict):
            raise DatasetError(f"{label} must be an object, got {type(item).__name__}")
        image = item.get("image")
        if not isinstance(image, str) or not image:
            raise DatasetError(f"{label}: 'image' must be the entry name of an image, got {image!r}")
        if image in seen:
            raise DatasetError(f"{label}: image {image} is listed twice")
        seen.add(image)
        label = f"{where}: items[{i}] ({image})"
        split = item.get("split", "train")
        if split not in SPLITS:
            raise DatasetError(f"{label}: 'split' must be one of {', '.join(SPLITS)}, got {split!r}")
        if "camera" not in item:
            raise DatasetError(f"{label}: missing 'camera' (25 numbers: cam2world 4x4 + intrinsics 3x3)")
        cameras[i] = _vector(item["camera"], CAMERA_DIM, None, f"{label}: 'camera'")
        fl = item.get("flame")
        if not isinstance(fl, dict):
            raise DatasetError(f"{label}: 'flame' must be an object with keys {', '.join(FLAME_KEYS)}")
        unknown = sorted(set(fl) - set(FLAME_KEYS))
        if unknown:
            raise DatasetError(f"{label}: unknown 'flame' key(s) {', '.join(unknown)} (expected {', '.join(FLAME_KEYS)})")
        for key, value in fl.items():
            exact = 3 if key in POSE_KEYS else None
            vec = _vector(value, exact, counts[key], f"{label}: 'flame.{key}'")
            flame[key][i, :vec.shape[0]] = vec
        if "landmarks_2d" not in item:
            raise DatasetError(f"{label}: missing 'landmarks_2d' (68 [x, y] pixel pairs)")
        try:
            lmk = np.asarray(item["landmarks_2d"], dtype=np.float64)
        except (TypeError, ValueError):
            raise DatasetError(f"{label}: 'landmarks_2d' must be 68 [x, y] pairs of numbers") from None
        if lmk.shape != (NUM_LANDMARKS, 2):
            raise DatasetError(f"{label}: 'landmarks_2d' must have shape (68, 2), got {lmk.shape}")
        if not np.isfinite(lmk).all():
            raise DatasetError(f"{label}: 'landmarks_2d' holds NaN or infinite values")
        landmarks[i] = lmk
        gt = item.get("ground_truth")
        if gt is not None and (not isinstance(gt, str) or not gt.endswith(".npz")):
            raise DatasetError(f"{label}: 'ground_truth' must name an .npz entry, got {gt!r}")
        app = item.get("appearance")
        if app is not None and not isinstance(app, dict):
            raise DatasetError(f"{label}: 'appearance' must be an object, got {type(app).__name__}")
        images.append(image)
        splits.append(split)
        gts.append(gt)
        appearance.append(app)
    header = {k: v for k, v in doc.items() if k != "items"}
    return DatasetLabels(resolution=resolution, head_model=head_model, head_version=doc.get("head_version"),
                         head_topology=doc.get("head_topology"), num_shape=num_shape, num_expression=num_expr,
                         images=images, splits=splits, cameras=cameras, flame=flame, landmarks_2d=landmarks,
                         ground_truth=gts, appearance=appearance, source=source, header=header)


def _floats(values: np.ndarray, digits: int = 7) -> list:
    """Compact JSON numbers: `digits` significant digits (float32 labels lose nothing that matters)."""
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=np.float64).reshape(-1).tolist()]


def item_record(*, image: str, split: str, camera: np.ndarray, flame: Mapping[str, np.ndarray],
                landmarks_2d: np.ndarray, ground_truth: Optional[str], appearance: Optional[dict]) -> dict:
    """One entry of `items` (arrays already validated)."""
    rec: Dict[str, Any] = {"image": image, "split": split, "camera": _floats(camera),
                           "flame": {k: _floats(flame[k]) for k in FLAME_KEYS if k in flame},
                           "landmarks_2d": [_floats(p, 6) for p in np.asarray(landmarks_2d)]}
    if ground_truth is not None:
        rec["ground_truth"] = ground_truth
    if appearance is not None:
        rec["appearance"] = appearance
    return rec


def dump_labels(header: Mapping[str, Any], items: Sequence[dict]) -> bytes:
    """The bytes of a `dataset.json`: header keys first, then `items`, one item per line."""
    head = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **{k: v for k, v in header.items()
                                                                 if k not in ("format", "version", "items")}}
    head_text = json.dumps(head, indent=2, sort_keys=False)
    lines = [json.dumps(it, separators=(",", ":"), sort_keys=False) for it in items]
    body = head_text[:-2] + ',\n  "items": [\n    ' + ",\n    ".join(lines) + "\n  ]\n}\n"
    return body.encode("utf-8")


def head_identity(model_data) -> Dict[str, Any]:
    """The dataset.json head keys of a loaded head model (`next3d.flame.FlameModelData`):
    head_model, head_version, head_topology, num_shape, num_expression."""
    from next3d.config import topology_hash

    from next3d.flame.head_record import head_version

    builtin = model_data.name == "builtin"
    # The version the head carries (an embedded head keeps its checkpoint's), else its folder's name.
    version = head_version(model_data) if builtin else model_data.name
    return {"head_model": "builtin" if builtin else "flame", "head_version": version,
            "head_topology": topology_hash(model_data.faces, model_data.uv_faces, model_data.uv_coords.shape[0]),
            "num_shape": model_data.num_shape, "num_expression": model_data.num_expression}



def generator_head_identity(G) -> Dict[str, Any]:
    """`head_identity` of the head G was built on: its own arrays (`G.head_data`; a shipped network
    embeds its head, maybe an older built-in version), else the head of `G.config.flame_dir`."""
    head = getattr(G, "head_data", None)
    if head is None:
        from next3d.flame import load_flame_model

        head = load_flame_model(G.config.flame_dir)
    return head_identity(head)