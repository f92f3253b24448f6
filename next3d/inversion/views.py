"""Where an avatar is shown from, and with which faces: novel-view cameras and expression edits.

Novel views (`novel_view_cameras`): the input view's camera with its rotation replaced by a
pure yaw (pitch and roll 0) about the pivot and its translation kept (the fitter's camera
parameters, `next3d.fitting.camera_frame`): the head stays framed as in the input, seen from
yaw −45°, −30°, +30°, +45° (yaw > 0 shows the subject's left cheek). `orbit_cameras` gives the
same yaws on the generator's default orbit (radius 2.7 about the pivot), the cameras the
synthetic set's true renders use.

Expressions (`expression_edits`): the avatar's own neutral (fitted) FLAME parameters with
`smile` (the head model's smile direction, `next3d.animation.expression_tracks`, amount 1)
added to the expression, and `jaw_open` (the jaw opened by 0.3 rad).
"""

from __future__ import annotations

import math
from typing import Dict, Sequence

import torch

NOVEL_YAWS_DEG = (-45.0, -30.0, 30.0, 45.0)
JAW_OPEN_RAD = 0.3


def view_name(yaw_deg: float) -> str:
    """-30 -> 'yaw-30', 45 -> 'yaw+45'."""
    return f"yaw{yaw_deg:+.0f}"


def novel_view_cameras(camera: torch.Tensor, yaws_deg: Sequence[float] = NOVEL_YAWS_DEG) -> torch.Tensor:
    """camera (1, 25) -> (V, 25): the same translation, rotation = yaw only (module docstring)."""
    from next3d.fitting.camera_frame import camera_label, camera_params_from_label

    _, trans = camera_params_from_label(camera.float())
    rot = torch.zeros(len(yaws_deg), 3, dtype=trans.dtype, device=trans.device)
    rot[:, 1] = torch.tensor([math.radians(y) for y in yaws_deg], dtype=trans.dtype)
    return camera_label(rot, trans.expand(len(yaws_deg), -1))


def orbit_cameras(G: torch.nn.Module, yaws_deg: Sequence[float], pitch_deg: float = 0.0) -> torch.Tensor:
    """(V, 25) labels on G's default orbit at the given yaws (degrees)."""
    from next3d.render.cameras import orbit_label

    r = G.config.render
    return orbit_label(torch.tensor([math.radians(y) for y in yaws_deg], dtype=torch.float32),
                       math.radians(pitch_deg), radius=r.avg_camera_radius, pivot=r.avg_camera_pivot)


def expression_edits(G: torch.nn.Module, flame: Dict[str, torch.Tensor]) -> Dict[str, Dict[str, torch.Tensor]]:
    """{'smile': flame (1, k) per key, 'jaw_open': ...} from the neutral flame (1, k) per key."""
    from next3d.animation.expression_tracks import expression_direction

    smile = {k: v.clone() for k, v in flame.items()}
    direction = expression_direction(G.flame, "smile").to(smile["expression"])
    smile["expression"] = smile["expression"] + direction.reshape(1, -1)[:, :smile["expression"].shape[1]]
    jaw = {k: v.clone() for k, v in flame.items()}
    jaw["jaw"] = jaw["jaw"].clone()
    jaw["jaw"][:, 0] = jaw["jaw"][:, 0] + JAW_OPEN_RAD
    return {"smile": smile, "jaw_open": jaw}


__all__ = ["NOVEL_YAWS_DEG", "JAW_OPEN_RAD", "view_name", "novel_view_cameras", "orbit_cameras", "expression_edits"]
