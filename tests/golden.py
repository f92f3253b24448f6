"""Golden images: small reference PNGs in tests/data/golden with a switch to regenerate them.

Set NEXT3D_REGENERATE_GOLDEN=1 to (re)write the references instead of comparing, then
look at the new PNGs before committing them.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from helpers import REPO

GOLDEN_DIR = REPO / "tests" / "data" / "golden"
REGENERATE = os.environ.get("NEXT3D_REGENERATE_GOLDEN", "") == "1"


def check_golden(name: str, image: torch.Tensor, max_mean_abs: float = 2.0, max_bad_fraction: float = 0.01,
                 bad_threshold: int = 24) -> None:
    """Compare an image (3, H, W) in [-1, 1] with tests/data/golden/<name>.png (8-bit).

    Passes when the mean absolute difference is at most `max_mean_abs` (in 0..255 units)
    and at most `max_bad_fraction` of the pixels differ by more than `bad_threshold`.
    """
    arr = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = arr.permute(1, 2, 0).numpy()
    path = GOLDEN_DIR / f"{name}.png"
    if REGENERATE:
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path)
        return
    assert path.is_file(), f"golden image {path} is missing: run with NEXT3D_REGENERATE_GOLDEN=1 to create it"
    ref = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
    assert ref.shape == arr.shape, f"{name}: golden is {ref.shape}, got {arr.shape}"
    diff = np.abs(ref - arr.astype(np.int16)).max(axis=-1)
    mean_abs = float(diff.mean())
    bad = float((diff > bad_threshold).mean())
    assert mean_abs <= max_mean_abs and bad <= max_bad_fraction, (
        f"{name}: differs from {path} (mean |diff| {mean_abs:.2f}, {bad:.2%} of pixels off by > {bad_threshold}); "
        f"if the change is intended, regenerate with NEXT3D_REGENERATE_GOLDEN=1 and look at the image")
