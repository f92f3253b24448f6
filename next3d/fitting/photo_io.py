"""Reading photos for fitting: any common file -> (H, W, 3) uint8 RGB, upright, with clear errors.

* EXIF orientation is applied (a phone photo stored sideways comes out upright).
* Grey, palette, CMYK and alpha images become RGB (alpha is composited on white).
* 16-bit and 32-bit integer greyscale (PNG "I;16", "I") are scaled to 8 bits by their
  nominal range (65535 for 16-bit, the image's own maximum for 32-bit), never clipped.
* Unreadable, truncated, non-image, tiny (< `MIN_SIDE` px) and decompression-bomb-sized
  files raise `PhotoError` naming the file and what was wrong.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 32
MAX_PIXELS = 150_000_000  # checked from the header before decoding (PIL itself refuses 179 M)


class PhotoError(ValueError):
    """A photo that cannot be used; the message names the file and the reason."""


def _to_rgb(pil: Image.Image, what: str) -> np.ndarray:
    mode = pil.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(pil).astype(np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        if mode == "I" and top <= 65535 and arr.max() > 255:
            top = 65535.0  # PIL opens 16-bit PNGs as "I" in some versions
        elif mode == "I" and arr.max() <= 255:
            top = 255.0
        grey = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(pil).astype(np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        grey = np.clip(np.round((arr - lo) / max(hi - lo, 1e-12) * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(white, rgba)
    return np.asarray(pil.convert("RGB"), dtype=np.uint8).copy()


def read_photo(source: Union[str, Path, bytes], name: str = None) -> np.ndarray:
    """Read a photo -> (H, W, 3) uint8 RGB, EXIF orientation applied.

    Args:
        source: a file path, or the file's bytes (e.g. a zip member).
        name: how to name the photo in error messages (defaults to the path).
    Raises:
        PhotoError: missing, unreadable or non-image file, too small or too large.
    """
    what = name or str(source if not isinstance(source, bytes) else "<bytes>")
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.is_file():
            raise PhotoError(f"{what}: no such file")
        data = path.read_bytes()
    else:
        data = source
    if not data:
        raise PhotoError(f"{what}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as pil:
                if pil.size[0] * pil.size[1] > MAX_PIXELS:
                    raise Image.DecompressionBombError("too many pixels")
                pil.load()
                pil = ImageOps.exif_transpose(pil)
                rgb = _to_rgb(pil, what)
    except Image.DecompressionBombError:
        raise PhotoError(f"{what}: image too large (more than {MAX_PIXELS:,} pixels)") from None
    except UnidentifiedImageError:
        raise PhotoError(f"{what}: not an image file (no image format recognised)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(f"{what}: not a readable image file ({type(exc).__name__}: {exc})") from None
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise PhotoError(f"{what}: image too small ({w}x{h} px; at least {MIN_SIDE} px a side is needed)")
    return rgb
