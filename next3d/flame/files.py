"""FLAME folders: the file layout, loading and validation.

A FLAME folder (given by `--flame-dir` or the `NEXT3D_FLAME_DIR` environment variable)
holds the files researchers download from the FLAME website and DECA's `data/` folder:

| file | content |
|---|---|
| `generic_model.pkl` (FLAME 2020) or `flame2023_Open.pkl` / `flame2023.pkl` | the model, a pickled dict (see below); FLAME 2020 holds chumpy arrays, read here without chumpy |
| `head_template.obj` | the template mesh with the UV layout (`vt` and `f v/vt`); same vertex count as the model (DECA: 5023 v, 5118 vt, 9976 f) |
| `landmark_embedding.npy` | DECA's 68-landmark embedding: 51 static points, a 79x17 yaw-dependent jaw contour, the full 68 set (a pickled dict) |
| `flame_static_embedding.pkl` + `flame_dynamic_embedding.npy` | optional RingNet-style embedding, used when `landmark_embedding.npy` is absent |
| `uv_face_eye_mask.png` | UV-space face/eye mask (white = face and eyes), any square size; row 0 = top of the texture (v = 1) |

Model pickle keys (V vertices, F faces, J = 5 joints):
`v_template` (V, 3) metres; `f` (F, 3); `shapedirs` (V, 3, S + E), shape components then
expression components (FLAME: 300 + 100); `posedirs` (V, 3, (J-1)*9); `J_regressor`
(J, V), dense or scipy-sparse; `weights` (V, J); `kintree_table` (2, J), first row the
parents (root -1 or a large value). Optional `num_shape` / `num_expression` give the
split of `shapedirs` (default: 300 shape components, the rest expression).
Joints in order: root (global), neck, jaw, left eye, right eye.

Without a folder the built-in procedural head (`next3d.flame.builtin`) is generated in
exactly this layout in a cache folder and loaded through the same code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from next3d.errors import Next3DError
from next3d.flame.landmarks import LandmarkEmbedding, embedding_from_deca, embedding_from_ringnet
from next3d.flame.obj_io import read_obj
from next3d.flame.pickles import load_model_pickle, load_pickled_npy
from next3d.safe_pickle import restricted_load, numpy_globals

ENV_FLAME_DIR = "NEXT3D_FLAME_DIR"
MODEL_FILES = ("generic_model.pkl", "flame2023_Open.pkl", "flame2023.pkl")
TEMPLATE_OBJ = "head_template.obj"
LANDMARK_NPY = "landmark_embedding.npy"
RINGNET_STATIC, RINGNET_DYNAMIC = "flame_static_embedding.pkl", "flame_dynamic_embedding.npy"
MASK_PNG = "uv_face_eye_mask.png"
DEFAULT_NUM_SHAPE = 300
NUM_JOINTS = 5
LAYOUT_DOC = "the FLAME folder layout is documented in next3d/flame/files.py and the README ('FLAME files')"


class FlameFilesError(Next3DError, ValueError):
    """A FLAME folder is missing a file or holds a malformed one."""


@dataclass(frozen=True)
class FlameModelData:
    """Everything the FLAME layer needs, as numpy arrays (float32 / int64).

    v_template (V, 3) metres, FLAME frame (y up, z towards the viewer); faces (F, 3);
    shapedirs (V, 3, num_shape); exprdirs (V, 3, num_expression); posedirs (V, 3, (J-1)*9);
    j_regressor (J, V); weights (V, J); parents (J,) with -1 for the root;
    uv_coords (T, 2) in [0, 1] (v = 0 at the bottom of the texture image); uv_faces (F, 3);
    uv_mask (S, S) in [0, 1], row 0 = top of the texture; landmarks: LandmarkEmbedding;
    name: 'flame2020' | 'flame2023' | 'builtin' | file stem; source: the folder (or the checkpoint
    that embeds it); version: see `next3d.flame.head_record.head_version` (None = derive it).
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    posedirs: np.ndarray
    j_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    uv_coords: np.ndarray
    uv_faces: np.ndarray
    uv_mask: np.ndarray
    landmarks: LandmarkEmbedding
    name: str
    source: str
    version: Optional[str] = None
    """Which code or files made the head, when known (next3d/flame/head_record.py)."""

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def num_expression(self) -> int:
        return int(self.exprdirs.shape[2])


