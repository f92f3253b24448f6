"""`next3d reenact` as a library: an identity (seed or avatar file) driven by a driving sequence.

Frame i of the output uses driver frame i exactly (no off-by-one, no mirrored frames:
`next3d.animation.drivers`). Per frame:

* FLAME input
  - parameter drivers (files, tracked videos): the identity's own shape with the driver's
    expression, jaw, neck and eyes — absolute, or with `relative` the driver's change from
    its first frame added to the identity's neutral (`next3d.animation.relative`);
  - mesh drivers: the driver's meshes as they are (absolute: the driver's identity comes
    along), or with `relative` the identity's neutral mesh plus the per-vertex change
    from the driver's first frame.
* camera (`camera`): `fixed` = the identity's camera (an avatar's photo camera, else the
  frontal camera of the orbit); `orbit` = the orbit path over the video; `driver` = the
  driver's per-frame cameras (files with `camera`, tracked videos, mesh folders with
  `dataset_mead.json`).
* Identity-only work (texture, static tri-plane) runs once; per frame only rasterisation,
  mouth, blending and rendering (`next3d.animation.render_video`); consecutive frames with
  equal meshes share their planes.

With `side_by_side`, each output frame is [driver | avatar]: the driving video's frame, or
for files and mesh folders a shaded rendering of the driver's mesh under the frame's
camera (`next3d.render.mesh_shading.render_mesh`), both at the avatar's image size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import torch

from next3d.animation.drivers import DriverSequence
from next3d.animation.render_video import FramePlan, RenderStats, RenderVideoOptions, dedupe_meshes, head_meshes, \
    render_frames
from next3d.animation.trajectories import TrajectoryConfig

CAMERA_MODES = ("fixed", "orbit", "driver")


class ReenactError(ValueError):
    """Reenactment settings that do not fit the driver or the identity."""


@dataclass(frozen=True)
class Identity:
    """Who is driven: ws (num_ws, w_dim), FLAME shape (S,), neutral per key (k,), camera (25,) or None."""

    ws: torch.Tensor
    shape: torch.Tensor
    neutral: Dict[str, torch.Tensor] = field(default_factory=dict)
    camera: Optional[torch.Tensor] = None
    name: str = ""


@dataclass(frozen=True)
class ReenactConfig:
    """Settings of one `next3d reenact` run."""

    camera: str = "fixed"  # fixed | orbit | driver (module docstring).
    relative: bool = False  # Transfer the driver's change from its first frame onto the identity's neutral.
    side_by_side: bool = False  # Output [driver | avatar].
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)  # Path for camera="orbit".
    render: RenderVideoOptions = field(default_factory=RenderVideoOptions)  # Batch, noise, caches.

    def __post_init__(self):
        if self.camera not in CAMERA_MODES:
            raise ReenactError(f"camera: expected one of {', '.join(CAMERA_MODES)}, got {self.camera!r}")


@torch.no_grad()
def seed_identity(G: torch.nn.Module, seed: int, truncation_psi: float = 0.7,
                  truncation_cutoff: Optional[int] = 14) -> Identity:
    """A seed as an identity: its ws, zero shape and neutral, no camera (the frontal one is used)."""
    from next3d.animation.latent_paths import seed_ws

    ws = seed_ws(G, [int(seed)], truncation_psi, truncation_cutoff)[0].cpu()
    return Identity(ws=ws, shape=torch.zeros(G.flame.num_shape), name=f"seed {seed}")


def avatar_identity(avatar) -> Identity:
    """An `next3d.animation.avatar.Avatar` as an identity."""
    return Identity(ws=avatar.ws, shape=avatar.shape, neutral=dict(avatar.neutral), camera=avatar.camera,
                    name=str(avatar.path))


def _full_neutral(identity: Identity, num_expression: int) -> Dict[str, torch.Tensor]:
    out = {"expression": torch.zeros(num_expression)}
    for key in ("jaw", "neck", "left_eye", "right_eye"):
        out[key] = torch.zeros(3)
    for key, value in identity.neutral.items():
        v = value.reshape(-1).float()
        if key == "expression":
            v = torch.nn.functional.pad(v, (0, num_expression - v.shape[0]))
        out[key] = v
    return out


def frame_params(G: torch.nn.Module, identity: Identity, driver: DriverSequence,
                 relative: bool) -> Dict[str, torch.Tensor]:
    """Per-frame FLAME parameters (N, k) of the driven identity (parameter drivers only)."""
    from next3d.animation.relative import relative_params

    if driver.params is None:
        raise ReenactError("frame_params: the driver has meshes, not FLAME parameters")
    n, num_e = driver.num_frames, G.flame.num_expression
    drv = {k: v.float() for k, v in driver.params.items()}
    drv["expression"] = torch.nn.functional.pad(drv["expression"], (0, num_e - drv["expression"].shape[1]))
    neutral = _full_neutral(identity, num_e)
    params = relative_params(drv, neutral) if relative else drv
    params = dict(params)
    params["shape"] = identity.shape.reshape(1, -1).float().expand(n, -1)
    return params


def frame_meshes(G: torch.nn.Module, identity: Identity, driver: DriverSequence,
                 relative: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-frame vertices (N, V, 3) and landmarks (N, 68, 3) of the driven identity, on G's device."""
    from next3d.animation.relative import relative_vertices

    device = next(G.parameters()).device
    if driver.params is not None:
        return head_meshes(G, frame_params(G, identity, driver, relative))
    vertices, landmarks = driver.vertices.to(device), driver.landmarks.to(device)
    if not relative:
        return vertices, landmarks
    neutral = _full_neutral(identity, G.flame.num_expression)
    base = {k: v[None].to(device) for k, v in neutral.items()}
    base["shape"] = identity.shape.reshape(1, -1).to(device)
    nv, nl = G.head_mesh(base)
    return relative_vertices(vertices, landmarks, nv[0], nl[0])


