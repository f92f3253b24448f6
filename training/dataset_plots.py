"""Pictures of a data set, drawn with PIL: a contact sheet (images with the 68 landmarks and
the projected FLAME mesh outline) and a page of label histograms (pose and expression).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from training.dataset import ImageDataset, project_landmarks
from training.dataset_report import camera_angles

# iBUG 68 polylines: (first, last, closed).
LANDMARK_LINES = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
                  (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))
OUTLINE_COLOUR = (40, 255, 90)
LANDMARK_COLOUR = (255, 50, 40)
LINE_COLOUR = (255, 200, 40)


def mesh_outline(vertices_px: np.ndarray, faces: np.ndarray, size: int, scale: float) -> np.ndarray:
    """Silhouette edge (size, size) bool of a mesh projected to pixels (V, 2), drawn at
    `scale` times the image's pixel grid."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    tri = vertices_px[faces] * scale  # (F, 3, 2)
    finite = np.isfinite(tri).all(axis=(1, 2))
    for t in tri[finite]:
        draw.polygon([tuple(p) for p in t], fill=255)
    eroded = mask.filter(ImageFilter.MinFilter(3))
    return (np.asarray(mask) > 0) & ~(np.asarray(eroded) > 0)


def _item_vertices(ds: ImageDataset, item: dict, flame_layer) -> Optional[np.ndarray]:
    if "vertices" in item:
        return item["vertices"].numpy()
    if flame_layer is None:
        return None
    with torch.no_grad():
        out = flame_layer(**{k: v[None] for k, v in item["flame"].items()})
    return out.vertices[0].numpy()