def resolve_flame_dir(flame_dir: Union[str, Path, None] = None) -> Optional[Path]:
    """`flame_dir`, else $NEXT3D_FLAME_DIR, else None (= the built-in head)."""
    if flame_dir is None or str(flame_dir) == "":
        flame_dir = os.environ.get(ENV_FLAME_DIR) or None
    return None if flame_dir is None else Path(flame_dir).expanduser()


def load_flame_model(flame_dir: Union[str, Path, None] = None) -> FlameModelData:
    """Load a FLAME folder (None -> $NEXT3D_FLAME_DIR -> the built-in head model).

    Raises FlameFilesError naming the missing or malformed file and what was expected.
    """
    folder = resolve_flame_dir(flame_dir)
    if folder is None:
        from next3d.flame.builtin import ENV_BUILTIN_DIR, builtin_cache_root, builtin_head_dir

        try:
            head_dir = builtin_head_dir()
        except OSError as exc:
            from next3d.atomic_io import os_error_message

            raise FlameFilesError(f"built-in head: cannot write its cache folder under {builtin_cache_root()} "
                                  f"({os_error_message(exc)}); set {ENV_BUILTIN_DIR} to a writable folder, or "
                                  f"give a FLAME folder") from None
        return load_flame_folder(head_dir)
    try:
        return load_flame_folder(folder)
    except (ValueError, OSError) as exc:
        if isinstance(exc, FlameFilesError):
            raise
        from next3d.atomic_io import os_error_message

        detail = os_error_message(exc) if isinstance(exc, OSError) else str(exc)
        raise FlameFilesError(f"FLAME folder {folder}: {detail} ({LAYOUT_DOC})") from None


