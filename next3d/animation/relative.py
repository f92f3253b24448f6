"""Relative expression transfer (`next3d reenact --relative`).

The driver's change from its first frame (taken as its neutral) is added to the
avatar's neutral, so the driver's identity and resting expression do not leak into the
avatar; the avatar keeps its own FLAME shape.

Parameters (`relative_params`), per frame i of a driver with frames d_0 .. d_{N-1}:

* linear parameters (`expression` (N, E)): a_i = a_neutral + (d_i - d_0);
* rotations (`jaw`, `neck`, `left_eye`, `right_eye` (N, 3) axis-angle radians):
  R(a_i) = R(a_neutral) · R(d_0)^T · R(d_i), i.e. the driver's rotation relative to its
  first frame applied on top of the avatar's (for small angles this is the sum
  a_neutral + d_i - d_0).

Meshes (`relative_vertices`, for drivers given as meshes): v_i = v_neutral + (d_i - d_0)
per vertex and per landmark (same topology required).

A driver whose every frame equals its first reproduces the avatar's neutral exactly.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional

import torch

from torch_utils.misc import ShapeError, assert_shape

LINEAR_KEYS = ("expression",)
ROTATION_KEYS = ("jaw", "neck", "left_eye", "right_eye")


def axis_angle_to_matrix(r: torch.Tensor) -> torch.Tensor:
    """Axis-angle (N, 3) -> rotation matrices (N, 3, 3) (Rodrigues; exact identity at 0)."""
    assert_shape(r, [None, 3], "axis-angle")
    r = r.double()
    angle = r.norm(dim=-1, keepdim=True)
    small = angle < 1e-12
    axis = torch.where(small, torch.zeros_like(r), r / angle.clamp_min(1e-12))
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(-1, 3, 3)
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=r.dtype, device=r.device).expand_as(k)
    return eye + s * k + (1.0 - c) * (k @ k)


def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (N, 3, 3) -> axis-angle (N, 3), angles in [0, π] (via the unit quaternion)."""
    assert_shape(m, [None, 3, 3], "rotation matrices")
    m = m.double()
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    # Shepperd's method: pick the largest of 4 candidates for numerical stability.
    cand = torch.stack([1 + tr, 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2], 1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2],
                        1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], dim=-1)
    best = cand.argmax(dim=-1)
    q = torch.empty(m.shape[0], 4, dtype=m.dtype, device=m.device)
    for i in range(4):
        sel = best == i
        if not bool(sel.any()):
            continue
        mm = m[sel]
        s = torch.sqrt(cand[sel, i].clamp_min(1e-30)) * 2  # s = 4 |q_i|
        if i == 0:
            q[sel] = torch.stack([s / 4, (mm[:, 2, 1] - mm[:, 1, 2]) / s, (mm[:, 0, 2] - mm[:, 2, 0]) / s,
                                  (mm[:, 1, 0] - mm[:, 0, 1]) / s], dim=-1)
        elif i == 1:
            q[sel] = torch.stack([(mm[:, 2, 1] - mm[:, 1, 2]) / s, s / 4, (mm[:, 0, 1] + mm[:, 1, 0]) / s,
                                  (mm[:, 0, 2] + mm[:, 2, 0]) / s], dim=-1)
        elif i == 2:
            q[sel] = torch.stack([(mm[:, 0, 2] - mm[:, 2, 0]) / s, (mm[:, 0, 1] + mm[:, 1, 0]) / s, s / 4,
                                  (mm[:, 1, 2] + mm[:, 2, 1]) / s], dim=-1)
        else:
            q[sel] = torch.stack([(mm[:, 1, 0] - mm[:, 0, 1]) / s, (mm[:, 0, 2] + mm[:, 2, 0]) / s,
                                  (mm[:, 1, 2] + mm[:, 2, 1]) / s, s / 4], dim=-1)
    q = torch.where(q[:, :1] < 0, -q, q)  # w >= 0: angle in [0, π]
    v = q[:, 1:]
    vn = v.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(vn, q[:, :1])
    # Near the identity, angle / |v| -> 2.
    factor = torch.where(vn < 1e-12, torch.full_like(vn, 2.0), angle / vn.clamp_min(1e-30))
    return v * factor


def _frames_of(value: torch.Tensor, key: str) -> torch.Tensor:
    if value.ndim != 2:
        raise ShapeError(f"{key}: expected (N, k) per-frame values, got {tuple(value.shape)}")
    if value.shape[0] < 1:
        raise ShapeError(f"{key}: the driver has no frames")
    return value


def relative_params(driver: Mapping[str, torch.Tensor],
                    neutral: Optional[Mapping[str, torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
    """Driver parameters (N, k) per key -> the avatar's parameters (N, k) (module docstring).

    neutral: the avatar's neutral per key, (k,) or (1, k); missing keys are zero.
    Keys other than `expression`, `jaw`, `neck`, `left_eye`, `right_eye` are refused.
    """
    neutral = dict(neutral or {})
    out: Dict[str, torch.Tensor] = {}
    for key, value in driver.items():
        if key not in LINEAR_KEYS + ROTATION_KEYS:
            raise ShapeError(f"relative transfer: unknown driver key {key!r} "
                             f"(expected {', '.join(LINEAR_KEYS + ROTATION_KEYS)})")
        d = _frames_of(value, key).double()
        base = neutral.get(key)
        base = torch.zeros(d.shape[1], dtype=d.dtype, device=d.device) if base is None else \
            base.reshape(-1).to(device=d.device, dtype=d.dtype)
        if base.shape[0] != d.shape[1]:
            if key in LINEAR_KEYS and base.shape[0] > d.shape[1]:
                d = torch.nn.functional.pad(d, (0, base.shape[0] - d.shape[1]))
            elif key in LINEAR_KEYS:
                base = torch.nn.functional.pad(base, (0, d.shape[1] - base.shape[0]))
            else:
                raise ShapeError(f"relative transfer: {key} neutral has {base.shape[0]} values, driver {d.shape[1]}")
        if key in LINEAR_KEYS:
            res = base[None] + (d - d[:1])
        else:
            rel = axis_angle_to_matrix(d[:1]).transpose(1, 2) @ axis_angle_to_matrix(d)
            res = matrix_to_axis_angle(axis_angle_to_matrix(base[None]) @ rel)
        out[key] = res.to(value.dtype)
    return out


def relative_vertices(driver_vertices: torch.Tensor, driver_landmarks: torch.Tensor,
                      neutral_vertices: torch.Tensor, neutral_landmarks: torch.Tensor):
    """Driver meshes (N, V, 3), (N, 68, 3) and the avatar's neutral (V, 3), (68, 3) -> (N, V, 3), (N, 68, 3)."""
    assert_shape(driver_vertices, [None, None, 3], "driver vertices")
    assert_shape(driver_landmarks, [driver_vertices.shape[0], 68, 3], "driver landmarks")
    assert_shape(neutral_vertices.reshape(-1, 3), [driver_vertices.shape[1], 3], "neutral vertices")
    assert_shape(neutral_landmarks.reshape(-1, 3), [68, 3], "neutral landmarks")
    v = neutral_vertices.reshape(1, -1, 3) + (driver_vertices - driver_vertices[:1])
    lm = neutral_landmarks.reshape(1, -1, 3) + (driver_landmarks - driver_landmarks[:1])
    return v, lm


__all__ = ["axis_angle_to_matrix", "matrix_to_axis_angle", "relative_params", "relative_vertices"]
