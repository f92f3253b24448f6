"""Neck base, shoulders and clothing: a torso surface that the FLAME neck sinks into.

Built from the shaped rest mesh: the torso's top rings sit just inside the bottom of the FLAME
neck and flare out below it to the shoulders (a superellipse cross-section that grows boxy
towards the shoulders), so the open rim of the neck is hidden. Above the neckline the torso is
skin (the appearance's skin colour), below it clothing. The torso hangs on FLAME's root joint
(it does not move with the neck pose). Segmentation class 3.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from next3d.synthetic.distributions import SynthDistributions, uniform
from next3d.synthetic.head import BODY
from next3d.synthetic.parts import Part, grid_faces, joint_weights

NECKLINES = ("crew", "v", "open")
ROWS, COLS = 36, 72


def sample_body(dist: SynthDistributions, rng: np.random.Generator) -> Dict:
    """Shoulder width, neckline and clothing colour (linear RGB), JSON-able."""
    kind = NECKLINES[int(rng.choice(3, p=np.asarray(dist.neckline_probs)))]
    hue, sat, val = rng.random(), rng.uniform(0.0, 0.75) ** 1.5, rng.uniform(0.08, 0.85)
    import colorsys

    rgb = np.array(colorsys.hsv_to_rgb(hue, sat, val)) ** 2.2
    return {"shoulder_half_width": uniform(rng, dist.shoulder_width_range), "neckline": kind,
            "clothing_rgb": [float(v) for v in rgb], "fold_seed": int(rng.integers(0, 2 ** 31 - 1))}


def body_part(rest_vertices: np.ndarray, skin_rgb, body: Dict) -> Part:
    """The torso Part for the shaped rest vertices (V, 3) of the FLAME mesh."""
    v = np.asarray(rest_vertices, np.float64)
    # The torso meets the neck this far above the bottom of the FLAME neck (whose lower part it hides).
    y_nb = float(v[:, 1].min()) + 0.045
    ring = v[np.abs(v[:, 1] - y_nb) < 0.006]
    rx = float(np.abs(ring[:, 0]).max())
    z_lo, z_hi = float(ring[:, 2].min()), float(ring[:, 2].max())
    cz, rz = 0.5 * (z_lo + z_hi), 0.5 * (z_hi - z_lo)
    w = body["shoulder_half_width"]
    # Profile: (dy below the neck bottom, half-width x, half-depth z, centre z shift, superellipse exponent).
    prof = np.array([
        (-0.03, 0.86 * rx, 0.86 * rz, 0.0, 2.0),
        (-0.004, 1.02 * rx + 0.002, 1.02 * rz + 0.002, 0.0, 2.0),
        (0.012, 1.25 * rx, 1.15 * rz, 0.004, 2.2),
        (0.035, 0.62 * w, 0.085, 0.01, 2.6),
        (0.062, 0.88 * w, 0.095, 0.012, 3.2),
        (0.10, w, 0.105, 0.015, 3.6),
        (0.40, 1.02 * w, 0.115, 0.02, 3.6)])
    t = np.linspace(0, 1, ROWS) ** 1.6
    dy = np.interp(t, np.linspace(0, 1, len(prof)) ** 1.6, prof[:, 0])
    cols = [np.interp(dy, prof[:, 0], prof[:, k]) for k in range(1, 5)]
    hx, hz, shift, expo = cols
    a = np.linspace(-np.pi, np.pi, COLS, endpoint=False)
    s, c = np.sin(a)[None], np.cos(a)[None]
    e = (2.0 / expo)[:, None]
    x = hx[:, None] * np.sign(s) * np.abs(s) ** e
    z = (cz + shift)[:, None] + hz[:, None] * np.sign(c) * np.abs(c) ** e
    y = np.broadcast_to((y_nb - dy)[:, None], x.shape)
    verts = np.stack([x, y, z], -1).reshape(-1, 3)
    faces = grid_faces(ROWS, COLS, wrap=True)
    # Neckline: clothing below it.
    front = np.clip(c, 0, 1)
    if body["neckline"] == "crew":
        line = y_nb - 0.008 - 0.012 * front ** 2
    elif body["neckline"] == "v":
        line = y_nb - 0.01 - 0.075 * front ** 10
    else:
        line = y_nb - 0.11 + 0.03 * np.abs(s) - 0.02 * front
    line = np.broadcast_to(line, x.shape)
    cloth = 1 / (1 + np.exp(-(line - y) / 0.0025))
    rng = np.random.default_rng(int(body["fold_seed"]))
    folds = 1 + 0.12 * np.sin(a[None] * rng.integers(3, 7) + rng.uniform(0, 6)) * np.clip(dy[:, None] / 0.1, 0, 1)
    cloth_rgb = np.asarray(body["clothing_rgb"])[None, None] * folds[..., None]
    skin = np.asarray(skin_rgb)[None, None] * 0.92
    albedo = (cloth[..., None] * cloth_rgb + (1 - cloth[..., None]) * skin).reshape(-1, 3)
    spec = (0.05 * (1 - cloth) + 0.02 * cloth).reshape(-1)
    f32 = lambda arr: torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float32)  # noqa: E731
    return Part("body", f32(verts), torch.as_tensor(faces), joint_weights(len(verts), 0), BODY,
                albedo=f32(albedo), specular=f32(spec), shininess=12.0)
