"""The mouth interior: upper and lower teeth, tongue and a dark cavity, visible when the jaw opens.

Placed from the landmarks of the shaped rest mesh (mouth corners 48/54, inner lips 62/66), just
behind the lips: the upper teeth ride with the head (neck joint), the lower teeth and the
tongue with the jaw; the cavity (the back half of an ellipsoid, open towards the lips) blends
from the head at its top to the jaw at its bottom. All parts are segmentation class 5.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np
import torch

from next3d.synthetic.head import MOUTH
from next3d.synthetic.parts import Part, ellipsoid, grid_faces, joint_weights


def _arch(landmarks: np.ndarray, width_scale: float, z_back: float, y_top: float, y_bottom: float,
          thickness: float, samples: int = 36):
    """A tooth row: a closed strip (4-point cross-section) along a parabolic arch.

    Returns vertices (N, 3), faces, arc position s in [-1, 1] per vertex."""
    half_w = 0.5 * (landmarks[54, 0] - landmarks[48, 0]) * width_scale
    z0 = min(landmarks[62, 2], landmarks[66, 2]) - z_back
    depth = 0.02
    s = np.linspace(-1, 1, samples)
    cx, cz = half_w * s, z0 - depth * s * s
    tx, tz = np.full_like(s, half_w), -2 * depth * s
    n = np.stack([-tz, tx], -1)
    n = n / np.linalg.norm(n, axis=1, keepdims=True)  # outward (towards the lips)
    ring = [(y_top, 0.0), (y_bottom, 0.0), (y_bottom, -thickness), (y_top, -thickness)]
    verts = []
    for y, off in ring:
        verts.append(np.stack([cx + off * n[:, 0], np.full_like(s, y), cz + off * n[:, 1]], -1))
    verts = np.stack(verts, 0)  # (4, S, 3): the cross-section rings as grid rows
    faces = grid_faces(4, samples, wrap=False)
    closing = np.stack([np.array([3 * samples + np.arange(samples - 1), np.arange(samples - 1),
                                  np.arange(1, samples)]).T,
                        np.array([3 * samples + np.arange(samples - 1), np.arange(1, samples),
                                  3 * samples + np.arange(1, samples)]).T]).reshape(-1, 3)
    return verts.reshape(-1, 3), np.concatenate([faces, closing]), np.tile(s, 4)


def _teeth_albedo(s: np.ndarray, half_w: float, rgb: np.ndarray) -> np.ndarray:
    arc = s * half_w * 1.15  # arc length from the midline, approximately
    width = np.where(np.abs(arc) < 0.009, 0.0085, 0.0075)
    phase = np.mod(arc / width, 1.0)
    gap = np.exp(-0.5 * ((np.minimum(phase, 1 - phase)) / 0.08) ** 2)
    shade = (1 - 0.55 * gap) * (1 - 0.65 * np.abs(s) ** 1.5)
    return rgb[None] * shade[:, None]


def mouth_parts(rest_landmarks: np.ndarray, app: Dict) -> List[Part]:
    """Teeth (2 parts), tongue and cavity for the shaped rest mesh's landmarks (68, 3)."""
    L = np.asarray(rest_landmarks, np.float64)
    y_m = 0.5 * (L[62, 1] + L[66, 1])
    half_w = 0.5 * (L[54, 0] - L[48, 0])
    teeth_rgb = np.asarray(app.get("teeth_rgb", [0.7, 0.62, 0.5]))
    parts = []
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    for name, joint, scale, zb, y0, y1 in (("upper_teeth", 1, 0.78, 0.0075, y_m + 0.009, y_m - 0.0008),
                                           ("lower_teeth", 2, 0.72, 0.0105, y_m - 0.0006, y_m - 0.0065)):
        v, f, s = _arch(L, scale, zb, y0, y1, thickness=0.004)
        parts.append(Part(name, f32(v), torch.as_tensor(f), joint_weights(len(v), joint), MOUTH,
                          albedo=f32(_teeth_albedo(s, half_w * scale, teeth_rgb)),
                          specular=torch.full((len(v),), 0.25), shininess=40.0))
    z0 = min(L[62, 2], L[66, 2])
    v, f = ellipsoid((0.0, y_m - 0.010, z0 - 0.03), (half_w * 0.7, 0.006, 0.018), 8, 16)
    tongue_rgb = np.asarray(app.get("tongue_rgb", [0.45, 0.12, 0.12]))
    shade = 1 - 0.6 * np.clip((z0 - 0.015 - v[:, 2]) / 0.02, 0, 1)
    parts.append(Part("tongue", f32(v), torch.as_tensor(f), joint_weights(len(v), 2), MOUTH,
                      albedo=f32(tongue_rgb[None] * shade[:, None]), specular=torch.full((len(v),), 0.2),
                      shininess=25.0))
    v, f = ellipsoid((0.0, y_m, z0 - 0.014), (half_w * 0.7, 0.012, 0.028), 10, 16, z_max=0.0)
    w = torch.zeros(len(v), 5)
    up = torch.as_tensor(np.clip((v[:, 1] - y_m) / 0.01 * 0.5 + 0.5, 0, 1), dtype=torch.float32)
    w[:, 1], w[:, 2] = up, 1 - up
    parts.append(Part("cavity", f32(v), torch.as_tensor(f), w, MOUTH,
                      albedo=f32(np.tile([[0.06, 0.012, 0.012]], (len(v), 1))), specular=torch.zeros(len(v)),
                      shininess=10.0))
    return parts
