"""Reading and writing images: tensors in [-1, 1] <-> 8-bit PNG/JPEG files.

Image tensors are (3, H, W) or (B, 3, H, W) float in [-1, 1] (channels RGB); depth
tensors are (1, H, W) or (B, 1, H, W) in scene units. Writing is atomic (temporary file,
then rename) so an interrupted run never leaves a half-written image behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from next3d.atomic_io import atomic_path
from next3d.errors import Next3DError

PathLike = Union[str, Path]


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [-1, 1] -> (H, W, C) uint8 (C = 1 or 3)."""
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"image: expected (1 or 3, H, W), got {tuple(img.shape)}")
    arr = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return arr.permute(1, 2, 0).numpy()


class ImageFormatError(Next3DError, ValueError):
    """An image file name whose extension no installed writer handles."""


def image_format(path: PathLike) -> str:
    """The PIL format that writes `path` (by extension; no extension -> PNG); ImageFormatError otherwise."""
    suffix = Path(path).suffix.lower()
    if not suffix:
        return "PNG"
    Image.init()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        raise ImageFormatError(f"image {path}: cannot write '{suffix}' files; use .png (lossless) or .jpg")
    return fmt


def _atomic_save(pil: Image.Image, path: PathLike) -> None:
    path = Path(path)
    fmt = image_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if pil.mode not in ("RGB", "L") or (fmt == "JPEG" and pil.mode not in ("RGB", "L")):
        pil = pil.convert("RGB")
    with atomic_path(path) as tmp:
        pil.save(tmp, format=fmt)


def save_image(img: torch.Tensor, path: PathLike) -> None:
    """Write a (3, H, W) or (1, H, W) tensor in [-1, 1] as an 8-bit image (atomically: a
    temporary file in the same folder, then a rename). NaN or infinite pixels are refused
    (ValueError) instead of written as black."""
    if img.is_floating_point() and not bool(torch.isfinite(img).all()):
        raise ValueError(f"image {path}: holds NaN or infinite values; refusing to write it")
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