def contact_sheet(ds: ImageDataset, indices: Sequence[int], flame_layer=None, faces: Optional[np.ndarray] = None,
                  tile: int = 256, columns: Optional[int] = None) -> Image.Image:
    """A grid of items, each upscaled to `tile` px with the projected mesh outline (green),
    the 68 landmarks (red dots, yellow iBUG polylines) and its index and camera yaw/pitch.

    flame_layer: the `next3d.flame.FLAME` of the set's head model (next3d layout); faces
    (F, 3) of the meshes (published layout). Without them, only landmarks are drawn.
    """
    indices = list(indices)
    columns = columns or max(1, int(math.ceil(math.sqrt(len(indices)))))
    rows = int(math.ceil(len(indices) / columns))
    sheet = Image.new("RGB", (columns * tile, rows * tile), (20, 20, 20))
    font = ImageFont.load_default()
    if faces is None and flame_layer is not None:
        faces = flame_layer.faces.cpu().numpy()
    for n, idx in enumerate(indices):
        item = ds[idx]
        r = ds.resolution
        scale = tile / r
        img = Image.fromarray(item["image"].permute(1, 2, 0).numpy()).resize((tile, tile), Image.BICUBIC)
        verts = _item_vertices(ds, item, flame_layer)
        if verts is not None and faces is not None:
            px = project_landmarks(verts, item["camera"].numpy(), r)
            edge = mesh_outline(px, faces, tile, scale)
            arr = np.array(img)
            arr[edge] = OUTLINE_COLOUR
            img = Image.fromarray(arr)
        draw = ImageDraw.Draw(img)
        lmk = item["landmarks_2d"].numpy() * scale
        for first, last, closed in LANDMARK_LINES:
            pts = [tuple(p) for p in lmk[first:last + 1]]
            draw.line(pts + ([pts[0]] if closed else []), fill=LINE_COLOUR, width=1)
        rad = max(1.0, tile / 200)
        for x, y in lmk:
            draw.ellipse([x - rad, y - rad, x + rad, y + rad], fill=LANDMARK_COLOUR)
        ang = camera_angles(item["camera"].numpy()[None])
        text = (f"#{idx}{' flip' if item.get('flipped') else ''} yaw {math.degrees(ang['yaw'][0]):+.0f} "
                f"pitch {math.degrees(ang['pitch'][0]):+.0f}")
        draw.rectangle([0, 0, tile, 12], fill=(0, 0, 0))
        draw.text((3, 1), text, fill=(255, 255, 255), font=font)
        sheet.paste(img, ((n % columns) * tile, (n // columns) * tile))
    return sheet


def _panel(draw: ImageDraw.ImageDraw, box, title: str, font) -> tuple:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(160, 160, 160))
    draw.text((x0 + 6, y0 + 4), title, fill=(0, 0, 0), font=font)
    return x0 + 40, y0 + 22, x1 - 10, y1 - 22  # plotting area


def _histogram(draw, box, values: np.ndarray, title: str, unit: str, font, bins: int = 30) -> None:
    ax0, ay0, ax1, ay1 = _panel(draw, box, title, font)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        draw.text((ax0, (ay0 + ay1) // 2), "no values", fill=(120, 120, 120), font=font)
        return
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    peak = max(1, int(counts.max()))
    width = (ax1 - ax0) / bins
    for k, c in enumerate(counts):
        top = ay1 - (ay1 - ay0) * c / peak
        draw.rectangle([ax0 + k * width, top, ax0 + (k + 1) * width - 1, ay1], fill=(70, 110, 190))
    draw.line([ax0, ay1, ax1, ay1], fill=(0, 0, 0))
    draw.line([ax0, ay0, ax0, ay1], fill=(0, 0, 0))
    draw.text((ax0 - 34, ay0 - 2), f"{peak}", fill=(0, 0, 0), font=font)
    draw.text((ax0 - 34, ay1 - 10), "0", fill=(0, 0, 0), font=font)
    draw.text((ax0, ay1 + 4), f"{lo:.3g}", fill=(0, 0, 0), font=font)
    draw.text((ax1 - 40, ay1 + 4), f"{hi:.3g} {unit}", fill=(0, 0, 0), font=font)
    draw.text((ax1 - 150, ay0), f"n={values.size} mean {values.mean():.3g} std {values.std():.3g}", fill=(0, 0, 0),
              font=font)


def _bars(draw, box, values: np.ndarray, title: str, font) -> None:
    ax0, ay0, ax1, ay1 = _panel(draw, box, title, font)
    if values.size == 0:
        draw.text((ax0, (ay0 + ay1) // 2), "no values", fill=(120, 120, 120), font=font)
        return
    peak = max(float(values.max()), 1e-9)
    width = (ax1 - ax0) / values.size
    for k, v in enumerate(values):
        top = ay1 - (ay1 - ay0) * v / peak
        draw.rectangle([ax0 + k * width, top, ax0 + (k + 1) * width - 1, ay1], fill=(190, 110, 70))
    draw.line([ax0, ay1, ax1, ay1], fill=(0, 0, 0))
    draw.text((ax0 - 34, ay0 - 2), f"{peak:.2g}", fill=(0, 0, 0), font=font)
    draw.text((ax0, ay1 + 4), "0", fill=(0, 0, 0), font=font)
    draw.text((ax1 - 30, ay1 + 4), f"{values.size - 1}", fill=(0, 0, 0), font=font)


def _scatter(draw, box, x: np.ndarray, y: np.ndarray, title: str, font) -> None:
    ax0, ay0, ax1, ay1 = _panel(draw, box, title, font)
    lim = max(1.0, float(np.abs(x).max()), float(np.abs(y).max())) if x.size else 1.0
    cx, cy = (ax0 + ax1) / 2, (ay0 + ay1) / 2
    sx, sy = (ax1 - ax0) / (2 * lim), (ay1 - ay0) / (2 * lim)
    draw.line([ax0, cy, ax1, cy], fill=(200, 200, 200))
    draw.line([cx, ay0, cx, ay1], fill=(200, 200, 200))
    for a, b in zip(x[:5000], y[:5000]):
        px, py = cx + a * sx, cy - b * sy
        draw.rectangle([px - 1, py - 1, px + 1, py + 1], fill=(40, 140, 60))
    draw.text((ax0, ay1 + 4), f"yaw -{lim:.0f}..{lim:.0f} deg", fill=(0, 0, 0), font=font)
    draw.text((ax0 - 34, ay0 - 2), f"+{lim:.0f}", fill=(0, 0, 0), font=font)


def stats_plot(arrays: Dict[str, np.ndarray], title: str = "", panel: int = 420) -> Image.Image:
    """A 3x2 page: yaw, pitch, jaw opening and pooled expression-coefficient histograms,
    the standard deviation per expression component and yaw against pitch.

    arrays: `training.dataset_report.label_arrays` (yaw, pitch, jaw in degrees; expression (N, E)).
    """
    w, h = 3 * panel, 2 * int(panel * 0.7) + 24
    page = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default()
    draw.text((6, 6), title, fill=(0, 0, 0), font=font)
    ph = int(panel * 0.7)
    boxes = [(c * panel + 4, 24 + r * ph + 2, (c + 1) * panel - 4, 24 + (r + 1) * ph - 2)
             for r in range(2) for c in range(3)]
    expr = np.asarray(arrays.get("expression", np.zeros((0, 0))))
    _histogram(draw, boxes[0], arrays["yaw"], "camera yaw", "deg", font)
    _histogram(draw, boxes[1], arrays["pitch"], "camera pitch", "deg", font)
    _scatter(draw, boxes[2], np.asarray(arrays["yaw"]), np.asarray(arrays["pitch"]), "yaw (x) against pitch (y)", font)
    _histogram(draw, boxes[3], arrays.get("jaw", np.zeros(0)), "jaw opening (rotation about x)", "deg", font)
    _histogram(draw, boxes[4], expr.reshape(-1), "expression coefficients (all components)", "", font)
    _bars(draw, boxes[5], expr.std(axis=0) if expr.size else np.zeros(0), "std per expression component", font)
    return page


def evenly_spaced(count: int, total: int) -> List[int]:
    """`count` indices spread over range(total) (all of them when count >= total)."""
    if count >= total:
        return list(range(total))
    return sorted({int(round(k * (total - 1) / max(1, count - 1))) for k in range(count)})


def save_png(image: Image.Image, path) -> None:
    """Write a PIL image atomically (temporary name in the same folder, then rename)."""
    import os
    from pathlib import Path

    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
