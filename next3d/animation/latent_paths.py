"""Latent paths for videos: ws of seeds and smooth interpolation between them.

A seed means what it means in `next3d.generate`: z = RandomState(seed).randn(z_dim),
mapped with the frontal conditioning camera and truncation (`seed_ws`).

Interpolation is in W space (ws (K, num_ws, w_dim) keyframes -> (N, num_ws, w_dim)),
periodic by default so that a video loops: frame i sits at keyframe position
s = i · K / N, frame 0 is keyframe 0 exactly, and whenever N is a multiple of K, frame
j · N / K is keyframe j exactly. `kind="cubic"` is a periodic cubic spline through the
keyframes (EG3D's `gen_videos.py` uses a cubic interpolant over wrapped keyframes),
`kind="linear"` straight segments.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from torch_utils.misc import assert_shape

INTERPOLATIONS = ("cubic", "linear")


class LatentPathError(ValueError):
    """A latent path that cannot be made (no keyframes, no frames, unknown kind)."""


@torch.no_grad()
def seed_ws(G: torch.nn.Module, seeds: Sequence[int], truncation_psi: float = 0.7,
            truncation_cutoff: Optional[int] = 14) -> torch.Tensor:
    """ws (S, num_ws, w_dim) of `seeds` on G's device (the mapping sees the frontal camera)."""
    from next3d.generate import frontal_label, seeds_to_z

    if not seeds:
        raise LatentPathError("seeds: none given")
    device = next(G.parameters()).device
    z = seeds_to_z(list(seeds), G.z_dim).to(device)
    c = frontal_label(G, device).expand(len(seeds), -1)
    return G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


def keyframe_positions(frames: int, keyframes: int, loop: bool = True) -> np.ndarray:
    """Keyframe coordinate s (N,) float64 of each frame: i·K/N when looping, else i·(K-1)/(N-1)."""
    if frames < 1:
        raise LatentPathError(f"latent path: expected at least 1 frame, got {frames}")
    if keyframes < 1:
        raise LatentPathError("latent path: expected at least 1 keyframe")
    if loop:
        return np.arange(frames, dtype=np.float64) * keyframes / frames
    if frames == 1:
        return np.zeros(1)
    return np.linspace(0.0, keyframes - 1, frames)


def interpolate_ws(keys: torch.Tensor, frames: int, kind: str = "cubic", loop: bool = True) -> torch.Tensor:
    """Keyframe ws (K, num_ws, w_dim) -> ws (N, num_ws, w_dim) along a smooth path (module docstring).

    One keyframe gives N copies of it.
    """
    assert_shape(keys, [None, None, None], "keyframe ws")
    if kind not in INTERPOLATIONS:
        raise LatentPathError(f"latent path: unknown interpolation {kind!r}; expected one of "
                              f"{', '.join(INTERPOLATIONS)}")
    k = keys.shape[0]
    s = keyframe_positions(frames, k, loop)
    if k == 1:
        return keys.expand(frames, *keys.shape[1:]).clone()
    values = keys.detach().double().cpu().numpy()
    flat = values.reshape(k, -1)
    if loop:
        flat = np.concatenate([flat, flat[:1]], axis=0)
    knots = np.arange(flat.shape[0], dtype=np.float64)
    if kind == "linear" or flat.shape[0] < 3 or (not loop and k < 3):
        lo = np.clip(np.floor(s).astype(np.int64), 0, flat.shape[0] - 2)
        w = (s - lo)[:, None]
        out = flat[lo] * (1 - w) + flat[lo + 1] * w
    else:
        from scipy.interpolate import CubicSpline

        spline = CubicSpline(knots, flat, axis=0, bc_type="periodic" if loop else "not-a-knot")
        out = spline(s)
    return torch.from_numpy(out.reshape(frames, *values.shape[1:])).to(device=keys.device, dtype=keys.dtype)


__all__ = ["INTERPOLATIONS", "LatentPathError", "seed_ws", "keyframe_positions", "interpolate_ws"]
