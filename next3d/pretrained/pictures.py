"""The README's pictures of a network: a multi-view grid, an expression sweep and an orbit video.

    grid = multiview_grid(G, seeds=(0, 1, 2, 3), views=5, yaw_range=0.6)       # (H, W, 3) uint8
    sweep = expression_sweep(G, seed=0, steps=4)                               # (H, W, 3) uint8
    orbit_video(G, seeds=(0, 1), out="docs/builtin_orbit.mp4", frames=48)      # via next3d.animation
    shapes = mesh_views(G, seeds=(0, 1), views=5)                              # (H, W, 3) uint8

Grid: one row per seed, one column per view (yaws evenly over −yaw_range..+yaw_range at
pitch 0), rendered by `next3d.generate.generate` (seed conventions, frontal conditioning,
deterministic rays, truncation ψ 0.7 as `next3d generate`). Sweep: rows jaw (0 → 0.3 rad),
smile and blink (0 → the full direction of `next3d.animation.expression_tracks`), `steps`
columns each, frontal view, one identity. Orbit: `next3d video`'s orbit trajectory
(yaw ±0.35, pitch ±0.25 rad), one cell per seed, written by `VideoWriter` (temporary name,
then renamed). Shapes: per seed a row of its images and a row of its extracted mesh (the
iso-surface of `next3d generate --shapes`) rendered with grey Lambertian shading from the
same cameras. Images are 8-bit as saved PNGs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch

SWEEP_KINDS = ("jaw", "smile", "blink")


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [-1, 1] -> (H, W, 3) uint8."""
    return (image.detach().float().cpu().clamp(-1, 1) * 127.5 + 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


def multiview_grid(G: torch.nn.Module, seeds: Sequence[int], views: int = 5, yaw_range: float = 0.6,
                   truncation_psi: float = 0.7, batch: int = 4) -> np.ndarray:
    """Rows = seeds, columns = views -> (len(seeds) * H, views * W, 3) uint8."""
    from next3d.generate import GenerateOptions, generate

    options = GenerateOptions(views=views, yaw_range=yaw_range, truncation_psi=truncation_psi, batch=batch)
    rows = []
    for result in generate(G, list(seeds), None, options):
        rows.append(np.concatenate([_to_uint8(img) for img in result.images], axis=1))
    return np.concatenate(rows, axis=0)


@torch.no_grad()
def expression_sweep(G: torch.nn.Module, seed: int = 0, steps: int = 4, kinds: Sequence[str] = SWEEP_KINDS,
                     truncation_psi: float = 0.7) -> np.ndarray:
    """Rows = kinds (jaw, smile, blink), columns = amounts 0..full in `steps` -> (rows * H, steps * W, 3) uint8."""
    from next3d.animation.expression_tracks import DEFAULT_AMOUNTS, expression_direction
    from next3d.generate import deterministic_rays, frontal_label, seeds_to_z

    if steps < 2:
        raise ValueError(f"expression_sweep: steps must be at least 2, got {steps}")
    device = next(G.parameters()).device
    c = frontal_label(G, device=device)
    ws = G.mapping(seeds_to_z([seed], G.z_dim).to(device), c, truncation_psi=truncation_psi, truncation_cutoff=14)
    weights = torch.linspace(0.0, 1.0, steps)
    rows = []
    for kind in kinds:
        flame = {"jaw": torch.zeros(steps, 3, device=device), "expression": torch.zeros(steps, G.flame.num_expression,
                                                                                          device=device)}
        if kind == "jaw":
            flame["jaw"][:, 0] = weights.to(device) * DEFAULT_AMOUNTS["jaw"]
        else:
            flame["expression"] = (weights.to(device) * DEFAULT_AMOUNTS[kind])[:, None] * \
                expression_direction(G.flame, kind)[None]
        with deterministic_rays(G), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            out = G.synthesis(ws.expand(steps, -1, -1), c.expand(steps, -1), flame, noise_mode="const")
        rows.append(np.concatenate([_to_uint8(img) for img in out["image"]], axis=1))
    return np.concatenate(rows, axis=0)


def orbit_video(G: torch.nn.Module, seeds: Sequence[int], out: Union[str, Path], frames: int = 48,
                fps: float = 24.0, batch: int = 4) -> Path:
    """An orbit video of `seeds` side by side (`next3d video --trajectory orbit`) -> the written path."""
    from next3d.animation.render_video import RenderVideoOptions
    from next3d.animation.video import VideoConfig, video_frames
    from next3d.animation.video_writer import VideoWriter

    config = VideoConfig(frames=frames, grid=(len(seeds), 1), render=RenderVideoOptions(batch=batch))
    writer = VideoWriter(out, fps=fps)
    with writer:
        for frame in video_frames(G, list(seeds), config):
            writer.append(frame)
    return Path(out)


@torch.no_grad()
def mesh_views(G: torch.nn.Module, seeds: Sequence[int], views: int = 5, yaw_range: float = 0.6,
               level: Optional[float] = None, shape_res: int = 96, truncation_psi: float = 0.7) -> np.ndarray:
    """Per seed, a row of images and a row of its σ = `level` mesh (None = the seed's
    `next3d.generate.surface_level`, as `generate --shapes`) from the same views
    -> (2 * len(seeds) * H, views * W, 3) uint8."""
    from next3d.generate import GenerateOptions, generate, seed_mesh, view_labels, view_yaws
    from next3d.render.mesh_shading import render_mesh
    from next3d.render.triplane_coords import world_to_flame

    options = GenerateOptions(views=views, yaw_range=yaw_range, truncation_psi=truncation_psi, shapes=True,
                              shape_res=shape_res)
    device = next(G.parameters()).device
    labels = view_labels(G, view_yaws(views, yaw_range), 0.0, device)
    rows = []
    for result in generate(G, list(seeds), None, options):
        images = [_to_uint8(img) for img in result.images]
        size = images[0].shape[:2]
        grid = result.sigma_grid
        if level is None and result.surface_level is None:
            raise ValueError(f"mesh_views: seed {result.seed}: no rendered depth lies inside the box; pass a level")
        vertices, faces, used = seed_mesh(result, level)
        if len(faces) == 0:
            raise ValueError(f"mesh_views: seed {result.seed} has no surface at sigma = {used} "
                             f"(sigma spans {float(grid.min()):.3g} .. {float(grid.max()):.3g})")
        verts = world_to_flame(torch.from_numpy(vertices).float().to(device))
        shaded = render_mesh(verts[None].expand(views, -1, -1), torch.from_numpy(faces).to(device), labels,
                             size).shaded
        rows.append(np.concatenate(images, axis=1))
        rows.append(np.concatenate([_to_uint8(img) for img in shaded], axis=1))
    return np.concatenate(rows, axis=0)


def save_png(image: np.ndarray, path: Union[str, Path]) -> Path:
    """Write an (H, W, 3) uint8 image as PNG atomically (temporary name in the same folder, then rename)."""
    import io

    from PIL import Image

    from next3d.atomic_io import atomic_write_bytes

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", optimize=True)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


__all__ = ["SWEEP_KINDS", "multiview_grid", "expression_sweep", "orbit_video", "mesh_views", "save_png"]
