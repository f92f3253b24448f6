"""A hair volume outside the FLAME mesh, as its own mesh: bald, buzz, short, bob, long, or a knit cap.

The hair is a shell around the skull, parametrised by azimuth a around the vertical axis through
a head centre c (a = 0 faces +z) and elevation e seen from c. Its radius in each direction is the
head's radius there (the largest distance of the shaped rest mesh's skin vertices binned by
direction) plus a thickness. Styles with length (bob, long) fall straight down below the
temples (the horizontal distance from the axis is held), so they hang past the cheeks and the
neck. Each column of the grid ends on the style's boundary: the hairline over the forehead,
around the ears and at the nape (or at the ends of the hair), so the edge is smooth.

The shell hangs on FLAME's head (neck) joint; its UVs (a, row) index a per-item strand texture
whose streaks run down the columns; `tangent` is the strand direction (down the column).
Segmentation class 2.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

from next3d.synthetic.distributions import SynthDistributions, uniform
from next3d.synthetic.head import HAIR
from next3d.synthetic.parts import Part, grid_faces, joint_weights

STYLES = ("bald", "buzz", "short", "bob", "long", "cap")
THICKNESS = {"buzz": 0.0025, "short": 0.009, "bob": 0.013, "long": 0.014, "cap": 0.009}
N_COLS, N_ROWS, N_FINE = 96, 40, 140
A_BINS, E_BINS = 48, 36
ANCHORS_DEG = np.array([0.0, 35.0, 55.0, 75.0, 100.0, 130.0, 180.0])


def sample_hair(dist: SynthDistributions, rng: np.random.Generator, hair_colour_name: str, hair_rgb) -> Dict:
    """Style, colour (linear RGB), thickness, hairline, length, fringe, texture seed (JSON-able)."""
    names = list(dist.hair_style_probs)
    style = names[int(rng.choice(len(names), p=np.asarray([dist.hair_style_probs[n] for n in names])))]
    out = {"style": style, "colour": hair_colour_name, "rgb": [float(v) for v in hair_rgb],
           "thickness": uniform(rng, dist.hair_thickness_scale), "hairline": uniform(rng, dist.hairline_range),
           "fringe": bool(style in ("bob", "long") and rng.random() < dist.fringe_prob),
           "length": uniform(rng, dist.long_length_range), "bob_offset": uniform(rng, (-0.012, 0.025)),
           "texture_seed": int(rng.integers(0, 2 ** 31 - 1)), "shine": uniform(rng, (0.05, 0.3))}
    if style == "cap":  # a knit cap: a clothing-like colour
        import colorsys

        rgb = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.1, 0.8))) ** 2.2
        out["rgb"] = [float(v) for v in rgb]
        out["colour"] = "cap"
    return out


def _head_radius_grid(rest_vertices: np.ndarray, centre: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(E_BINS, A_BINS) largest skin distance from `centre` per direction bin (gaps filled, dilated)."""
    from scipy import ndimage

    d = rest_vertices[skin] - centre
    r = np.linalg.norm(d, axis=1)
    a = np.arctan2(d[:, 0], d[:, 2])
    e = np.arcsin(np.clip(d[:, 1] / np.maximum(r, 1e-9), -1, 1))
    ai = np.clip(((a + np.pi) / (2 * np.pi) * A_BINS).astype(int), 0, A_BINS - 1)
    ei = np.clip(((e + np.pi / 2) / np.pi * E_BINS).astype(int), 0, E_BINS - 1)
    grid = np.full((E_BINS, A_BINS), -1.0)
    np.maximum.at(grid, (ei, ai), r)
    for _ in range(E_BINS):
        empty = grid < 0
        if not empty.any():
            break
        grown = ndimage.grey_dilation(grid, size=(3, 3), mode="wrap")
        grid = np.where(empty, grown, grid)
    return ndimage.grey_dilation(grid, size=(3, 3), mode="wrap")


