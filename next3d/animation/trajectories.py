"""Camera paths for videos: orbits and yaw / pitch sweeps around the orbit pivot, as camera labels.

Angles follow `next3d.render.cameras` (written there once): yaw > 0 moves the camera
towards +x (it sees the subject's left cheek), pitch > 0 moves it up (+y); 0, 0 is the
frontal camera. Every camera sits on the sphere of radius `radius` around `pivot` (the
published pivot (0, 0, 0.2), radius 2.7) and looks at the pivot.

Paths are periodic so that a video loops without a repeated frame: frame i of N sits at
phase t = i / N in [0, 1).

* ``orbit``: yaw = yaw_range · sin(2πt), pitch = pitch_offset + pitch_range · cos(2πt)
  (EG3D's `gen_videos.py` orbit, with its angles measured from the frontal view).
* ``yaw``: yaw = yaw_range · sin(2πt), pitch = pitch_offset (a left-right sweep).
* ``pitch``: yaw = 0, pitch = pitch_offset + pitch_range · sin(2πt) (an up-down sweep).
* ``front``: yaw = 0, pitch = pitch_offset (a fixed camera).

`label_angles` inverts `orbit_label`: labels (B, 25) -> yaw, pitch, radius about a pivot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import torch

from next3d.render.cameras import DEFAULT_PIVOT, DEFAULT_RADIUS, FFHQ_FOCAL, orbit_label, split_label
from torch_utils.misc import assert_shape

TRAJECTORIES = ("orbit", "yaw", "pitch", "front")


class TrajectoryError(ValueError):
    """A camera path that cannot be made (unknown kind, no frames)."""


@dataclass(frozen=True)
class TrajectoryConfig:
    """Shape of a camera path (angles in radians; module docstring for the formulas)."""

    kind: str = "orbit"  # One of TRAJECTORIES.
    yaw_range: float = 0.35  # Largest |yaw| of orbit and yaw sweeps (EG3D's video default).
    pitch_range: float = 0.25  # Largest |pitch - pitch_offset| of orbit and pitch sweeps.
    pitch_offset: float = 0.0  # Pitch the path oscillates about (+ = from above).
    cycles: float = 1.0  # Full periods over the video.

    def __post_init__(self):
        if self.kind not in TRAJECTORIES:
            raise TrajectoryError(f"trajectory: unknown kind {self.kind!r}; expected one of {', '.join(TRAJECTORIES)}")
        for name in ("yaw_range", "pitch_range"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= math.pi):
                raise TrajectoryError(f"trajectory: {name} must lie in [0, pi] radians, got {value}")
        if not (math.isfinite(self.pitch_offset) and abs(self.pitch_offset) < math.pi / 2):
            raise TrajectoryError(f"trajectory: pitch_offset must lie in (-pi/2, pi/2), got {self.pitch_offset}")
        if not (math.isfinite(self.cycles) and self.cycles > 0):
            raise TrajectoryError(f"trajectory: cycles must be positive, got {self.cycles}")


def trajectory_angles(config: TrajectoryConfig, frames: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """yaw (N,), pitch (N,) float32 radians of the path's N = `frames` cameras."""
    if frames < 1:
        raise TrajectoryError(f"trajectory: expected at least 1 frame, got {frames}")
    t = torch.arange(frames, dtype=torch.float64) / frames * config.cycles
    phase = 2.0 * math.pi * t
    zeros = torch.zeros_like(t)
    if config.kind == "orbit":
        yaw, pitch = config.yaw_range * torch.sin(phase), config.pitch_offset + config.pitch_range * torch.cos(phase)
    elif config.kind == "yaw":
        yaw, pitch = config.yaw_range * torch.sin(phase), zeros + config.pitch_offset
    elif config.kind == "pitch":
        yaw, pitch = zeros, config.pitch_offset + config.pitch_range * torch.sin(phase)
    else:  # front
        yaw, pitch = zeros, zeros + config.pitch_offset
    return yaw.float(), pitch.float()


def trajectory_labels(config: TrajectoryConfig, frames: int, radius: float = DEFAULT_RADIUS,
                      pivot: Sequence[float] = DEFAULT_PIVOT, focal: float = FFHQ_FOCAL,
                      device=None) -> torch.Tensor:
    """Camera labels (N, 25) float32 of the path (FFHQ intrinsics unless `focal` is given)."""
    yaw, pitch = trajectory_angles(config, frames)
    return orbit_label(yaw, pitch, radius=radius, pivot=pivot, focal=focal, device=device)


def label_angles(c: torch.Tensor, pivot: Sequence[float] = DEFAULT_PIVOT) -> Tuple[torch.Tensor, ...]:
    """Camera labels (B, 25) -> yaw (B,), pitch (B,), radius (B,) of the camera centre about `pivot`.

    The inverse of `orbit_label` for cameras that look at the pivot:
    centre - pivot = radius · (cos p sin y, sin p, cos p cos y).
    """
    assert_shape(c, [None, 25], "camera label")
    cam2world, _ = split_label(c)
    offset = cam2world[:, :3, 3] - torch.as_tensor(pivot, dtype=c.dtype, device=c.device)
    radius = offset.norm(dim=-1)
    pitch = torch.asin((offset[:, 1] / radius.clamp_min(1e-12)).clamp(-1.0, 1.0))
    yaw = torch.atan2(offset[:, 0], offset[:, 2])
    return yaw, pitch, radius


__all__ = ["TRAJECTORIES", "TrajectoryError", "TrajectoryConfig", "trajectory_angles", "trajectory_labels",
           "label_angles"]
