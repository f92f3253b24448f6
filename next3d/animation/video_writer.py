"""Writing videos: MP4 (H.264, yuv420p) through imageio's ffmpeg, or a folder of PNG frames.

    with VideoWriter("out.mp4", fps=30) as writer:     # or frames_dir=True: a folder of PNGs
        for frame in frames:                             # (3, H, W) float in [-1, 1] or (H, W, 3) uint8
            writer.append(frame)

* MP4: H.264 (`libx264`), pixel format yuv420p (what players expect), which needs even
  width and height: odd sizes are padded by one replicated row / column (never resized).
  The encoder is the ffmpeg binary bundled with `imageio-ffmpeg` (the `video` extra:
  `pip install next3d[video]`); nothing else is looked up.
* Frames folder: `frame_000000.png`, `frame_000001.png`, ... (frame i = file i, 0-based).
* Atomic: everything is written under a temporary name in the destination's folder
  (`.NAME.partial-PID.mp4` / `.NAME.partial-PID/`) and renamed to the final name only
  when the writer closes without an error; an interrupted or failed render removes the
  temporary file and never leaves a broken file under the final name. An existing final
  file is replaced; an existing final folder must be empty (it is never merged into).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch

from next3d.atomic_io import CommitOnSuccess

PathLike = Union[str, Path]
FRAME_PATTERN = "frame_{:06d}.png"
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")


class VideoWriterError(ValueError):
    """A video cannot be written (missing encoder, bad destination, inconsistent frames)."""


def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's bundled ffmpeg; VideoWriterError without the `video` extra."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VideoWriterError("writing MP4 needs imageio and imageio-ffmpeg (pip install 'next3d[video]'), "
                               "or use --frames-dir for PNG frames") from None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise VideoWriterError(f"imageio-ffmpeg has no usable ffmpeg binary ({exc})") from None


def frame_to_uint8(frame: Union[torch.Tensor, np.ndarray]) -> np.ndarray:
    """(3, H, W) float tensor in [-1, 1] or (H, W, 3) uint8 array -> (H, W, 3) uint8, C-contiguous."""
    if isinstance(frame, torch.Tensor):
        from next3d.image_io import to_uint8

        if frame.ndim != 3 or frame.shape[0] not in (1, 3):
            raise VideoWriterError(f"frame: expected (3, H, W) in [-1, 1], got {tuple(frame.shape)}")
        arr = to_uint8(frame)
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        return np.ascontiguousarray(arr)
    arr = np.asarray(frame)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise VideoWriterError(f"frame: expected (H, W, 3) uint8, got {arr.shape} {arr.dtype}")
    return np.ascontiguousarray(arr)


def pad_even(arr: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H + H % 2, W + W % 2, 3): replicate the last row / column where a size is odd."""
    h, w = arr.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return arr
    return np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class VideoWriter(CommitOnSuccess):
    """Append frames, then close (or leave the `with` block) to publish the file (module docstring).

    path: the MP4 file, or the folder of PNG frames when `frames_dir`.
    fps: frames per second (stored in the MP4; kept as `fps` for a frames folder).
    quality: imageio's 0..10 scale for H.264 (8 = visually lossless for most heads).
    """

    def __init__(self, path: PathLike, fps: float = 30.0, frames_dir: bool = False, quality: float = 8.0):
        self.path = Path(path)
        self.fps = float(fps)
        self.frames_dir = bool(frames_dir)
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise VideoWriterError(f"fps: expected a positive number, got {fps}")
        parent = self.path.parent
        if not parent.is_dir():
            raise VideoWriterError(f"{self.path}: the folder {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise VideoWriterError(f"{self.path}: the folder {parent} is not writable")
        if self.frames_dir:
            if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
                raise VideoWriterError(f"--frames-dir {self.path}: exists and is not an empty folder")
        else:
            if self.path.suffix.lower() not in VIDEO_SUFFIXES:
                raise VideoWriterError(f"{self.path}: expected a video file name ending in "
                                       f"{', '.join(VIDEO_SUFFIXES)} (or use --frames-dir for PNG frames)")
            if self.path.is_dir():
                raise VideoWriterError(f"{self.path}: is a folder, expected a video file name")
            ffmpeg_exe()
        self.tmp = parent / f".{self.path.stem}.partial-{os.getpid()}{'' if self.frames_dir else self.path.suffix}"
        self.quality = quality
        self.count = 0
        self.size: Optional[tuple] = None  # (H, W) as written (even for MP4)
        self._writer = None
        self._closed = False
        self.written: List[Path] = []

    # ------------------------------------------------------------------ writing

    def _open(self):
        if self.frames_dir:
            self.tmp.mkdir(parents=False, exist_ok=False)
            return
        import imageio.v2 as imageio

        self._writer = imageio.get_writer(str(self.tmp), format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                                          pixelformat="yuv420p", quality=self.quality, macro_block_size=1,
                                          ffmpeg_log_level="error")

    def append(self, frame: Union[torch.Tensor, np.ndarray]) -> None:
        """Add one frame: (3, H, W) float in [-1, 1] or (H, W, 3) uint8; every frame the same size."""
        if self._closed:
            raise VideoWriterError(f"{self.path}: the writer is closed")
        arr = frame_to_uint8(frame)
        if not self.frames_dir:
            arr = pad_even(arr)
        if self.size is None:
            self.size = arr.shape[:2]
            self._open()
        elif arr.shape[:2] != self.size:
            raise VideoWriterError(f"{self.path}: frame {self.count} is {arr.shape[1]}x{arr.shape[0]}, "
                                   f"earlier frames {self.size[1]}x{self.size[0]}")
        if self.frames_dir:
            from PIL import Image

            Image.fromarray(arr).save(self.tmp / FRAME_PATTERN.format(self.count), format="PNG")
        else:
            self._writer.append_data(arr)
        self.count += 1

    def close(self) -> Path:
        """Finish the file and move it to its final name. No frames -> VideoWriterError, nothing written."""
        if self._closed:
            return self.path
        if self.count == 0:
            self.abort()
            raise VideoWriterError(f"{self.path}: no frames to write")
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.frames_dir:
            if self.path.is_dir():
                self.path.rmdir()  # empty (checked at the start); a folder cannot be renamed over a folder
        os.replace(self.tmp, self.path)
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Drop everything written so far (the final name is never touched)."""
        self._closed = True
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - the encoder may already be gone; the file is removed anyway
                pass
            self._writer = None
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            self.tmp.unlink()



def read_video(path: PathLike, max_frames: Optional[int] = None):
    """Decode a video with the bundled ffmpeg -> (frames (N, H, W, 3) uint8, meta dict).

    meta holds ffmpeg's `fps`, `size` (W, H), `pix_fmt`, `codec` and `duration`.
    Raises VideoWriterError for files ffmpeg cannot read.
    """
    ffmpeg_exe()
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise VideoWriterError(f"video {path}: no such file")
    frames = []
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
        w, h = meta["size"]
        for raw in reader:
            frames.append(np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3))
            if max_frames is not None and len(frames) >= max_frames:
                reader.close()
                break
    except (OSError, RuntimeError, StopIteration, KeyError, ValueError) as exc:
        msg = str(exc).strip().splitlines()
        raise VideoWriterError(f"video {path}: ffmpeg cannot read it ({msg[-1] if msg else type(exc).__name__})") \
            from None
    if not frames:
        raise VideoWriterError(f"video {path}: holds no frames")
    return np.stack(frames), dict(meta)


__all__ = ["VideoWriterError", "VideoWriter", "FRAME_PATTERN", "ffmpeg_exe", "frame_to_uint8", "pad_even",
           "read_video"]
