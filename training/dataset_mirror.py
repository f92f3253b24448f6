"""Horizontal flips of data-set items: the image, the camera and the FLAME parameters,
mirrored consistently.

A flipped image is the picture of the scene mirrored through the plane x = 0 of FLAME
space (the subject's left and right swap), taken by the mirrored camera.

* Camera: with S = diag(-1, 1, 1), cam2world R, t -> S R S, S t (the camera's own x axis
  is mirrored too, so it stays right-handed), intrinsics cx -> 1 - cx and skew -> -skew.
  In the flattened label the entries 1, 2, 3, 4, 8 change sign (EG3D's flip) and 18 becomes 1 - c[18].
* Pose: an axis-angle rotation a mirrors to -S a = (x, -y, -z); the left and right eye
  joints swap.
* Shape and expression: mirror every blendshape (reflect x and re-index the vertices by
  their mirror partners), then least-squares project it back onto the basis, which gives
  (K, K) matrices M with mirrored coefficients M @ beta. Where the basis is not closed
  under mirroring (the built-in head has asymmetric components without a mirror partner),
  the projection error of each item's own coefficients is measured
  (`MirrorOperator.vertex_error`) and the loader refuses flipping when it is too large.
* 2D landmarks: x -> R - x and the iBUG left/right permutation (`IBUG_MIRROR`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Union

import numpy as np
import torch

from training.dataset_schema import DatasetError, POSE_KEYS

# iBUG 68: the index of each landmark's mirror partner.
IBUG_MIRROR = np.array(
    list(range(16, -1, -1))                                   # jaw 0..16
    + list(range(26, 16, -1))                                 # brows 17..21 <-> 22..26
    + [27, 28, 29, 30]                                        # nose bridge
    + [35, 34, 33, 32, 31]                                    # nose lower
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]        # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]        # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65],                       # inner lips
    dtype=np.int64)

CAMERA_SIGN_FLIP = (1, 2, 3, 4, 8)
CAMERA_CX = 18
CAMERA_SKEW = 17
DEFAULT_TOLERANCE = 0.05
DEFAULT_MAX_VERTEX_ERROR = 0.0005  # metres RMS (about 1 px at 256 px and the FFHQ camera)

ArrayLike = Union[np.ndarray, torch.Tensor]


class MirrorError(DatasetError):
    """The head model cannot be mirrored (its template or blendshape basis is not symmetric)."""


@dataclass(frozen=True)
class MirrorOperator:
    """How a head model's parameters and vertices mirror.

    vertex_map (V,) int64: mirrored vertex i takes the reflected position of vertex
    vertex_map[i]. shape (S, S), expression (E, E) float32: mirrored coefficients are
    M @ beta (least squares). A basis that is not closed under mirroring cannot represent
    every mirrored head: `error_shape` / `error_expression` (K, K) are the Gram matrices of
    the projection error, so an item's mean squared vertex error (m^2) is
    (beta^T G_s beta + psi^T G_e psi) / V (`vertex_error`). residual_shape /
    residual_expression: relative residual per component (K,); template_error: the largest
    distance of a reflected template vertex from its partner, in head widths.
    """

    vertex_map: np.ndarray
    shape: np.ndarray
    expression: np.ndarray
    error_shape: np.ndarray
    error_expression: np.ndarray
    residual_shape: np.ndarray
    residual_expression: np.ndarray
    template_error: float

    def as_dict(self) -> Dict[str, np.ndarray]:
        return {"shape": self.shape, "expression": self.expression}

    def vertex_error(self, shape: np.ndarray, expression: np.ndarray) -> np.ndarray:
        """RMS vertex error (metres, FLAME space) of mirroring items with coefficients
        shape (N, <=S) and expression (N, <=E): (N,). Zero where the mirrored head is exact."""
        total = np.zeros(shape.shape[0], np.float64)
        for coeffs, gram in ((shape, self.error_shape), (expression, self.error_expression)):
            k = gram.shape[0]
            if k == 0 or coeffs.shape[1] == 0:
                continue
            c = np.zeros((coeffs.shape[0], k), np.float64)
            c[:, :min(k, coeffs.shape[1])] = coeffs[:, :k]
            total += np.einsum("ni,ij,nj->n", c, gram, c)
        return np.sqrt(np.maximum(total, 0.0) / self.vertex_map.shape[0])

    def open_components(self, threshold: float = 0.01) -> Dict[str, np.ndarray]:
        """Indices of the components whose mirror image lies outside the basis."""
        return {"shape": np.flatnonzero(self.residual_shape > threshold),
                "expression": np.flatnonzero(self.residual_expression > threshold)}


def _vertex_correspondence(model_data) -> tuple:
    """For every vertex, the vertex at its reflected position: (distances (V,), map (V,)).

    Coincident vertices (the closed lips of a template, seams) are told apart by what moves
    them: skinning weights (left/right eye joints swapped) and the mirrored blendshapes.
    """
    from scipy.spatial import cKDTree

    template = np.asarray(model_data.v_template, dtype=np.float64)
    reflected = template * np.array([-1.0, 1.0, 1.0])
    k = min(8, template.shape[0])
    dist, idx = cKDTree(template).query(reflected, k=k)
    dist, idx = dist.reshape(len(template), k), idx.reshape(len(template), k).astype(np.int64)
    width = float(np.ptp(template[:, 0])) or 1.0
    tied = dist <= dist[:, :1] + 1e-6 * width
    rows = np.flatnonzero(tied[:, 1:].any(axis=1))
    if rows.size:
        weights = np.asarray(model_data.weights, dtype=np.float64)
        swap = np.arange(weights.shape[1])
        if weights.shape[1] >= 5:
            swap[3], swap[4] = 4, 3  # left eye <-> right eye
        basis = np.concatenate([np.asarray(model_data.shapedirs), np.asarray(model_data.exprdirs)], axis=2)
        basis = basis.astype(np.float64)
        own_w = weights[rows][:, swap]
        own_b = basis[rows].copy()
        own_b[:, 0, :] *= -1.0
        cand = idx[rows]
        cost = (np.abs(weights[cand] - own_w[:, None]).sum(-1)
                + np.abs(basis[cand] - own_b[:, None]).sum((-1, -2)) / (np.abs(own_b).sum((-1, -2))[:, None] + 1e-12))
        cost = np.where(tied[rows], cost, np.inf)
        pick = np.argmin(cost, axis=1)
        idx[rows, 0] = cand[np.arange(rows.size), pick]
        dist[rows, 0] = dist[rows, pick]
    return dist[:, 0], idx[:, 0]


def _mirror_basis(basis: np.ndarray, vertex_map: np.ndarray):
    """basis (V, 3, K) -> (M (K, K), error Gram (K, K), residual per component (K,))
    with mirrored basis ~= basis @ M."""
    k = basis.shape[2]
    if k == 0:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0)), np.zeros(0)
    mirrored = basis[vertex_map].copy()
    mirrored[:, 0, :] *= -1.0
    a = basis.reshape(-1, k).astype(np.float64)
    b = mirrored.reshape(-1, k).astype(np.float64)
    m, *_ = np.linalg.lstsq(a, b, rcond=None)
    err = a @ m - b
    norms = np.linalg.norm(b, axis=0)
    residual = np.linalg.norm(err, axis=0) / np.where(norms > 0, norms, 1.0)
    return m.astype(np.float32), err.T @ err, residual


def build_mirror_operator(model_data, num_shape: Optional[int] = None, num_expression: Optional[int] = None,
                          tolerance: float = DEFAULT_TOLERANCE) -> MirrorOperator:
    """The mirror operator of a head model (`next3d.flame.FlameModelData`) for its first
    `num_shape` shape and `num_expression` expression components (default: all).

    Raises MirrorError when the template is not left/right symmetric (a reflected vertex
    farther than `tolerance` head widths from every vertex). Whether the blendshape bases
    are closed is recorded (`vertex_error`, `open_components`), not raised: items that
    avoid the open components still mirror exactly.
    """
    template = np.asarray(model_data.v_template, dtype=np.float64)
    dist, vertex_map = _vertex_correspondence(model_data)
    width = float(np.ptp(template[:, 0])) or 1.0
    template_error = float(dist.max() / width)
    if template_error > tolerance:
        raise MirrorError(f"cannot flip: the {model_data.name} head template is not left/right symmetric (a "
                          f"reflected vertex lies {template_error:.3f} head widths from the nearest vertex); "
                          f"use xflip=False")
    ns = model_data.num_shape if num_shape is None else min(int(num_shape), model_data.num_shape)
    ne = model_data.num_expression if num_expression is None else min(int(num_expression), model_data.num_expression)
    m_s, g_s, r_s = _mirror_basis(np.asarray(model_data.shapedirs)[:, :, :ns], vertex_map)
    m_e, g_e, r_e = _mirror_basis(np.asarray(model_data.exprdirs)[:, :, :ne], vertex_map)
    return MirrorOperator(vertex_map=vertex_map, shape=m_s, expression=m_e, error_shape=g_s, error_expression=g_e,
                          residual_shape=r_s, residual_expression=r_e, template_error=template_error)


def mirror_camera(c: ArrayLike) -> ArrayLike:
    """Camera labels (25,) or (B, 25), numpy or torch -> the labels of the mirrored camera."""
    if c.shape[-1] != 25:
        raise DatasetError(f"mirror_camera: expected (..., 25) camera labels, got {tuple(c.shape)}")
    out = c.clone() if isinstance(c, torch.Tensor) else np.array(c, copy=True)
    for i in CAMERA_SIGN_FLIP + (CAMERA_SKEW,):
        out[..., i] = -out[..., i]
    out[..., CAMERA_CX] = 1.0 - out[..., CAMERA_CX]
    return out


def _mirror_axis_angle(a: ArrayLike) -> ArrayLike:
    out = a.clone() if isinstance(a, torch.Tensor) else np.array(a, copy=True)
    out[..., 1:] = -out[..., 1:]
    return out


def _apply(matrix: np.ndarray, coeffs: ArrayLike, key: str) -> ArrayLike:
    k = matrix.shape[0]
    width = coeffs.shape[-1]
    if width > k:
        raise DatasetError(f"mirror_flame: '{key}' has {width} components, the mirror operator {k}")
    if isinstance(coeffs, torch.Tensor):
        mat = torch.as_tensor(matrix, dtype=coeffs.dtype, device=coeffs.device)
        padded = torch.nn.functional.pad(coeffs, (0, k - width))
        return padded @ mat.T
    padded = np.zeros(coeffs.shape[:-1] + (k,), dtype=np.result_type(coeffs.dtype, np.float32))
    padded[..., :width] = coeffs
    return (padded @ matrix.T).astype(padded.dtype)


def mirror_flame(flame: Mapping[str, ArrayLike], mirror_matrices: Union[MirrorOperator, Mapping[str, Any]]) -> dict:
    """FLAME parameters of the mirrored head: dict of (K,) or (B, K) arrays (numpy or torch)
    with keys of `FLAME.forward` -> the same keys, mirrored.

    `mirror_matrices`: a MirrorOperator or {"shape": (S, S), "expression": (E, E)}.
    Shape/expression vectors shorter than the matrices are zero-padded to their size.
    """
    mats = mirror_matrices.as_dict() if isinstance(mirror_matrices, MirrorOperator) else mirror_matrices
    out = {}
    for key, value in flame.items():
        if key in ("shape", "expression"):
            out[key] = _apply(np.asarray(mats[key]), value, key)
        elif key in POSE_KEYS or key == "global":
            if value.shape[-1] != 3:
                raise DatasetError(f"mirror_flame: '{key}' must be axis-angle (..., 3), got {tuple(value.shape)}")
            out[key] = _mirror_axis_angle(value)
        else:
            raise DatasetError(f"mirror_flame: unknown FLAME key {key!r}")
    if "left_eye" in out or "right_eye" in out:
        left, right = out.pop("left_eye", None), out.pop("right_eye", None)
        if right is not None:
            out["left_eye"] = right
        if left is not None:
            out["right_eye"] = left
    return out


def mirror_landmarks_2d(landmarks: ArrayLike, resolution: int) -> ArrayLike:
    """(…, 68, 2) pixel landmarks of an image -> those of the horizontally flipped image."""
    out = landmarks[..., IBUG_MIRROR, :]
    out = out.clone() if isinstance(out, torch.Tensor) else np.array(out, copy=True)
    out[..., 0] = resolution - out[..., 0]
    return out


def mirror_points(points: ArrayLike, vertex_map: Optional[np.ndarray] = None) -> ArrayLike:
    """FLAME-space points (…, N, 3) -> the mirrored points (x -> -x), re-indexed by
    `vertex_map` (vertices) or by the iBUG permutation when N = 68 and no map is given."""
    index = vertex_map if vertex_map is not None else (IBUG_MIRROR if points.shape[-2] == 68 else None)
    if index is None:
        raise DatasetError(f"mirror_points: {points.shape[-2]} points need a vertex map")
    out = points[..., index, :]
    out = out.clone() if isinstance(out, torch.Tensor) else np.array(out, copy=True)
    out[..., 0] = -out[..., 0]
    return out


def mirror_ground_truth(arrays: Mapping[str, np.ndarray], resolution: int,
                        vertex_map: Optional[np.ndarray]) -> Dict[str, np.ndarray]:
    """Ground-truth arrays of a flipped item: image-shaped arrays (R, R, ...) flip their
    columns (normals also negate x); `vertices` mirror through `vertex_map`; other arrays
    cannot be mirrored and raise DatasetError."""
    out = {}
    for key, arr in arrays.items():
        if arr.ndim >= 2 and arr.shape[0] == resolution and arr.shape[1] == resolution:
            flipped = np.ascontiguousarray(arr[:, ::-1])
            if key == "normals":
                flipped = flipped.copy()
                flipped[..., 0] = -flipped[..., 0]
            out[key] = flipped
        elif key == "vertices" and vertex_map is not None and arr.shape == (vertex_map.shape[0], 3):
            out[key] = mirror_points(arr, vertex_map)
        else:
            raise DatasetError(f"cannot flip ground truth {key!r} of shape {arr.shape}: not an image-shaped array")
    return out
