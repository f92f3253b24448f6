"""A tiny dependency-free preview: orthographic, flat-shaded z-buffer rendering to a PNG.

Used to look at the built-in head while developing it and in `next3d flame export
--preview`; not a renderer for training (see `next3d.render`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np


def _rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def render_preview(vertices: np.ndarray, faces: np.ndarray, yaw_deg: float = 0.0, size: int = 256,
                   extent: float = 0.17, center=(0.0, -0.03, 0.0)) -> np.ndarray:
    """Shade mesh (V, 3) / (F, 3) seen from +z after rotating by `yaw_deg` about y -> (size, size) uint8.

    Covers [-extent, extent] around `center` in x and y (metres). Back faces are drawn darker.
    """
    v = (np.asarray(vertices, np.float64) - np.asarray(center)) @ _rot_y(yaw_deg).T
    tri = v[np.asarray(faces)]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    light = np.array([0.3, 0.4, 1.0]) / np.linalg.norm([0.3, 0.4, 1.0])
    shade = np.where(normal[:, 2] >= 0, 0.25 + 0.75 * np.clip(normal @ light, 0, 1), 0.12)
    pix = (tri[..., :2] / extent * 0.5 + 0.5) * size  # x right, y up
    pix[..., 1] = size - pix[..., 1]
    zbuf = np.full((size, size), -np.inf)
    img = np.zeros((size, size))
    for f in np.argsort(tri[:, :, 2].mean(1)):  # any order works with the z-buffer
        p = pix[f]
        x0, y0 = np.floor(p.min(0)).astype(int)
        x1, y1 = np.ceil(p.max(0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, size - 1), min(y1, size - 1)
        if x1 < x0 or y1 < y0:
            continue
        xs, ys = np.meshgrid(np.arange(x0, x1 + 1) + 0.5, np.arange(y0, y1 + 1) + 0.5)
        (ax, ay), (bx, by), (cx, cy) = p
        den = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        if abs(den) < 1e-12:
            continue
        w0 = ((by - cy) * (xs - cx) + (cx - bx) * (ys - cy)) / den
        w1 = ((cy - ay) * (xs - cx) + (ax - cx) * (ys - cy)) / den
        w2 = 1 - w0 - w1
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9)
        z = w0 * tri[f, 0, 2] + w1 * tri[f, 1, 2] + w2 * tri[f, 2, 2]
        sub = zbuf[y0:y1 + 1, x0:x1 + 1]
        upd = inside & (z > sub)
        sub[upd] = z[upd]
        img[y0:y1 + 1, x0:x1 + 1][upd] = shade[f]
    return (img * 255).astype(np.uint8)


def save_preview(path: Union[str, Path], vertices, faces, yaws: Sequence[float] = (0, 90, 35), size: int = 256,
                 **kwargs) -> None:
    """Write views at the given yaws side by side as one PNG."""
    from PIL import Image

    views = [render_preview(vertices, faces, yaw, size, **kwargs) for yaw in yaws]
    Image.fromarray(np.concatenate(views, axis=1)).save(path)
