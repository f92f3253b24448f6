"""Backgrounds: flat colour, a two-colour gradient, or a soft texture (out-of-focus blobs).

`sample_background` draws a JSON-able dict; `background_image` renders it (linear RGB (3, S, S)),
a pure function of the dict (its noise comes from the dict's seed). Colours are mostly muted,
as walls, sky or foliage behind a portrait.
"""

from __future__ import annotations

import colorsys
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from next3d.synthetic.distributions import SynthDistributions

KINDS = ("flat", "gradient", "textured")


def _colour(rng: np.random.Generator) -> list:
    hue = rng.random()
    sat = rng.uniform(0, 1) ** 2 * 0.8
    val = rng.uniform(0.08, 0.95)
    return [float(c) ** 2.2 for c in colorsys.hsv_to_rgb(hue, sat, val)]


def sample_background(dist: SynthDistributions, rng: np.random.Generator) -> Dict:
    kind = KINDS[int(rng.choice(3, p=np.asarray(dist.background_kind_probs)))]
    return {"kind": kind, "colours": [_colour(rng) for _ in range(3)], "angle": float(rng.uniform(0, 2 * np.pi)),
            "cells": int(rng.integers(2, 7)), "blobs": int(rng.integers(0, 6)), "seed": int(rng.integers(0, 2 ** 31 - 1))}


def background_image(bg: Dict, size: int) -> torch.Tensor:
    """(3, size, size) linear RGB in [0, 1]."""
    cols = torch.tensor(bg["colours"], dtype=torch.float32)[:, :, None, None]  # (3 colours, 3, 1, 1)
    if bg["kind"] == "flat":
        return cols[0, :, 0, 0][:, None, None].expand(3, size, size).clone()
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    t = ((xx * np.cos(bg["angle"]) + yy * np.sin(bg["angle"])) * 0.5 + 0.5).clamp(0, 1)
    img = cols[0] * (1 - t) + cols[1] * t
    if bg["kind"] == "gradient":
        return img
    gen = torch.Generator().manual_seed(int(bg["seed"]))
    cells = int(bg["cells"])
    noise = F.interpolate(torch.randn(1, 2, cells, cells, generator=gen), size=(size, size), mode="bicubic",
                          align_corners=False)[0]
    m = torch.sigmoid(noise[0] * 2.0)
    img = img * (1 - m) + cols[2] * m
    img = img * (1 + 0.15 * noise[1])
    for _ in range(int(bg["blobs"])):  # soft out-of-focus discs
        cx, cy, rad, amp = torch.rand(4, generator=gen)
        d = ((xx - (cx * 2 - 1)) ** 2 + (yy - (cy * 2 - 1)) ** 2).sqrt()
        disc = torch.sigmoid((0.08 + 0.25 * rad - d) / 0.03)
        img = img * (1 - 0.5 * disc) + 0.5 * disc * (img * 1.6 + 0.1 * amp)
    return img.clamp(0, 1)
