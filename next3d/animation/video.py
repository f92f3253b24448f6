"""`next3d video` as a library: seeds -> frames of a camera path, a latent path and an expression sweep.

Layout (as EG3D's `gen_videos.py`): a grid of W x H cells, each cell one identity. Without
interpolation there is one seed per cell (`len(seeds) == W * H`); with it, the seeds are
split into W * H consecutive groups of K keyframes each (`len(seeds) == W * H * K`) and
each cell loops through its group (`next3d.animation.latent_paths`). Every cell sees the
same camera path (`next3d.animation.trajectories`) and the same expression sweep
(`next3d.animation.expression_tracks`; none = the neutral face).

Instead of seeds, keyframe ws may be given directly (`ws`, e.g. an avatar's pivot latent) with
the FLAME parameters the sweep starts from (`base_flame`: the avatar's shape and neutral
expression/pose, to which the sweep's values are added).

Each output frame is the cells tiled row-major ((3, H·h, W·w) in ~[-1, 1]); with
`depth="beside"` every cell is its RGB image with the depth map to its right, with
`depth="only"` just the depth map (near = white, far = black over the renderer's depth
range, upsampled to the image size).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch

from torch_utils.misc import assert_shape
from next3d.animation.render_video import FrameOutput, FramePlan, RenderStats, RenderVideoOptions, render_frames
from next3d.animation.trajectories import TrajectoryConfig

DEPTH_MODES = ("none", "beside", "only")


class VideoError(ValueError):
    """Video settings that do not fit together (grid, seeds, frames)."""


def parse_grid(spec: Optional[str]) -> Optional[Tuple[int, int]]:
    """'2x2' -> (2, 2) as (columns, rows); None -> None. VideoError for anything else."""
    if spec is None or str(spec).strip() == "":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(spec))
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise VideoError(f"grid: cannot read {spec!r}; expected COLUMNSxROWS such as 2x2 or 4x1")
    return int(match.group(1)), int(match.group(2))


def auto_grid(cells: int) -> Tuple[int, int]:
    """The most square (columns, rows) with columns * rows == cells, columns >= rows."""
    rows = int(math.isqrt(cells))
    while cells % rows:
        rows -= 1
    return cells // rows, rows


@dataclass(frozen=True)
class VideoConfig:
    """Settings of one `next3d video` run."""

    frames: int = 120  # Frames of the video (one loop of the camera path / sweep / latent path).
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)  # Camera path of every cell.
    grid: Optional[Tuple[int, int]] = None  # (columns, rows); None = one cell per seed (interp: 1x1).
    interp: bool = False  # Interpolate each cell's latent through its seeds.
    interpolation: str = "cubic"  # cubic | linear (with interp).
    animate: Optional[str] = None  # jaw | smile | blink sweep, or None for the neutral face.
    animate_amount: Optional[float] = None  # Scale of the sweep (None = its default).
    depth: str = "none"  # none | beside | only.
    truncation_psi: float = 0.7  # Pull ws towards w_avg (1 = none).
    truncation_cutoff: Optional[int] = 14  # Truncate the first N ws.
    render: RenderVideoOptions = field(default_factory=RenderVideoOptions)  # Batch, noise, caches.

    def __post_init__(self):
        if self.frames < 1:
            raise VideoError(f"frames: expected at least 1, got {self.frames}")
        if self.depth not in DEPTH_MODES:
            raise VideoError(f"depth: expected one of {', '.join(DEPTH_MODES)}, got {self.depth!r}")


@dataclass(frozen=True)
class VideoLayout:
    """How plan frames map to output frames: plan index = frame * cells + cell (cell row-major)."""

    columns: int
    rows: int
    frames: int

    @property
    def cells(self) -> int:
        return self.columns * self.rows


def layout_for(num_seeds: int, config: VideoConfig) -> Tuple[VideoLayout, int]:
    """(layout, keyframes per cell) for `num_seeds` seeds; VideoError when they do not divide."""
    if num_seeds < 1:
        raise VideoError("seeds: none given")
    grid = config.grid
    if grid is None:
        grid = (1, 1) if config.interp else auto_grid(num_seeds)
    cells = grid[0] * grid[1]
    if num_seeds % cells:
        raise VideoError(f"{num_seeds} seed(s) do not fill a {grid[0]}x{grid[1]} grid evenly "
                         f"(give a multiple of {cells} seeds)")
    keyframes = num_seeds // cells
    if keyframes > 1 and not config.interp:
        raise VideoError(f"{num_seeds} seeds for {cells} grid cell(s): one seed per cell, or add --interp to "
                         f"move through {keyframes} seeds per cell")
    return VideoLayout(grid[0], grid[1], config.frames), keyframes


def _with_base(track: dict, base: Optional[dict], frames: int) -> dict:
    """Sweep values (N, k) plus the base FLAME parameters ((1, k) or (k,) per key; shape kept as is)."""
    if not base:
        return track
    out = dict(track)
    for key, value in base.items():
        v = value.reshape(1, -1).float().to(next(iter(track.values())).device)
        if key in out:
            pad = out[key].shape[1] - v.shape[1]
            out[key] = out[key] + torch.nn.functional.pad(v, (0, max(pad, 0)))[:, :out[key].shape[1]]
        else:
            out[key] = v.expand(frames, -1)
    return out


@torch.no_grad()
def build_video_plan(G: torch.nn.Module, seeds: Sequence[int], config: VideoConfig,
                     ws: Optional[torch.Tensor] = None,
                     base_flame: Optional[dict] = None) -> Tuple[FramePlan, VideoLayout]:
    """The FramePlan of a video (module docstring) and its layout.

    ws: keyframe ws (K, num_ws, w_dim) used instead of `seeds`; base_flame: FLAME parameters
    per key ((1, k) or (k,)) under the sweep, e.g. an avatar's shape and neutral.
    """
    from next3d.animation.expression_tracks import expression_track
    from next3d.animation.latent_paths import interpolate_ws, seed_ws
    from next3d.animation.render_video import head_meshes
    from next3d.animation.trajectories import trajectory_labels

    count = len(seeds) if ws is None else int(ws.shape[0])
    layout, keyframes = layout_for(count, config)
    n, cells = config.frames, layout.cells
    device = next(G.parameters()).device
    if ws is None:
        keys = seed_ws(G, list(seeds), config.truncation_psi, config.truncation_cutoff)  # (cells * K, ...)
    else:
        assert_shape(ws, [None, G.num_ws, G.w_dim], "keyframe ws")
        keys = ws.to(device).float()
    frame = torch.arange(n).repeat_interleave(cells)  # plan index -> output frame
    cell = torch.arange(cells).repeat(n)  # plan index -> cell
    if config.interp:
        ws = torch.cat([interpolate_ws(keys[c * keyframes:(c + 1) * keyframes], n, kind=config.interpolation)
                        for c in range(cells)])  # (cells * N, ...): cell-major
        ws_index = cell * n + frame
    else:
        ws = keys
        ws_index = cell
    if config.animate:
        track = expression_track(G.flame, config.animate, n, amount=config.animate_amount)
        vertices, landmarks = head_meshes(G, _with_base(track, base_flame, n))
        mesh_index = frame
    else:
        rest = {k: v.reshape(1, -1).float().to(device) for k, v in (base_flame or {}).items()}
        vertices, landmarks = G.head_mesh(rest or {"jaw": torch.zeros(1, 3, device=device)})
        mesh_index = torch.zeros_like(frame)
    r = G.config.render
    labels = trajectory_labels(config.trajectory, n, radius=r.avg_camera_radius, pivot=r.avg_camera_pivot,
                               device=device)
    plan = FramePlan(ws=ws, vertices=vertices, landmarks=landmarks, ws_index=ws_index, mesh_index=mesh_index,
                     cameras=labels[frame])
    return plan, layout


def depth_image(depth: torch.Tensor, size: Tuple[int, int], near: float, far: float) -> torch.Tensor:
    """Depth (1, R, R) -> (3, H, W) grey in [-1, 1] (near = white), bilinearly resized to `size`."""
    from next3d.image_io import depth_to_image

    grey = depth_to_image(depth, near=near, far=far)
    if tuple(grey.shape[-2:]) != tuple(size):
        grey = torch.nn.functional.interpolate(grey[None], size=size, mode="bilinear", align_corners=False)[0]
    return grey.expand(3, -1, -1)


def tile_cells(cells: List[FrameOutput], layout: VideoLayout, depth: str, depth_range: Tuple[float, float]):
    """Cells of one output frame (row-major) -> (3, rows·h, columns·w') in ~[-1, 1]."""
    pictures = []
    for out in cells:
        size = tuple(out.image.shape[-2:])
        if depth == "none":
            pictures.append(out.image)
            continue
        d = depth_image(out.depth, size, *depth_range)
        pictures.append(d if depth == "only" else torch.cat([out.image, d], dim=-1))
    rows = [torch.cat(pictures[r * layout.columns:(r + 1) * layout.columns], dim=-1) for r in range(layout.rows)]
    return torch.cat(rows, dim=-2)


def video_frames(G: torch.nn.Module, seeds: Sequence[int], config: VideoConfig,
                 on_progress: Optional[Callable[[int], None]] = None,
                 stats: Optional[RenderStats] = None, ws: Optional[torch.Tensor] = None,
                 base_flame: Optional[dict] = None) -> Iterator[torch.Tensor]:
    """Yield the output frames (3, H, W) float32 CPU in ~[-1, 1], in order (module docstring).

    on_progress(n) is called with the number of finished output frames after each one.
    ws / base_flame: keyframe ws instead of seeds, and the FLAME base (`build_video_plan`).
    """
    plan, layout = build_video_plan(G, seeds, config, ws=ws, base_flame=base_flame)
    render = config.render
    render = dataclasses.replace(render, depth=config.depth != "none",
                                 plane_cache=max(render.plane_cache, layout.cells),
                                 identity_cache=max(render.identity_cache, layout.cells))
    r = G.config.render
    pending: List[FrameOutput] = []
    for out in render_frames(G, plan, render, stats=stats):
        pending.append(out)
        if len(pending) == layout.cells:
            yield tile_cells(pending, layout, config.depth, (r.ray_start, r.ray_end))
            pending = []
            if on_progress is not None:
                on_progress(1)


__all__ = ["DEPTH_MODES", "VideoError", "VideoConfig", "VideoLayout", "parse_grid", "auto_grid", "layout_for",
           "build_video_plan", "depth_image", "tile_cells", "video_frames"]
