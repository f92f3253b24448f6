"""Reading and writing images: tensors in [-1, 1] <-> 8-bit PNG/JPEG files.

Image tensors are (3, H, W) or (B, 3, H, W) float in [-1, 1] (channels RGB); depth
tensors are (1, H, W) or (B, 1, H, W) in scene units. Writing is atomic (temporary file,
then rename) so an interrupted run never leaves a half-written image behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

PathLike = Union[str, Path]


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [-1, 1] -> (H, W, C) uint8 (C = 1 or 3)."""
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"image: expected (1 or 3, H, W), got {tuple(img.shape)}")
    arr = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return arr.permute(1, 2, 0).numpy()


def _atomic_save(pil: Image.Image, path: PathLike) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; give the file the permissions a plain open() would (umask applies).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        pil.save(tmp, format=None if path.suffix else "PNG")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_image(img: torch.Tensor, path: PathLike) -> None:
    """Write a (3, H, W) or (1, H, W) tensor in [-1, 1] as an 8-bit image."""
    arr = to_uint8(img)
    pil = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    _atomic_save(pil, path)


def depth_to_image(depth: torch.Tensor, near: Optional[float] = None, far: Optional[float] = None,
                   mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Depth (1, H, W) -> grey image (1, H, W) in [-1, 1], near = white, far = black.

    `near`/`far` default to the depth's own range (within `mask` where given).
    """
    if depth.ndim != 3 or depth.shape[0] != 1:
        raise ValueError(f"depth: expected (1, H, W), got {tuple(depth.shape)}")
    d = depth.detach().float()
    valid = torch.isfinite(d) if mask is None else (mask.bool() & torch.isfinite(d))
    if not bool(valid.any()):
        return torch.full_like(d, -1.0)
    lo = float(d[valid].min()) if near is None else near
    hi = float(d[valid].max()) if far is None else far
    scaled = 1.0 - (d - lo) / max(hi - lo, 1e-8)
    scaled = torch.where(valid, scaled.clamp(0, 1), torch.zeros_like(scaled))
    return scaled * 2 - 1


def tile_images(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Place (C, H, W) images side by side -> (C, H, sum W); sizes must agree in C and H."""
    if not images:
        raise ValueError("tile_images: no images given")
    return torch.cat([im.detach().float().cpu() for im in images], dim=-1)


def load_image(path: PathLike, size: Optional[int] = None) -> torch.Tensor:
    """Read an RGB image file -> (3, H, W) float in [-1, 1]; optionally resized to size x size.

    Raises FileNotFoundError / ValueError with the path for missing or unreadable files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as pil:
            pil.load()
            pil = pil.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"cannot read image {path}: not a valid image file ({exc})") from None
    if size is not None:
        pil = pil.resize((size, size), Image.LANCZOS)
    arr = torch.from_numpy(np.asarray(pil, dtype=np.uint8).copy()).permute(2, 0, 1).float()
    return arr / 127.5 - 1.0
