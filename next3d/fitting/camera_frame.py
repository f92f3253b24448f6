"""The fixed FLAME -> EG3D-frame transform and the fitted camera's parameters, written once.

**Frames.** A fitted FLAME mesh lives in the canonical FLAME frame (metres, y up, z towards
the viewer, x to the subject's left; global rotation zero, as Next3D's data). The EG3D
frame, in which camera labels are expressed, is the generator's world:
`world = FLAME_TO_WORLD_SCALE * (x, y + FLAME_Y_OFFSET, z)` = 2.5 (x, y + 0.01, z)
(`next3d.render.triplane_coords.flame_to_world`). No rotation: FLAME's axes are EG3D's
(EG3D's BFM-derived frame also has y up and the face looking down +z). The transform is
pinned by `tests/next3d/fitting/test_camera_frame.py`.

**How the frame was checked** (`test_published_crop_of_the_default_view`): the built-in mean head
rendered by the generator's default camera (orbit radius 2.7 about the pivot, FFHQ intrinsics) and
then cut with the published crop (`align.eg3d_crop_transform`) gives a crop transform of scale
1.126 and an offset of (+0.6, -7.8) px at 512: the published crop centres the face where the
generator's default camera does (to 8 px), but shows a mean-sized face about 12.6 % larger, so
fitted cameras of a mean-sized face sit about 2.7 / 1.126 = 2.40 from the pivot rather than
the 2.7 that published labels were normalised to. The fit keeps the translation free so that
the generator renders the head where the photo has it; labels compare with published ones in
rotation (and in direction of view), not in distance.

**Fitted camera.** Rotation and translation about the EG3D pivot (0, 0, 0.2) with FFHQ
intrinsics fixed (fx = fy = 4.2647, centre 0.5):

* `rot` (B, 3) axis-angle, world frame: cam2world rotation R = Rodrigues(rot) @ R_FRONT,
  where R_FRONT = diag(1, -1, -1) is the frontal camera on +z looking down -z (OpenCV
  axes: x right, y down, z forward). rot = 0 is `orbit_label(0, 0)`'s orientation.
* `trans` (B, 3) camera-space offset: camera centre C = pivot + R @ (trans - (0, 0, radius)),
  radius 2.7. trans = 0 puts the camera at the default orbit distance looking at the pivot;
  trans x, y move the pivot's image off the centre; trans z moves the camera along its axis.

**Angles** (`camera_angles`): yaw and pitch of the viewing direction as `orbit_label` reads
them (yaw > 0: the camera is towards +x and sees the subject's left cheek; pitch > 0: the
camera is above), roll = the rotation of the camera about its axis relative to the upright
orbit camera with the same direction (positive: clockwise in the image).

**Head rotation for the jaw contour**: the rotation that, applied to the head and seen by the
frontal camera, gives the same view: R_head = R_FRONT @ R^T (the FLAME layer's DECA yaw bins
read it, `head_rotation`).
"""

from __future__ import annotations

import math
from typing import Tuple

import torch

from next3d.flame.lbs import batch_rodrigues
from next3d.render import cameras
from next3d.render.triplane_coords import FLAME_TO_WORLD_SCALE, FLAME_Y_OFFSET, flame_to_world, world_to_flame
from torch_utils.misc import assert_shape

PIVOT = cameras.DEFAULT_PIVOT
RADIUS = cameras.DEFAULT_RADIUS
FOCAL = cameras.FFHQ_FOCAL
R_FRONT = ((1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0))

__all__ = ["FLAME_TO_WORLD_SCALE", "FLAME_Y_OFFSET", "flame_to_world", "world_to_flame", "camera_label",
           "camera_params_from_label", "camera_angles", "head_rotation", "rotation_error_deg"]


def _front(ref: torch.Tensor) -> torch.Tensor:
    return torch.tensor(R_FRONT, dtype=ref.dtype, device=ref.device)


def camera_cam2world(rot: torch.Tensor, trans: torch.Tensor, radius: float = RADIUS) -> torch.Tensor:
    """Fitted camera parameters rot (B, 3), trans (B, 3) -> cam2world (B, 4, 4) (OpenCV axes)."""
    assert_shape(rot, [None, 3], "rot")
    assert_shape(trans, [rot.shape[0], 3], "trans")
    r = batch_rodrigues(rot) @ _front(rot)
    pivot = torch.tensor(PIVOT, dtype=rot.dtype, device=rot.device)
    back = torch.tensor([0.0, 0.0, radius], dtype=rot.dtype, device=rot.device)
    centre = pivot + torch.einsum("bij,bj->bi", r, trans - back)
    top = torch.cat([r, centre[:, :, None]], dim=2)
    bottom = torch.tensor([[[0.0, 0.0, 0.0, 1.0]]], dtype=rot.dtype, device=rot.device).expand(rot.shape[0], 1, 4)
    return torch.cat([top, bottom], dim=1)


