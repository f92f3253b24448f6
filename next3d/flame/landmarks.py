"""68-point landmark embedding on a FLAME-topology mesh (iBUG 68 semantics).

A landmark is a face index + barycentric weights, so it moves with the surface. Layouts:

* DECA `landmark_embedding.npy` (a pickled dict): `static_lmk_faces_idx` (51,) and
  `static_lmk_bary_coords` (51, 3) for iBUG points 17..67; `dynamic_lmk_faces_idx`
  (79, 17) and `dynamic_lmk_bary_coords` (79, 17, 3), the jaw contour (iBUG 0..16) for
  head yaw bins; `full_lmk_faces_idx` (1, 68) and `full_lmk_bary_coords` (1, 68, 3).
* RingNet: `flame_static_embedding.pkl` {lmk_face_idx (51,), lmk_b_coords (51, 3)} and
  `flame_dynamic_embedding.npy` {lmk_face_idx (79, 17), lmk_b_coords (79, 17, 3)}.

Yaw bins (DECA's convention): the yaw of the head (rotation about y of global∘neck, in
degrees, rounded, clamped to [-39, 39]) picks row `yaw` for yaw >= 0 and row `39 - yaw`
for yaw < 0 (rows 40..78).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from torch_utils.misc import assert_shape

NUM_LANDMARKS = 68
NUM_CONTOUR = 17
MAX_YAW_DEG = 39
NUM_YAW_BINS = 2 * MAX_YAW_DEG + 1

# iBUG-68 index groups (0-based).
JAW = tuple(range(0, 17))
RIGHT_BROW, LEFT_BROW = tuple(range(17, 22)), tuple(range(22, 27))
NOSE_BRIDGE, NOSE_LOWER = tuple(range(27, 31)), tuple(range(31, 36))
RIGHT_EYE, LEFT_EYE = tuple(range(36, 42)), tuple(range(42, 48))
OUTER_LIPS, INNER_LIPS = tuple(range(48, 60)), tuple(range(60, 68))
NOSE_TIP, CHIN = 30, 8
INNER_LIP_UPPER, INNER_LIP_LOWER = 62, 66


@dataclass(frozen=True)
class LandmarkEmbedding:
    """Landmark embedding as numpy arrays (faces index the model's `f`).

    full_faces (68,) int64, full_bary (68, 3) float; dynamic_faces (79, 17) int64 and
    dynamic_bary (79, 17, 3) float, or None when the file has no yaw-dependent contour.
    """

    full_faces: np.ndarray
    full_bary: np.ndarray
    dynamic_faces: Optional[np.ndarray] = None
    dynamic_bary: Optional[np.ndarray] = None

    def validate(self, num_faces: int, what: str) -> None:
        def check(arr, shape, name):
            if tuple(arr.shape) != shape:
                raise ValueError(f"{what}: '{name}' has shape {tuple(arr.shape)}, expected {shape}")

        check(self.full_faces, (NUM_LANDMARKS,), "landmark faces")
        check(self.full_bary, (NUM_LANDMARKS, 3), "landmark barycentric coordinates")
        faces = [self.full_faces]
        if self.dynamic_faces is not None:
            check(self.dynamic_faces, (NUM_YAW_BINS, NUM_CONTOUR), "dynamic_lmk_faces_idx")
            check(self.dynamic_bary, (NUM_YAW_BINS, NUM_CONTOUR, 3), "dynamic_lmk_bary_coords")
            faces.append(self.dynamic_faces.reshape(-1))
        idx = np.concatenate(faces)
        if idx.min() < 0 or idx.max() >= num_faces:
            raise ValueError(f"{what}: landmark face indices must lie in [0, {num_faces}) (the model has "
                             f"{num_faces} faces), found [{idx.min()}, {idx.max()}]; the embedding belongs to "
                             f"another mesh topology")


def embedding_from_deca(d: dict, what: str) -> LandmarkEmbedding:
    """Build from DECA's dict layout (see module docstring)."""
    try:
        if "full_lmk_faces_idx" in d:
            full_faces = np.asarray(d["full_lmk_faces_idx"]).reshape(-1)
            full_bary = np.asarray(d["full_lmk_bary_coords"]).reshape(-1, 3)
        else:
            full_faces = full_bary = None
        dyn_faces = np.asarray(d["dynamic_lmk_faces_idx"]) if "dynamic_lmk_faces_idx" in d else None
        dyn_bary = np.asarray(d["dynamic_lmk_bary_coords"]) if dyn_faces is not None else None
        if full_faces is None:
            static_faces = np.asarray(d["static_lmk_faces_idx"]).reshape(-1)
            static_bary = np.asarray(d["static_lmk_bary_coords"]).reshape(-1, 3)
            full_faces, full_bary = _compose(static_faces, static_bary, dyn_faces, dyn_bary, what)
    except KeyError as exc:
        raise ValueError(f"{what}: missing key {exc} (expected DECA's landmark_embedding layout: "
                         f"full_lmk_faces_idx/full_lmk_bary_coords, or static_* + dynamic_*)") from None
    return LandmarkEmbedding(full_faces.astype(np.int64), full_bary.astype(np.float64),
                             None if dyn_faces is None else dyn_faces.astype(np.int64),
                             None if dyn_bary is None else dyn_bary.astype(np.float64))


def embedding_from_ringnet(static: dict, dynamic: dict, what: str) -> LandmarkEmbedding:
    """Build from RingNet's static (51 points) + dynamic (79x17 contour) files."""
    try:
        dyn_faces = np.asarray(dynamic["lmk_face_idx"]).astype(np.int64)
        dyn_bary = np.asarray(dynamic["lmk_b_coords"]).astype(np.float64)
        full_faces, full_bary = _compose(np.asarray(static["lmk_face_idx"]).reshape(-1),
                                         np.asarray(static["lmk_b_coords"]).reshape(-1, 3), dyn_faces, dyn_bary, what)
    except KeyError as exc:
        raise ValueError(f"{what}: missing key {exc} (expected RingNet's lmk_face_idx / lmk_b_coords)") from None
    return LandmarkEmbedding(full_faces.astype(np.int64), full_bary, dyn_faces, dyn_bary)


def _compose(static_faces, static_bary, dyn_faces, dyn_bary, what):
    if static_faces.shape != (NUM_LANDMARKS - NUM_CONTOUR,) or dyn_faces is None:
        raise ValueError(f"{what}: expected 51 static landmarks plus a (79, 17) dynamic contour")
    # Yaw bin 0 (frontal) gives the jaw contour of the full 68 set.
    return (np.concatenate([dyn_faces[0], static_faces]),
            np.concatenate([dyn_bary[0], static_bary], axis=0))


def yaw_bins(rot: torch.Tensor) -> torch.Tensor:
    """Head rotation matrices (B, 3, 3) -> contour row index (B,) long (DECA's binning)."""
    assert_shape(rot, [None, 3, 3], "rot")
    sy = torch.sqrt(rot[:, 0, 0] ** 2 + rot[:, 1, 0] ** 2)
    yaw = torch.atan2(-rot[:, 2, 0], sy)
    # A non-finite pose (NaN/inf) would give an index far outside the table: bin it frontal
    # (its vertices are non-finite anyway) instead of failing with an IndexError.
    deg = torch.nan_to_num(torch.round(torch.rad2deg(yaw)), nan=0.0).clamp(-MAX_YAW_DEG, MAX_YAW_DEG).long()
    return torch.where(deg < 0, MAX_YAW_DEG - deg, deg)


def vertices_to_landmarks(vertices: torch.Tensor, faces: torch.Tensor, lmk_faces: torch.Tensor,
                          lmk_bary: torch.Tensor) -> torch.Tensor:
    """Barycentric interpolation. vertices (B, V, 3), faces (F, 3) long, lmk_faces (B, L) long,
    lmk_bary (B, L, 3) -> landmarks (B, L, 3)."""
    batch = vertices.shape[0]
    assert_shape(lmk_faces, [batch, None], "lmk_faces")
    assert_shape(lmk_bary, [batch, lmk_faces.shape[1], 3], "lmk_bary")
    tri = faces[lmk_faces]  # (B, L, 3) vertex ids
    corners = torch.gather(vertices, 1, tri.reshape(batch, -1, 1).expand(-1, -1, 3)).view(batch, -1, 3, 3)
    return (corners * lmk_bary[..., None].to(vertices.dtype)).sum(dim=2)
