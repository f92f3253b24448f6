"""The published Next3D data layout, read through the same loader as the next3d format.

A folder (or zip) of images with, per image `NAME.png`, the FLAME mesh `NAME.obj`
(canonical FLAME space, no global rotation) and its 68 3D landmarks `NAME_kpt.txt` (or
`NAME.txt`, 68 rows of x y z), and `dataset_mead.json` holding
`{"labels": [["NAME.png", [25 floats]], ...]}` (the camera labels). Ready meshes stand in
for FLAME parameters: items carry `vertices` and `landmarks_3d` instead of `flame`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from training.dataset_schema import CAMERA_DIM, NUM_LANDMARKS, DatasetError
from training.dataset_storage import Storage

PUBLISHED_LABELS = "dataset_mead.json"


@dataclass
class PublishedLabels:
    """Labels of a published-layout set: images (N entry names), meshes / landmark files
    (N entry names), cameras (N, 25) float32; num_vertices and head_topology from the first
    mesh (topology None when it has no UVs)."""

    images: List[str]
    meshes: List[str]
    landmark_files: List[str]
    cameras: np.ndarray
    num_vertices: int
    faces: np.ndarray
    head_topology: Optional[str]

    def __len__(self) -> int:
        return len(self.images)


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def parse_published(storage: Storage) -> PublishedLabels:
    """Read and check `dataset_mead.json` and that every image has its mesh and landmarks."""
    where = storage.where(PUBLISHED_LABELS)
    try:
        doc = json.loads(storage.read(PUBLISHED_LABELS))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{where}: not valid JSON ({exc})") from None
    labels = doc.get("labels") if isinstance(doc, dict) else None
    if not isinstance(labels, list) or not labels:
        raise DatasetError(f"{where}: expected {{\"labels\": [[\"NAME.png\", [25 floats]], ...]}} with at least one entry")
    images, meshes, lmks = [], [], []
    cameras = np.zeros((len(labels), CAMERA_DIM), np.float32)
    for i, entry in enumerate(labels):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            raise DatasetError(f"{where}: labels[{i}] must be [\"NAME.png\", [25 floats]], got {str(entry)[:60]}")
        name, cam = entry
        try:
            vec = np.asarray(cam, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: labels[{i}] ({name}): the camera must be 25 numbers") from None
        if vec.shape[0] != CAMERA_DIM or not np.isfinite(vec).all():
            raise DatasetError(f"{where}: labels[{i}] ({name}): the camera must be 25 finite numbers, got "
                               f"{vec.shape[0]}")
        cameras[i] = vec
        stem = _stem(name)
        if not storage.exists(name):
            raise DatasetError(f"{storage.where(name)}: missing (listed in {PUBLISHED_LABELS})")
        if not storage.exists(stem + ".obj"):
            raise DatasetError(f"{storage.where(stem + '.obj')}: missing (every image needs its FLAME mesh)")
        lmk = next((c for c in (stem + "_kpt.txt", stem + ".txt") if storage.exists(c)), None)
        if lmk is None:
            raise DatasetError(f"{storage.where(stem + '_kpt.txt')}: missing (every image needs 68x3 landmarks "
                               f"in NAME_kpt.txt or NAME.txt)")
        images.append(name)
        meshes.append(stem + ".obj")
        lmks.append(lmk)
    faces, topology, num_vertices = _first_mesh_topology(storage, meshes[0])
    return PublishedLabels(images=images, meshes=meshes, landmark_files=lmks, cameras=cameras,
                           num_vertices=num_vertices, faces=faces, head_topology=topology)


def _first_mesh_topology(storage: Storage, name: str):
    from next3d.config import topology_hash
    from next3d.flame.obj_io import read_obj

    data = storage.read(name)
    fd, tmp = tempfile.mkstemp(suffix=".obj")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            mesh = read_obj(tmp)
        except ValueError as exc:
            raise DatasetError(f"{storage.where(name)}: not a readable OBJ mesh ({str(exc).split(': ', 1)[-1]})") from None
    finally:
        os.unlink(tmp)
    topology = None
    if mesh.uv_faces is not None:
        topology = topology_hash(mesh.faces, mesh.uv_faces, mesh.uv_coords.shape[0])
    return mesh.faces, topology, int(mesh.vertices.shape[0])


def read_vertices(storage: Storage, name: str, num_vertices: int) -> np.ndarray:
    """The `v` records of an OBJ entry as (V, 3) float32; DatasetError naming the file when
    it is malformed or has a different vertex count than the first mesh."""
    data = storage.read(name)
    rows = [line[2:] for line in data.splitlines() if line.startswith(b"v ")]
    try:
        verts = np.loadtxt(io.BytesIO(b"\n".join(rows)), dtype=np.float32, ndmin=2)[:, :3] if rows else None
    except ValueError as exc:
        raise DatasetError(f"{storage.where(name)}: malformed vertex records ({exc})") from None
    if verts is None or verts.shape != (num_vertices, 3):
        got = 0 if verts is None else verts.shape[0]
        raise DatasetError(f"{storage.where(name)}: {got} vertices, expected {num_vertices} like the first mesh")
    return verts


def read_landmarks_3d(storage: Storage, name: str) -> np.ndarray:
    """A 68x3 landmark text entry as (68, 3) float32; DatasetError naming the file otherwise."""
    try:
        lmk = np.loadtxt(io.BytesIO(storage.read(name)), dtype=np.float32, ndmin=2)
    except ValueError as exc:
        raise DatasetError(f"{storage.where(name)}: not a table of numbers ({exc})") from None
    if lmk.shape != (NUM_LANDMARKS, 3):
        raise DatasetError(f"{storage.where(name)}: expected 68 rows of x y z, got shape {lmk.shape}")
    return lmk