def _lookup(grid: np.ndarray, a: np.ndarray, e: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    ai = (a + np.pi) / (2 * np.pi) * A_BINS - 0.5
    ei = (e + np.pi / 2) / np.pi * E_BINS - 0.5
    padded = np.concatenate([grid[:, -2:], grid, grid[:, :2]], axis=1)
    return ndimage.map_coordinates(padded, [np.clip(ei, 0, E_BINS - 1), ai + 2], order=1, mode="nearest")


def _along(e_query: np.ndarray, e_grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of values (C, fine) given at the decreasing elevations e_grid (fine,)
    at e_query (C, Q), column by column."""
    pos = np.interp(-e_query, -e_grid, np.arange(len(e_grid), dtype=np.float64))
    k = np.clip(np.floor(pos).astype(int), 0, len(e_grid) - 2)
    w = pos - k
    return np.take_along_axis(values, k, 1) * (1 - w) + np.take_along_axis(values, k + 1, 1) * w


def _boundary(style: str, hair: Dict, L: np.ndarray) -> np.ndarray:
    """Lower edge y (FLAME metres) at ANCHORS_DEG of |a|."""
    brow = float(L[19, 1])
    hl = brow + 0.05 + hair["hairline"]
    ear_top, ear_mid = float(L[0, 1]) + 0.02, float(L[0, 1]) - 0.012
    nape = float(L[51, 1]) - 0.01
    if style in ("buzz", "short"):
        return np.array([hl, hl - 0.004, hl - 0.03, ear_mid, ear_top, nape + 0.01, nape])
    if style == "cap":
        low = brow + 0.026
        return np.array([low, low - 0.002, low - 0.012, ear_top - 0.008, ear_top - 0.004, nape + 0.03, nape + 0.03])
    end = float(L[8, 1]) + hair["bob_offset"] if style == "bob" else float(L[36, 1]) - hair["length"]
    front = brow + 0.013 if hair["fringe"] else hl
    return np.array([front, front - 0.004, min(hl - 0.03, front), end + 0.02, end, end, end])


def hair_part(rest_vertices: np.ndarray, skin_mask: np.ndarray, rest_landmarks: np.ndarray, hair: Dict,
              texture_size: int = 128) -> Optional[Part]:
    """The hair shell Part for the shaped rest vertices (V, 3); None for "bald"."""
    style = hair["style"]
    if style == "bald":
        return None
    L = np.asarray(rest_landmarks, np.float64)
    v = np.asarray(rest_vertices, np.float64)
    cy = float(L[27, 1]) + 0.02
    band = v[skin_mask & (np.abs(v[:, 1] - cy) < 0.01) & (np.abs(v[:, 0]) < 0.03)]
    centre = np.array([0.0, cy, 0.5 * (band[:, 2].max() + band[:, 2].min())])
    grid = _head_radius_grid(v, centre, skin_mask)

    a = np.linspace(-np.pi, np.pi, N_COLS, endpoint=False)
    e = np.radians(np.linspace(90.0, -85.0, N_FINE))
    A, E = np.meshgrid(a, e, indexing="ij")  # (C, fine)
    r_head = _lookup(grid, A.reshape(-1), E.reshape(-1)).reshape(A.shape)
    r_head[:, 0] = r_head[:, 0].mean()
    t0 = THICKNESS[style] * (hair["thickness"] if style != "cap" else 1.0)
    r = r_head + t0 * (1 + 0.35 * np.clip(np.sin(E), 0, 1))
    if style in ("bob", "long"):
        k = int(np.argmin(np.abs(E[0] - np.radians(5.0))))
        h0 = (r[:, k] * np.cos(E[:, k]))[:, None] * (1 + 0.05 * np.clip(np.radians(5.0) - E, 0, None))
        falling = E < np.radians(5.0)
        r = np.where(falling, np.maximum(r, h0 / np.maximum(np.cos(E), 1e-3)), r)
    y = centre[1] + r * np.sin(E)
    y_end = np.interp(np.degrees(np.abs(a)), ANCHORS_DEG, _boundary(style, hair, L))
    # Per column: the elevation where the shell reaches the boundary (y decreases along the column).
    k = np.clip((y > y_end[:, None]).sum(1) - 1, 0, N_FINE - 2)
    rows_c = np.arange(N_COLS)
    y0, y1 = y[rows_c, k], y[rows_c, k + 1]
    frac = np.clip((y0 - y_end) / np.maximum(y0 - y1, 1e-12), 0, 1)
    e_end = E[rows_c, k] + frac * (E[rows_c, k + 1] - E[rows_c, k])
    e_end = np.where(y[:, -1] > y_end, E[:, -1], e_end)  # never reaching the boundary: the lowest sample
    rows = np.linspace(0, 1, N_ROWS)
    E2 = np.radians(90.0) + (e_end[:, None] - np.radians(90.0)) * rows[None]  # (C, R)
    R2 = _along(E2, e, r)
    # Taper the edge onto the skin where the hair ends on the head (not where it hangs free).
    r_head2 = _along(E2, e, r_head)
    on_head = R2[:, -1:] < r_head2[:, -1:] + t0 * 2
    taper = 1 - np.clip((rows[None] - 0.85) / 0.15, 0, 1) ** 2 * 0.8
    R2 = np.where(on_head, r_head2 + (R2 - r_head2) * taper, R2)
    dirs = np.stack([np.cos(E2) * np.sin(a)[:, None], np.sin(E2), np.cos(E2) * np.cos(a)[:, None]], -1)
    pts = centre + dirs * R2[..., None]  # (C, R, 3)
    verts = np.transpose(pts, (1, 0, 2)).reshape(-1, 3)  # row-major grid: rows x columns
    faces = grid_faces(N_ROWS, N_COLS, wrap=True)
    # UVs per corner: u = column / N_COLS (the seam's wrapped corners get u = 1), v = row.
    col = faces % N_COLS
    row = faces // N_COLS
    wrap = (col.max(1, keepdims=True) == N_COLS - 1) & (col == 0)
    u = (col + wrap * N_COLS) / N_COLS
    vv = row / (N_ROWS - 1)
    uv = torch.as_tensor(np.stack([2 * u - 1, 2 * vv - 1], -1), dtype=torch.float32)
    tangent = np.gradient(pts, axis=1)
    tangent = tangent / (np.linalg.norm(tangent, axis=-1, keepdims=True) + 1e-12)
    tangent = np.transpose(tangent, (1, 0, 2)).reshape(-1, 3)
    f32 = lambda arr: torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float32)  # noqa: E731
    tex = hair_texture(hair, texture_size)
    spec = torch.full((len(verts),), float(hair["shine"]) * (0.3 if style == "cap" else 1.0))
    return Part("hair", f32(verts), torch.as_tensor(faces), joint_weights(len(verts), 1), HAIR, texture=tex,
                uv_corners=uv, specular=spec, shininess=8.0 if style == "cap" else 50.0,
                tangent=None if style == "cap" else f32(tangent), backface_dim=0.35)


def hair_texture(hair: Dict, size: int = 128) -> torch.Tensor:
    """(3, size // 2, 2 * size) linear RGB: streaks along v (down the strands), periodic in u."""
    gen = torch.Generator().manual_seed(int(hair["texture_seed"]))
    h, w = size // 2, 2 * size
    rgb = torch.tensor(hair["rgb"], dtype=torch.float32)[:, None, None]
    if hair["style"] == "cap":  # knit ribs
        u = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
        ribs = 0.8 + 0.2 * torch.sin(u / w * 2 * np.pi * 60) ** 2
        grain = 1 + 0.06 * torch.randn(1, h, w, generator=gen)
        return (rgb * ribs[None] * grain).clamp(0, 1)

    def periodic(cells_u, cells_v):
        g = torch.randn(1, 1, cells_v, cells_u, generator=gen)
        g = torch.cat([g, g[..., :3]], dim=-1)  # wrap for the periodic resample
        out = F.interpolate(g, size=(h, int(w * (cells_u + 3) / cells_u)), mode="bicubic", align_corners=False)
        return out[0, 0, :, :w]

    streaks = 0.6 * periodic(w // 2, 6) + 0.4 * periodic(w // 8, 4)
    clumps = periodic(12, 3)
    lum = (1 + 0.28 * streaks + 0.12 * clumps).clamp(0.3, 1.8)
    # Roots a little darker, tips a little lighter.
    grad = torch.linspace(0.9, 1.05, h)[:, None]
    return (rgb * lum[None] * grad[None]).clamp(0, 1)