def frame_cameras(G: torch.nn.Module, identity: Identity, driver: DriverSequence,
                  config: ReenactConfig) -> torch.Tensor:
    """Per-frame camera labels (N, 25) for config.camera (module docstring)."""
    from next3d.animation.trajectories import trajectory_labels
    from next3d.generate import frontal_label

    n = driver.num_frames
    r = G.config.render
    if config.camera == "driver":
        if driver.cameras is None:
            raise ReenactError("--camera driver: the driver has no cameras (a FLAME sequence needs 'camera' "
                               "(N, 25); a mesh folder a dataset_mead.json)")
        return driver.cameras.float()
    if config.camera == "orbit":
        return trajectory_labels(config.trajectory, n, radius=r.avg_camera_radius, pivot=r.avg_camera_pivot)
    cam = identity.camera.reshape(1, 25).float() if identity.camera is not None else frontal_label(G)
    return cam.expand(n, -1).clone()


@torch.no_grad()
def build_reenact_plan(G: torch.nn.Module, identity: Identity, driver: DriverSequence,
                       config: ReenactConfig) -> FramePlan:
    """The FramePlan of a reenactment: one ws row, deduplicated meshes, driver frame i -> output frame i."""
    if driver.num_frames < 1:
        raise ReenactError("the driver has no frames")
    driver.check_head(G.flame.num_vertices, G.flame.num_expression, G.flame.num_shape)
    if tuple(identity.ws.shape) != (G.num_ws, G.w_dim):
        raise ReenactError(f"identity ws has shape {tuple(identity.ws.shape)}, expected ({G.num_ws}, {G.w_dim})")
    device = next(G.parameters()).device
    vertices, landmarks = frame_meshes(G, identity, driver, config.relative)
    table_v, table_l, mesh_index = dedupe_meshes(vertices, landmarks)
    n = driver.num_frames
    return FramePlan(ws=identity.ws[None].to(device), vertices=table_v, landmarks=table_l,
                     ws_index=torch.zeros(n, dtype=torch.long), mesh_index=mesh_index,
                     cameras=frame_cameras(G, identity, driver, config).to(device))


def _resize_image(img: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    return torch.nn.functional.interpolate(img[None], size=size, mode="bilinear", align_corners=False,
                                           antialias=True)[0]


@torch.no_grad()
def driver_pictures(G: torch.nn.Module, driver: DriverSequence, cameras: torch.Tensor, lo: int, hi: int,
                    size: Tuple[int, int]) -> torch.Tensor:
    """Driver frames lo..hi-1 as images (B, 3, H, W) in [-1, 1]: video frames, else shaded driver meshes."""
    if driver.images is not None:
        frames = torch.from_numpy(np.ascontiguousarray(driver.images[lo:hi])).permute(0, 3, 1, 2).float()
        return torch.stack([_resize_image(f / 127.5 - 1.0, size) for f in frames])
    from next3d.render.mesh_shading import render_mesh

    device = next(G.parameters()).device
    if driver.vertices is not None:
        vertices = driver.vertices[lo:hi].to(device)
    else:
        params = {k: v[lo:hi] for k, v in driver.params.items()}
        if driver.shape is not None:
            params["shape"] = driver.shape.reshape(1, -1).expand(hi - lo, -1)
        vertices, _ = head_meshes(G, params)
    shaded = render_mesh(vertices, G.flame.faces, cameras[lo:hi].to(device), image_size=size).shaded
    return shaded.float().cpu()


def reenact_frames(G: torch.nn.Module, identity: Identity, driver: DriverSequence, config: ReenactConfig,
                   on_progress: Optional[Callable[[int], None]] = None,
                   stats: Optional[RenderStats] = None) -> Iterator[torch.Tensor]:
    """Yield output frames (3, H, W) float32 CPU in ~[-1, 1], frame i driven by driver frame i."""
    plan = build_reenact_plan(G, identity, driver, config)
    pending = []
    batch = config.render.batch
    for out in render_frames(G, plan, config.render, stats=stats):
        if not config.side_by_side:
            yield out.image
        else:
            pending.append(out)
            if len(pending) == batch or out.index == plan.num_frames - 1:
                lo, hi = pending[0].index, out.index + 1
                size = tuple(out.image.shape[-2:])
                pics = driver_pictures(G, driver, plan.cameras, lo, hi, size)
                for pic, o in zip(pics, pending):
                    yield torch.cat([pic, o.image], dim=-1)
                pending = []
        if on_progress is not None:
            on_progress(1)


__all__ = ["CAMERA_MODES", "ReenactError", "Identity", "ReenactConfig", "seed_identity", "avatar_identity",
           "frame_params", "frame_meshes", "frame_cameras", "build_reenact_plan", "driver_pictures",
           "reenact_frames"]
