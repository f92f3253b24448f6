"""Wavefront OBJ with texture coordinates: read and write triangle meshes.

Conventions:
* vertices (V, 3) float, faces (F, 3) int64 (0-based), uv coords (T, 2) float in [0, 1]
  with v = 0 at the bottom of the texture image (OBJ's convention), uv faces (F, 3) int64
  indexing uv coords (0-based). Only triangles are read; polygons are fan-triangulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np


@dataclass(frozen=True)
class ObjMesh:
    """A triangle mesh read from an OBJ file.

    vertices (V, 3) float64; faces (F, 3) int64; uv_coords (T, 2) float64 or None;
    uv_faces (F, 3) int64 or None (None when the file has no `vt` / `f v/vt`).
    """

    vertices: np.ndarray
    faces: np.ndarray
    uv_coords: Optional[np.ndarray]
    uv_faces: Optional[np.ndarray]


def _index(token: str, count: int, path: Path, lineno: int) -> int:
    idx = int(token)
    idx = idx - 1 if idx > 0 else count + idx  # OBJ is 1-based; negatives count from the end
    if not 0 <= idx < count:
        raise ValueError(f"{path}:{lineno}: index {token} out of range (have {count})")
    return idx


def read_obj(path: Union[str, Path]) -> ObjMesh:
    """Read `v`, `vt` and `f` records of an OBJ file (other records are ignored).

    Raises ValueError naming the file and line for malformed records.
    """
    path = Path(path)
    verts, uvs, faces, uv_faces = [], [], [], []
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            tag = parts[0]
            try:
                if tag == "v":
                    verts.append([float(x) for x in parts[1:4]])
                    if len(verts[-1]) != 3:
                        raise ValueError("a vertex needs 3 coordinates")
                elif tag == "vt":
                    uvs.append([float(x) for x in parts[1:3]])
                    if len(uvs[-1]) != 2:
                        raise ValueError("a texture coordinate needs 2 values")
                elif tag == "f":
                    corners = [c.split("/") for c in parts[1:]]
                    if len(corners) < 3:
                        raise ValueError("a face needs at least 3 corners")
                    vi = [_index(c[0], len(verts), path, lineno) for c in corners]
                    ti = [_index(c[1], len(uvs), path, lineno) if len(c) > 1 and c[1] else -1 for c in corners]
                    for k in range(1, len(corners) - 1):  # fan triangulation
                        faces.append([vi[0], vi[k], vi[k + 1]])
                        uv_faces.append([ti[0], ti[k], ti[k + 1]])
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: malformed '{tag}' record ({exc})") from None
    if not verts or not faces:
        raise ValueError(f"{path}: expected an OBJ mesh with 'v' and 'f' records, found {len(verts)} vertices "
                         f"and {len(faces)} faces")
    faces_np = np.asarray(faces, dtype=np.int64)
    uv_faces_np = np.asarray(uv_faces, dtype=np.int64)
    has_uv = bool(uvs) and bool((uv_faces_np >= 0).all())
    return ObjMesh(
        vertices=np.asarray(verts, dtype=np.float64),
        faces=faces_np,
        uv_coords=np.asarray(uvs, dtype=np.float64) if has_uv else None,
        uv_faces=uv_faces_np if has_uv else None,
    )


def write_obj(path: Union[str, Path], vertices, faces, uv_coords=None, uv_faces=None, precision: int = 6) -> None:
    """Write a triangle mesh (with UVs when both `uv_coords` and `uv_faces` are given).

    vertices (V, 3), faces (F, 3) 0-based, uv_coords (T, 2), uv_faces (F, 3) 0-based;
    numpy arrays or CPU/GPU tensors. Written atomically (temporary file, then rename).
    """
    vertices = _np(vertices)
    faces = _np(faces).astype(np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"write_obj: vertices must be (V, 3), got {vertices.shape}")
    if not np.isfinite(vertices).all():
        raise ValueError(f"write_obj {path}: {int((~np.isfinite(vertices)).any(axis=1).sum())} vertices are NaN or "
                         f"infinite; refusing to write them")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"write_obj: faces must be (F, 3), got {faces.shape}")
    with_uv = uv_coords is not None and uv_faces is not None
    lines = ["# written by next3d"]
    fmt = f"{{:.{precision}f}}"
    lines += ["v " + " ".join(fmt.format(c) for c in row) for row in vertices]
    if with_uv:
        uv_coords = _np(uv_coords)
        uv_faces = _np(uv_faces).astype(np.int64)
        if uv_faces.shape != faces.shape:
            raise ValueError(f"write_obj: uv_faces {uv_faces.shape} must match faces {faces.shape}")
        lines += ["vt " + " ".join(fmt.format(c) for c in row) for row in uv_coords]
        lines += [f"f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}"
                  for (a, b, c), (ta, tb, tc) in zip(faces.tolist(), uv_faces.tolist())]
    else:
        lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    from next3d.atomic_io import atomic_write_text

    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)