def camera_label(rot: torch.Tensor, trans: torch.Tensor, radius: float = RADIUS, focal: float = FOCAL) -> torch.Tensor:
    """Fitted camera parameters -> camera labels (B, 25) (16 cam2world + 9 FFHQ intrinsics)."""
    c2w = camera_cam2world(rot, trans, radius)
    return cameras.make_label(c2w, cameras.intrinsics(focal, batch=rot.shape[0], device=rot.device, dtype=rot.dtype))


def _matrix_to_axis_angle(r: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (B, 3, 3) -> axis-angle (B, 3) (float64 internally)."""
    r = r.double()
    cos = ((r.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1)
    angle = torch.acos(cos)
    axis = torch.stack([r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], dim=-1)
    sin = torch.sin(angle)
    small = sin.abs() < 1e-6
    out = axis / (2 * torch.where(small, torch.ones_like(sin), sin))[:, None] * angle[:, None]
    # Near 0 the axis formula's limit is axis / 2; near pi take the axis from R + I.
    out = torch.where(small[:, None] & (angle[:, None] < 1), axis / 2, out)
    near_pi = small & (angle > 1)
    if bool(near_pi.any()):
        b = (r[near_pi] + torch.eye(3, dtype=r.dtype)) / 2
        col = torch.argmax(b.diagonal(dim1=1, dim2=2), dim=1)
        v = b[torch.arange(b.shape[0]), :, col]
        v = v / v.norm(dim=1, keepdim=True)
        out[near_pi] = v * math.pi
    return out


def camera_params_from_label(c: torch.Tensor, radius: float = RADIUS) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inverse of `camera_label` (intrinsics ignored): labels (B, 25) -> rot (B, 3), trans (B, 3)."""
    c2w, _ = cameras.split_label(c)
    r = c2w[:, :3, :3].double()
    rot = _matrix_to_axis_angle(r @ _front(r).T)
    pivot = torch.tensor(PIVOT, dtype=r.dtype, device=r.device)
    back = torch.tensor([0.0, 0.0, radius], dtype=r.dtype, device=r.device)
    trans = torch.einsum("bji,bj->bi", r, c2w[:, :3, 3].double() - pivot) + back
    return rot.to(c.dtype), trans.to(c.dtype)


def camera_angles(c: torch.Tensor) -> torch.Tensor:
    """Labels (B, 25) -> (B, 3) yaw, pitch, roll in degrees (see the module docstring)."""
    c2w, _ = cameras.split_label(c)
    r = c2w[:, :3, :3].double()
    fwd = r[:, :, 2]
    yaw = torch.atan2(-fwd[:, 0], -fwd[:, 2])
    pitch = torch.asin((-fwd[:, 1]).clamp(-1, 1))
    up = torch.tensor([0.0, 1.0, 0.0], dtype=r.dtype).expand_as(fwd)
    right = torch.nn.functional.normalize(torch.cross(fwd, up, dim=-1), dim=-1)
    down = torch.cross(fwd, right, dim=-1)
    x = r[:, :, 0]
    roll = torch.atan2((x * down).sum(-1), (x * right).sum(-1))
    return torch.rad2deg(torch.stack([yaw, pitch, roll], dim=-1)).to(c.dtype)


def head_rotation(c: torch.Tensor) -> torch.Tensor:
    """Labels (B, 25) -> the equivalent head rotation (B, 3, 3) seen from the frontal camera."""
    c2w, _ = cameras.split_label(c)
    r = c2w[:, :3, :3]
    return _front(r) @ r.transpose(1, 2)


def rotation_error_deg(c_a: torch.Tensor, c_b: torch.Tensor) -> torch.Tensor:
    """Angle (B,) in degrees between the camera rotations of two label batches (B, 25)."""
    ra = cameras.split_label(c_a)[0][:, :3, :3].double()
    rb = cameras.split_label(c_b)[0][:, :3, :3].double()
    # |Ra - Rb|_F = 2 sqrt(2) sin(angle / 2): accurate for small angles (acos of the trace is not).
    chord = (ra - rb).flatten(1).norm(dim=1) / (2 * math.sqrt(2))
    return torch.rad2deg(2 * torch.asin(chord.clamp(max=1.0))).to(c_a.dtype)
