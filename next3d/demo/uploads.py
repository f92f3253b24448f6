"""Checks of uploaded files before the demo reads them.

Gradio stores an upload in its own upload folder under the system's temporary directory
(`$GRADIO_TEMP_DIR`, else `<tmp>/gradio`) after enforcing the server's `max_file_size`;
the demo only reads it from there, checks its size again, and never copies it anywhere
else. Messages name the file by its base name only (never the server's folders).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch

from next3d.demo.controls import DemoError

DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def parse_size(text: Union[str, int]) -> int:
    """'10mb' / '512kb' / '2gb' / 1000 -> bytes. Raises DemoError on anything else."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise DemoError(f"max upload size: expected a positive size, got {text}")
        return text
    s = str(text).strip().lower()
    units = {"gb": 1024 ** 3, "mb": 1024 ** 2, "kb": 1024, "b": 1}
    for unit, factor in units.items():
        if s.endswith(unit):
            number = s[:-len(unit)].strip()
            try:
                value = float(number)
            except ValueError:
                break
            if value <= 0:
                break
            return int(value * factor)
    raise DemoError(f"max upload size: cannot read {text!r}; expected e.g. 10mb, 512kb or a byte count")


def uploaded_file(path: Optional[Union[str, Path]], what: str, max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> Path:
    """The uploaded file's path after checking it exists and is at most `max_bytes`."""
    if path is None or str(path) == "":
        raise DemoError(f"{what}: no file uploaded")
    p = Path(path)
    if not p.is_file():
        raise DemoError(f"{what} {p.name}: the upload is gone (upload it again)")
    size = p.stat().st_size
    if size > max_bytes:
        raise DemoError(f"{what} {p.name}: {size / 1e6:.1f} MB is larger than the limit of {max_bytes / 1e6:.1f} MB")
    if size == 0:
        raise DemoError(f"{what} {p.name}: the file is empty")
    return p


def read_uploaded_image(path: Optional[Union[str, Path]], max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                        what: str = "photo") -> torch.Tensor:
    """An uploaded image -> (3, H, W) float in [-1, 1]. Non-images are a DemoError naming the file."""
    from next3d.image_io import load_image

    p = uploaded_file(path, what, max_bytes)
    try:
        return load_image(p)
    except (ValueError, OSError):
        raise DemoError(f"{what} {p.name}: not an image this demo can read (expected PNG, JPEG, WebP or BMP)") from None


__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "IMAGE_SUFFIXES", "parse_size", "uploaded_file", "read_uploaded_image"]
