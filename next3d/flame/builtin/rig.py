"""Joints, joint regressor and skinning weights of the built-in head (FLAME's 5 joints).

Joints: 0 root (neck base), 1 neck (head on the neck), 2 jaw (hinge in front of the
ears), 3 left eye (+x), 4 right eye. Each joint is the mean of a vertex group, so the
regressor is a (5, V) averaging matrix and the joints follow shape changes.
Weights are smooth: the root holds the bottom of the neck, the jaw the lower face below a
line from the mouth to the ears (the lower lip and the lower half of the mouth pocket
fully, the upper lip not at all), the eyes their eyeballs, the neck joint the rest.
"""

from __future__ import annotations

import numpy as np

from next3d.flame.builtin import features as ft
from next3d.flame.builtin.mesh import EYE_L, EYE_R, MOUTH, SKIN, HeadMesh

PARENTS = np.array([-1, 0, 1, 1, 1])


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def joint_regressor(mesh: HeadMesh) -> np.ndarray:
    v, part = mesh.vertices, mesh.part
    reg = np.zeros((5, len(v)))
    skin = part == SKIN
    index, t_rows = mesh.grid["index"], mesh.grid["t_rows"]
    reg[0, index[-1]] = 1.0  # bottom ring of the neck
    neck_row = int(np.argmin(np.abs(t_rows - 0.80)))
    reg[1, index[neck_row]] = 1.0
    # Jaw hinge: the skin vertices nearest to the left/right hinge targets (pairs are mirror images).
    hinge = np.array([0.070, ft.JAW_HINGE[1], ft.JAW_HINGE[2]])
    cand = np.where(skin & (np.abs(v[:, 0]) > 0.03))[0]
    for sign in (1.0, -1.0):
        d = np.linalg.norm(v[cand] - hinge * np.array([sign, 1, 1]), axis=1)
        reg[2, cand[np.argsort(d)[:4]]] = 1.0
    reg[3, part == EYE_L] = 1.0
    reg[4, part == EYE_R] = 1.0
    return reg / reg.sum(axis=1, keepdims=True)


def jaw_weight(mesh: HeadMesh) -> np.ndarray:
    """Jaw influence per vertex (V,) in [0, 1]."""
    x, y, z = mesh.vertices.T
    ax = np.abs(x)
    # Boundary line rising from the mouth line at the front to the hinge at the back.
    y_line = ft.MOUTH_Y + np.clip(0.062 - z, 0, None) * 0.40
    # Sharp at the lips, soft on the cheeks.
    soft = 0.0025 + 0.010 * np.clip((ax - 0.018) / 0.04, 0, 1)
    taper = np.clip(1 - (ax / (ft.MOUTH_HALF_WIDTH + 0.002)) ** 4, 0, 1)
    y_eff = y + mesh.lip_side * 0.006 * taper  # lip copies on the cut row: above/below the line
    a = 1 / (1 + np.exp(-(y_line - y_eff) / soft))
    b = _smoothstep((z + 0.055) / 0.035)
    c = _smoothstep((y + 0.135) / 0.04)
    cap = _smoothstep((0.02 - y) / 0.02)  # exactly zero from the eyes up (the sigmoid tails would leak)
    w = a * b * c * cap
    pocket = mesh.part == MOUTH
    w[pocket] = 0.5 - 0.5 * mesh.lip_side[pocket] * np.clip(taper[pocket] * 2, 0, 1)
    w[(mesh.part == EYE_L) | (mesh.part == EYE_R)] = 0.0
    return w


def skinning_weights(mesh: HeadMesh) -> np.ndarray:
    """(V, 5) weights, rows sum to one."""
    y = mesh.vertices[:, 1]
    root = _smoothstep((-0.125 - y) / 0.055)
    jaw = jaw_weight(mesh) * (1 - root)
    w = np.zeros((len(y), 5))
    w[:, 0] = root
    w[:, 2] = jaw
    w[:, 1] = 1 - root - jaw
    eyes = {3: mesh.part == EYE_L, 4: mesh.part == EYE_R}
    for j, sel in eyes.items():
        w[sel] = 0.0
        w[sel, j] = 1.0
    return w
