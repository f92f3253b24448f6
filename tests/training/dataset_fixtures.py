"""Small data sets rendered with the FLAME layer for the dataset tests (importable helpers)."""

from __future__ import annotations

import numpy as np
import torch

from next3d.render.cameras import orbit_label
from training.dataset import project_landmarks


def closed_components(op, threshold: float = 1e-3):
    """Indices of shape / expression components that mirror exactly within the basis."""
    return (np.flatnonzero(op.residual_shape < threshold), np.flatnonzero(op.residual_expression < threshold))


def sample_items(flame_layer, count: int, resolution: int, seed: int = 0, shape_ids=None, expr_ids=None):
    """Random FLAME parameters and cameras, their projected landmarks, and simple images
    (a face-coloured disk around the landmarks on a gradient). Returns a list of dicts."""
    rng = np.random.RandomState(seed)
    items = []
    for i in range(count):
        shape = np.zeros(flame_layer.num_shape, np.float32)
        expr = np.zeros(flame_layer.num_expression, np.float32)
        s_ids = np.arange(flame_layer.num_shape) if shape_ids is None else shape_ids
        e_ids = np.arange(flame_layer.num_expression) if expr_ids is None else expr_ids
        shape[s_ids] = rng.randn(len(s_ids)) * 0.8
        expr[e_ids] = rng.randn(len(e_ids)) * 0.6
        flame = {"shape": shape, "expression": expr,
                 "neck": (rng.randn(3) * [0.1, 0.2, 0.05]).astype(np.float32),
                 "jaw": np.array([abs(rng.randn()) * 0.15, rng.randn() * 0.02, rng.randn() * 0.02], np.float32),
                 "left_eye": (rng.randn(3) * 0.1).astype(np.float32),
                 "right_eye": (rng.randn(3) * 0.1).astype(np.float32)}
        camera = orbit_label(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.2, 0.2)))[0].numpy()
        with torch.no_grad():
            out = flame_layer(**{k: torch.from_numpy(v)[None] for k, v in flame.items()})
        lmk = project_landmarks(out.landmarks[0].numpy(), camera, resolution)
        yy, xx = np.mgrid[0:resolution, 0:resolution] + 0.5
        img = np.zeros((resolution, resolution, 3), np.uint8)
        img[..., 0] = (40 + 100 * yy / resolution).astype(np.uint8)
        img[..., 2] = (30 + 120 * xx / resolution).astype(np.uint8) + i
        centre, radius = lmk.mean(0), np.ptp(lmk, axis=0).max() * 0.6
        inside = (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 < radius ** 2
        img[inside] = (200, 160, 130)
        items.append({"image": img, "camera": camera, "flame": flame, "landmarks_2d": lmk,
                      "vertices": out.vertices[0].numpy()})
    return items
