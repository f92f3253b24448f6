"""Camera conventions, written once.

Camera label `c` (B, 25): 16 floats of the 4x4 cam2world matrix (row-major) followed by
9 floats of the 3x3 *normalised* intrinsics (row-major), as in EG3D/Next3D.

* Camera axes are OpenCV's: x right, y down, z forward (the viewing direction).
* World = FLAME's canonical frame scaled into the renderer's box (see
  `next3d.render.triplane_coords`): y up, z towards the viewer, x to the subject's left.
* Normalised intrinsics map camera coordinates to [0, 1] image coordinates:
  u = fx * x / z + cx, v = fy * y / z + cy, with u to the right and v downwards.
  FFHQ uses fx = fy = 4.2647, cx = cy = 0.5.
* The default orbit has radius 2.7 around the pivot (0, 0, 0.2). `yaw` > 0 moves the
  camera towards +x (it sees the subject's left cheek); `pitch` > 0 moves it up (+y).
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple, Union

import torch

from torch_utils.misc import assert_shape

FFHQ_FOCAL = 4.2647
DEFAULT_RADIUS = 2.7
DEFAULT_PIVOT = (0.0, 0.0, 0.2)

TensorLike = Union[float, Sequence[float], torch.Tensor]


def intrinsics(focal: float = FFHQ_FOCAL, cx: float = 0.5, cy: float = 0.5, batch: int = 1,
               device=None, dtype=torch.float32) -> torch.Tensor:
    """Normalised intrinsics (B, 3, 3)."""
    k = torch.tensor([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]], device=device, dtype=dtype)
    return k.unsqueeze(0).repeat(batch, 1, 1)


def look_at(origin: torch.Tensor, target: torch.Tensor, up: Sequence[float] = (0.0, 1.0, 0.0)) -> torch.Tensor:
    """cam2world (B, 4, 4) for cameras at `origin` (B, 3) looking at `target` (B, 3).

    The camera's z axis points at the target, its y axis points down relative to the
    world `up` (OpenCV), and x = y cross z points right.
    """
    assert_shape(origin, [None, 3], "origin")
    assert_shape(target, [origin.shape[0], 3], "target")
    forward = torch.nn.functional.normalize(target - origin, dim=-1)
    up_t = torch.as_tensor(up, dtype=origin.dtype, device=origin.device).expand_as(forward)
    right = torch.nn.functional.normalize(torch.cross(forward, up_t, dim=-1), dim=-1)
    down = torch.cross(forward, right, dim=-1)
    mat = torch.eye(4, dtype=origin.dtype, device=origin.device).repeat(origin.shape[0], 1, 1)
    mat[:, :3, 0] = right
    mat[:, :3, 1] = down
    mat[:, :3, 2] = forward
    mat[:, :3, 3] = origin
    return mat


def orbit_cam2world(yaw: TensorLike, pitch: TensorLike, radius: float = DEFAULT_RADIUS,
                    pivot: Sequence[float] = DEFAULT_PIVOT, device=None, dtype=torch.float32) -> torch.Tensor:
    """cam2world (B, 4, 4) of cameras on a sphere around `pivot`, looking at it.

    `yaw` and `pitch` are radians (scalars or (B,) tensors), 0 = frontal.
    """
    yaw_t = torch.as_tensor(yaw, dtype=dtype, device=device).reshape(-1)
    pitch_t = torch.as_tensor(pitch, dtype=dtype, device=device).reshape(-1)
    yaw_t, pitch_t = torch.broadcast_tensors(yaw_t, pitch_t)
    piv = torch.as_tensor(pivot, dtype=dtype, device=device).expand(yaw_t.shape[0], 3)
    offset = torch.stack(
        [torch.cos(pitch_t) * torch.sin(yaw_t), torch.sin(pitch_t), torch.cos(pitch_t) * torch.cos(yaw_t)], dim=-1
    )
    return look_at(piv + radius * offset, piv)


def make_label(cam2world: torch.Tensor, intr: torch.Tensor) -> torch.Tensor:
    """Pack cam2world (B, 4, 4) and normalised intrinsics (B, 3, 3) into labels (B, 25)."""
    assert_shape(cam2world, [None, 4, 4], "cam2world")
    assert_shape(intr, [cam2world.shape[0], 3, 3], "intrinsics")
    return torch.cat([cam2world.reshape(-1, 16), intr.reshape(-1, 9)], dim=1)


def split_label(c: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Unpack labels (B, 25) into cam2world (B, 4, 4) and normalised intrinsics (B, 3, 3)."""
    assert_shape(c, [None, 25], "camera label")
    return c[:, :16].reshape(-1, 4, 4), c[:, 16:].reshape(-1, 3, 3)


def orbit_label(yaw: TensorLike = 0.0, pitch: TensorLike = 0.0, radius: float = DEFAULT_RADIUS,
                pivot: Sequence[float] = DEFAULT_PIVOT, focal: float = FFHQ_FOCAL, device=None,
                dtype=torch.float32) -> torch.Tensor:
    """Camera labels (B, 25) for an orbit camera with FFHQ intrinsics."""
    c2w = orbit_cam2world(yaw, pitch, radius, pivot, device=device, dtype=dtype)
    return make_label(c2w, intrinsics(focal, batch=c2w.shape[0], device=device, dtype=dtype))


def world_to_camera(points: torch.Tensor, cam2world: torch.Tensor) -> torch.Tensor:
    """Points (B, N, 3) in world space -> camera space (B, N, 3), OpenCV axes."""
    assert_shape(points, [None, None, 3], "points")
    assert_shape(cam2world, [points.shape[0], 4, 4], "cam2world")
    rot = cam2world[:, :3, :3]
    trans = cam2world[:, :3, 3]
    return torch.einsum("bij,bnj->bni", rot.transpose(1, 2), points - trans[:, None, :])


def project(points: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Perspective projection of world points (B, N, 3) under labels (B, 25).

    Returns (B, N, 3): normalised image coordinates u, v in [0, 1] (u right, v down)
    and camera-space depth z (positive in front of the camera).
    """
    cam2world, intr = split_label(c)
    cam = world_to_camera(points, cam2world)
    z = cam[..., 2:3]
    uvw = torch.einsum("bij,bnj->bni", intr, cam)
    # Points on the camera plane would divide by zero; keep them finite (they are culled later).
    z_safe = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)
    uv = uvw[..., :2] / z_safe
    return torch.cat([uv, z], dim=-1)


def fov_degrees(focal: float = FFHQ_FOCAL) -> float:
    """Vertical field of view in degrees for a normalised focal length."""
    return math.degrees(2.0 * math.atan(0.5 / focal))
