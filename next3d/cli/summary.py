"""The closing line of the commands that write images or videos (generate, video, reenact):
what was written, how big, by which network, on which device, how fast."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


def network_phrase(G) -> str:
    """'by builtin (demo, 120.0 kimg)' (see `next3d.generate.describe_network`)."""
    from next3d.generate import describe_network

    return f"by {describe_network(G)}"


def video_line(writer, out_path, frames_dir: bool, details: str, G, device: str, elapsed: float,
               render_s: Optional[float] = None) -> str:
    """'wrote OUT: N frames of WxH at F fps (D s of video), DETAILS, by NETWORK on DEVICE in T s (R frames/s)'."""
    h, w = writer.size
    what = f"{writer.count} PNG frames in {Path(out_path)}" if frames_dir else f"{Path(out_path)}"
    speed = "" if render_s is None else f" ({writer.count / max(render_s, 1e-9):.2f} frames/s)"
    return (f"wrote {what}: {writer.count} frames of {w}x{h} at {writer.fps:g} fps "
            f"({writer.count / writer.fps:.1f} s of video), {details}, {network_phrase(G)} on {device} "
            f"in {elapsed:.1f} s{speed}")