def load_flame_folder(folder: Union[str, Path]) -> FlameModelData:
    """Load the files of one FLAME folder (layout: module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FlameFilesError(f"FLAME folder {folder} does not exist ({LAYOUT_DOC})")
    model_path = next((folder / n for n in MODEL_FILES if (folder / n).is_file()), None)
    if model_path is None:
        raise FlameFilesError(f"FLAME folder {folder}: no model file, expected one of {', '.join(MODEL_FILES)} "
                              f"({LAYOUT_DOC})")
    model = _read_model(model_path)
    num_verts, num_faces = model["v_template"].shape[0], model["f"].shape[0]
    uv_coords, uv_faces = _read_template(folder / TEMPLATE_OBJ, num_verts, model["f"])
    landmarks = _read_landmarks(folder)
    landmarks.validate(num_faces, f"landmark embedding in {folder}")
    uv_mask = read_uv_mask(folder / MASK_PNG)
    name = {"generic_model": "flame2020"}.get(model_path.stem, model_path.stem.lower().replace("_open", ""))
    name = str(model.get("model_name", name))
    return FlameModelData(
        v_template=model["v_template"], faces=model["f"], shapedirs=model["shapedirs"],
        exprdirs=model["exprdirs"], posedirs=model["posedirs"], j_regressor=model["J_regressor"],
        weights=model["weights"], parents=model["parents"], uv_coords=uv_coords, uv_faces=uv_faces,
        uv_mask=uv_mask, landmarks=landmarks, name=name, source=str(folder),
    )


def _read_model(path: Path) -> dict:
    what = f"FLAME model {path}"
    try:
        raw = load_model_pickle(path)
    except ValueError as exc:
        raise FlameFilesError(f"{exc} ({LAYOUT_DOC})") from None
    missing = [k for k in ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
               if k not in raw]
    if missing:
        raise FlameFilesError(f"{what}: missing key(s) {', '.join(missing)} (expected a FLAME model dict; "
                              f"{LAYOUT_DOC})")

    def arr(key, dtype, ndim):
        try:
            value = np.asarray(raw[key])
        except (TypeError, ValueError) as exc:  # ragged lists and the like
            raise FlameFilesError(f"{what}: '{key}' is not an array ({exc})") from None
        if value.ndim != ndim or not np.issubdtype(value.dtype, np.number):
            raise FlameFilesError(f"{what}: '{key}' should be a numeric {ndim}-D array, got "
                                  f"{value.dtype} with shape {value.shape}")
        if np.issubdtype(dtype, np.integer) and value.dtype.kind in "fc" and not np.isfinite(value).all():
            raise FlameFilesError(f"{what}: '{key}' holds NaN or infinite indices")
        return value.astype(dtype)

    v_template = arr("v_template", np.float32, 2)
    num_verts = v_template.shape[0]
    faces = arr("f", np.int64, 2)
    shapedirs = arr("shapedirs", np.float32, 3)
    posedirs = arr("posedirs", np.float32, 3)
    j_regressor = arr("J_regressor", np.float32, 2)
    weights = arr("weights", np.float32, 2)
    kintree = arr("kintree_table", np.int64, 2)
    expect = {
        "v_template": (v_template.shape, (num_verts, 3)),
        "f": (faces.shape[1:], (3,)),
        "shapedirs": (shapedirs.shape[:2], (num_verts, 3)),
        "posedirs": (posedirs.shape, (num_verts, 3, (NUM_JOINTS - 1) * 9)),
        "J_regressor": (j_regressor.shape, (NUM_JOINTS, num_verts)),
        "weights": (weights.shape, (num_verts, NUM_JOINTS)),
        "kintree_table": (kintree.shape, (2, NUM_JOINTS)),
    }
    for key, (got, want) in expect.items():
        if tuple(got) != tuple(want):
            raise FlameFilesError(f"{what}: '{key}' has shape {tuple(got)}, expected {want} "
                                  f"(V = {num_verts} from v_template; {LAYOUT_DOC})")
    for key, value in (("v_template", v_template), ("shapedirs", shapedirs), ("posedirs", posedirs),
                       ("J_regressor", j_regressor), ("weights", weights)):
        if not np.isfinite(value).all():
            raise FlameFilesError(f"{what}: '{key}' holds {int((~np.isfinite(value)).sum())} NaN or infinite "
                                  f"value(s); expected finite numbers")
    if faces.size == 0 or num_verts == 0:
        raise FlameFilesError(f"{what}: the mesh is empty ({num_verts} vertices, {faces.shape[0]} faces)")
    if faces.min() < 0 or faces.max() >= num_verts:
        raise FlameFilesError(f"{what}: 'f' indexes vertices outside [0, {num_verts})")
    total = shapedirs.shape[2]
    num_shape = _count(raw, "num_shape", min(DEFAULT_NUM_SHAPE, total), what)
    num_expr = _count(raw, "num_expression", total - num_shape, what)
    if num_shape < 0 or num_expr < 0 or num_shape + num_expr > total:
        raise FlameFilesError(f"{what}: num_shape {num_shape} + num_expression {num_expr} exceed the "
                              f"{total} components of 'shapedirs'")
    parents = kintree[0].copy()
    parents[0] = -1  # FLAME stores the root's parent as 2**32 - 1
    if any(not 0 <= parents[j] < j for j in range(1, NUM_JOINTS)):
        raise FlameFilesError(f"{what}: 'kintree_table' parents {parents.tolist()} must precede their children")
    return {
        "v_template": v_template, "f": faces, "shapedirs": shapedirs[:, :, :num_shape],
        "exprdirs": shapedirs[:, :, num_shape:num_shape + num_expr], "posedirs": posedirs,
        "J_regressor": j_regressor, "weights": weights, "parents": parents,
        **({"model_name": str(raw["model_name"])} if "model_name" in raw else {}),
    }


def _count(raw: dict, key: str, default: int, what: str) -> int:
    """An optional non-negative integer field of the model pickle (None, strings, floats refused)."""
    if key not in raw:
        return int(default)
    value = raw[key]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise FlameFilesError(f"{what}: '{key}' must be a non-negative integer, got {type(value).__name__} "
                              f"({str(value)[:40]!r})")
    return int(value)


def _read_template(path: Path, num_verts: int, faces: np.ndarray):
    if not path.is_file():
        raise FlameFilesError(f"{path} is missing: expected the template mesh with UVs "
                              f"(DECA's head_template.obj; {LAYOUT_DOC})")
    try:
        mesh = read_obj(path)
    except ValueError as exc:
        raise FlameFilesError(f"{exc} ({LAYOUT_DOC})") from None
    if mesh.uv_coords is None:
        raise FlameFilesError(f"{path}: has no texture coordinates ('vt' and 'f v/vt'); expected the UV layout")
    if mesh.vertices.shape[0] != num_verts or mesh.faces.shape != faces.shape:
        raise FlameFilesError(f"{path}: {mesh.vertices.shape[0]} vertices / {mesh.faces.shape[0]} faces, expected "
                              f"{num_verts} / {faces.shape[0]} as in the model file (another topology?)")
    if not np.array_equal(mesh.faces, faces):
        raise FlameFilesError(f"{path}: its faces differ from the model's 'f' (expected the same triangle list)")
    return mesh.uv_coords.astype(np.float32), mesh.uv_faces


def _read_landmarks(folder: Path) -> LandmarkEmbedding:
    deca = folder / LANDMARK_NPY
    if deca.is_file():
        what = f"landmark embedding {deca}"
        data = _as_dict(load_pickled_npy(deca, what), what)
        return embedding_from_deca(data, what)
    static, dynamic = folder / RINGNET_STATIC, folder / RINGNET_DYNAMIC
    if static.is_file() and dynamic.is_file():
        what = f"landmark embedding {static} + {dynamic.name}"
        s = _as_dict(restricted_load(static, numpy_globals(), what=str(static), encoding="latin1"), str(static))
        d = _as_dict(load_pickled_npy(dynamic, str(dynamic)), str(dynamic))
        return embedding_from_ringnet(s, d, what)
    raise FlameFilesError(f"{deca} is missing: expected DECA's landmark_embedding.npy (or RingNet's "
                          f"{RINGNET_STATIC} + {RINGNET_DYNAMIC}; {LAYOUT_DOC})")


def _as_dict(obj, what) -> dict:
    if not isinstance(obj, dict):
        raise FlameFilesError(f"{what}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_uv_mask(path: Path) -> np.ndarray:
    """PNG (any mode) -> (S, S) float32 in [0, 1] (first channel; row 0 = top of the texture)."""
    from PIL import Image

    if not path.is_file():
        raise FlameFilesError(f"{path} is missing: expected the UV face/eye mask PNG ({LAYOUT_DOC})")
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGBA" if img.mode in ("P", "LA") else img.mode))
    except Exception as exc:  # PIL raises several types for unreadable images
        raise FlameFilesError(f"{path}: not a readable PNG ({type(exc).__name__}: {exc})") from None
    arr = arr[..., 0] if arr.ndim == 3 else arr
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise FlameFilesError(f"{path}: expected a square mask image, got shape {arr.shape}")
    scale = 1.0 if arr.dtype == np.bool_ else float(np.iinfo(arr.dtype).max) if arr.dtype.kind in "ui" else 1.0
    return (arr.astype(np.float32) / scale).clip(0, 1)
