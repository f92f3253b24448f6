"""Expression sweeps for videos: jaw, smile and blink as per-frame FLAME parameter tracks.

A track is a dict of per-frame FLAME keyword arguments (the names of
`next3d.flame.layer.FLAME.forward`): `expression` (N, E), `jaw`, `neck`, `left_eye`,
`right_eye` (N, 3) axis-angle radians, float32. The shape is not part of a track (the
avatar keeps its own).

Every sweep follows the weight w(t) = (1 - cos 2πt) / 2 at phase t = i / N · cycles:
0 at the first frame (neutral), 1 half-way, back to 0, so that videos loop.

* ``jaw``: jaw rotation about FLAME's x axis, `amount` radians at w = 1 (default 0.3,
  a wide open mouth; + opens).
* ``smile`` and ``blink`` need a direction in expression space:
  - the built-in head names its components (`next3d.flame.builtin.blendshapes`):
    smile = `smile` x 2 (~8 mm at the mouth corners), blink = `eye_close_left` and
    `eye_close_right` x 2 (2 closes the lids exactly);
  - real FLAME's expression basis is a PCA without names, so the direction is solved
    from landmark goals (`landmark_direction`): the least-squares expression whose
    landmark displacements best match the goal, with a small ridge term. Smile: mouth
    corners 48 and 54 move 5 mm outwards and 4 mm up (2 mm back), the other landmarks
    outside the mouth stay. Blink: upper-lid landmarks 37, 38, 43, 44 move onto the
    lower-lid landmarks 41, 40, 47, 46 (the gaps close; the lower lids and the landmarks
    outside the eyes stay). (Landmarks are linear in the expression at rest
    pose, so the solve is exact linear algebra on FLAME's own basis.)
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch

ANIMATIONS = ("jaw", "smile", "blink")
DEFAULT_AMOUNTS = {"jaw": 0.3, "smile": 1.0, "blink": 1.0}
BUILTIN_NAME = "builtin"

# iBUG 68 indices: mouth corners, upper and lower lids (right eye 36-41, left eye 42-47 of the subject).
MOUTH_CORNERS = (48, 54)
UPPER_LIDS = (37, 38, 43, 44)
LOWER_LIDS = (41, 40, 47, 46)
MOUTH_LANDMARKS = tuple(range(48, 68))
EYE_LANDMARKS = tuple(range(36, 48))


class AnimationError(ValueError):
    """An expression sweep that cannot be made (unknown kind, head model without the components)."""


def sweep_weights(frames: int, cycles: float = 1.0) -> torch.Tensor:
    """w (N,) float32 = (1 - cos 2πt) / 2 at t = i / N · cycles."""
    if frames < 1:
        raise AnimationError(f"animation: expected at least 1 frame, got {frames}")
    t = torch.arange(frames, dtype=torch.float64) / frames * cycles
    return ((1.0 - torch.cos(2.0 * math.pi * t)) / 2.0).float()


def neutral_track(flame: torch.nn.Module, frames: int) -> Dict[str, torch.Tensor]:
    """An all-zero track: expression (N, E), jaw/neck/left_eye/right_eye (N, 3)."""
    device = flame.v_template.device
    out = {"expression": torch.zeros(frames, flame.num_expression, device=device)}
    for key in ("jaw", "neck", "left_eye", "right_eye"):
        out[key] = torch.zeros(frames, 3, device=device)
    return out


@torch.no_grad()
def landmark_direction(flame: torch.nn.Module, goals: Mapping[Union[int, Tuple[int, int]], Sequence[float]],
                       keep: Sequence[int] = (), keep_weight: float = 0.5, ridge: float = 1e-3) -> torch.Tensor:
    """Expression coefficients (E,) whose landmark motion best matches `goals`.

    goals: landmark index -> wanted displacement (3,) in metres (FLAME space), or a pair
    (i, j) -> wanted change of landmark i minus landmark j (e.g. closing a gap).
    keep: landmarks that should not move (weighted by `keep_weight`).
    Minimises sum |J_l e - d_l|^2 + keep_weight^2 sum |J_k e|^2 + ridge·s^2 |e|^2, with
    J the landmark Jacobian of the expression at rest pose and s the typical size of its
    entries (so `ridge` does not depend on the basis' scale).
    """
    device = flame.v_template.device
    num_e = flame.num_expression
    eye = torch.eye(num_e, device=device)
    lmk = flame(expression=torch.cat([torch.zeros(1, num_e, device=device), eye])).landmarks.double()
    jac = (lmk[1:] - lmk[:1]).permute(1, 2, 0)  # (68, 3, E): exact, landmarks are linear in ψ at rest pose
    rows, target = [], []
    for idx, d in goals.items():
        rows.append(jac[idx[0]] - jac[idx[1]] if isinstance(idx, tuple) else jac[int(idx)])
        target.append(torch.as_tensor(d, dtype=torch.float64, device=device))
    for idx in keep:
        if int(idx) in goals:  # (pairs never exclude a landmark from keep)
            continue
        rows.append(keep_weight * jac[int(idx)])
        target.append(torch.zeros(3, dtype=torch.float64, device=device))
    a = torch.cat(rows)  # (3 L, E)
    b = torch.cat(target)
    scale = float(a.abs().mean()) or 1.0
    lhs = a.T @ a + ridge * scale ** 2 * torch.eye(num_e, dtype=torch.float64, device=device)
    return torch.linalg.solve(lhs, a.T @ b).float()


def _smile_goals(rest: torch.Tensor) -> Dict[int, Sequence[float]]:
    goals = {}
    for idx in MOUTH_CORNERS:
        side = 1.0 if float(rest[idx, 0]) > 0 else -1.0  # x to the subject's left
        goals[idx] = (0.005 * side, 0.004, -0.002)
    return goals


def _blink_goals(rest: torch.Tensor) -> Dict[Tuple[int, int], Sequence[float]]:
    # The gap upper - lower closes: its change is (lower - upper) at rest.
    return {(up, lo): tuple((rest[lo] - rest[up]).tolist()) for up, lo in zip(UPPER_LIDS, LOWER_LIDS)}


@torch.no_grad()
def expression_direction(flame: torch.nn.Module, kind: str) -> torch.Tensor:
    """Expression coefficients (E,) of a full smile or blink for this head model (module docstring)."""
    if kind not in ("smile", "blink"):
        raise AnimationError(f"animation: no expression direction for {kind!r} (expected smile or blink)")
    num_e = flame.num_expression
    device = flame.v_template.device
    if getattr(flame, "model_name", None) == BUILTIN_NAME:
        from next3d.flame.builtin.blendshapes import EXPRESSION_NAMES

        names = ("smile",) if kind == "smile" else ("eye_close_left", "eye_close_right")
        out = torch.zeros(num_e, device=device)
        for name in names:
            idx = EXPRESSION_NAMES.index(name)
            if idx >= num_e:
                raise AnimationError(f"animation {kind}: the built-in head has no component {name}")
            out[idx] = 2.0
        return out
    rest = flame(batch_size=1).landmarks[0]
    if kind == "smile":
        keep = [i for i in range(68) if i not in MOUTH_LANDMARKS]
        return landmark_direction(flame, _smile_goals(rest), keep=keep)
    keep = [i for i in range(68) if i not in EYE_LANDMARKS or i in LOWER_LIDS]
    return landmark_direction(flame, _blink_goals(rest), keep=keep)


def expression_track(flame: torch.nn.Module, kind: str, frames: int, amount: Optional[float] = None,
                     cycles: float = 1.0) -> Dict[str, torch.Tensor]:
    """Per-frame FLAME parameters (module docstring) of a `kind` sweep over N = `frames` frames.

    amount: scale at w = 1 (jaw: radians; smile/blink: multiples of the full direction);
    None = DEFAULT_AMOUNTS[kind].
    """
    if kind not in ANIMATIONS:
        raise AnimationError(f"animation: unknown kind {kind!r}; expected one of {', '.join(ANIMATIONS)}")
    amount = DEFAULT_AMOUNTS[kind] if amount is None else float(amount)
    w = sweep_weights(frames, cycles).to(flame.v_template.device)
    track = neutral_track(flame, frames)
    if kind == "jaw":
        track["jaw"][:, 0] = amount * w
    else:
        track["expression"] = (amount * w)[:, None] * expression_direction(flame, kind)[None]
    return track


__all__ = ["ANIMATIONS", "DEFAULT_AMOUNTS", "AnimationError", "sweep_weights", "neutral_track",
           "landmark_direction", "expression_direction", "expression_track"]
