"""Fit overlays: the fitted mesh (shaded, half transparent, with its outline) and landmarks on the crop.

Colours: detected landmarks green, re-projected model landmarks red, a thin line joins each
pair; the mesh silhouette outline is yellow.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
from PIL import Image, ImageDraw

from next3d.flame.layer import FLAME
from next3d.render.mesh_shading import render_mesh
from torch_utils.misc import assert_shape


def draw_overlay(crop: np.ndarray, camera: torch.Tensor, flame_params: Dict[str, torch.Tensor], flame: FLAME,
                 detected: Optional[np.ndarray] = None, fitted: Optional[np.ndarray] = None,
                 alpha: float = 0.45) -> np.ndarray:
    """Overlay of one fit on its crop.

    Args:
        crop: (R, R, 3) uint8.
        camera: (25,) label of the fit.
        flame_params: FLAME.forward keyword arguments, (n,) or (1, n) tensors.
        flame: the FLAME layer.
        detected, fitted: optional (N, 2) landmark pixels (68, or a face mesh's points).
        alpha: opacity of the shaded mesh.
    Returns:
        (R, R, 3) uint8.
    """
    res = crop.shape[0]
    if crop.ndim != 3 or crop.shape[1] != res or crop.shape[2] != 3:
        raise ValueError(f"crop: expected (R, R, 3), got {crop.shape}")
    assert_shape(camera.reshape(-1), [25], "camera")
    params = {k: (v if v.ndim == 2 else v[None]).float() for k, v in flame_params.items()}
    from next3d.fitting.landmark_fit import torch_threads

    with torch.no_grad(), torch_threads(1):
        verts = flame(**params).vertices
        rend = render_mesh(verts, flame.faces, camera.reshape(1, 25).float(), res)
    mask = rend.mask[0, 0].numpy() > 0.5
    shade = ((rend.shaded[0].permute(1, 2, 0).numpy() + 1) * 127.5)
    out = crop.astype(np.float64)
    a = alpha * mask[..., None]
    out = out * (1 - a) + shade * a
    # Outline: mask pixels with a non-mask 4-neighbour.
    pad = np.pad(mask, 1)
    inner = pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    edge = mask & ~inner
    out[edge] = (255, 220, 0)
    img = Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    r = max(1.0, res / 256)
    if detected is not None and fitted is not None:
        for (x0, y0), (x1, y1) in zip(detected, fitted):
            draw.line([(x0, y0), (x1, y1)], fill=(255, 255, 255), width=1)
    for pts, colour in ((detected, (0, 230, 0)), (fitted, (255, 40, 40))):
        if pts is None:
            continue
        for x, y in np.asarray(pts, dtype=np.float64):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    return np.asarray(img)
