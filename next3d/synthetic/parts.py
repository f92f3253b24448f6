"""A renderable part of the synthetic scene (hair, body, teeth, ...) and small mesh builders.

A `Part` is a triangle mesh in the rest pose (FLAME space, metres) with skinning weights on
FLAME's 5 joints (root, head/neck, jaw, left eye, right eye), a segmentation class and its
material: per-vertex linear-RGB albedo, or per-corner UVs into a texture; a specular strength
and a Phong exponent. `tangent` (hair only) gives the strand direction per vertex for the
anisotropic highlight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch


@dataclass
class Part:
    """vertices (N, 3) rest pose; faces (M, 3) int64; weights (N, 5); cls: segmentation class;
    albedo (N, 3) linear RGB per vertex, or texture (3, S, S) with uv_corners (M, 3, 2) in
    grid_sample coordinates; specular (N,) strength; shininess: Phong exponent; tangent (N, 3)
    or None; backface_dim: factor on faces seen from behind (the inside of a hair shell)."""

    name: str
    vertices: torch.Tensor
    faces: torch.Tensor
    weights: torch.Tensor
    cls: int
    albedo: Optional[torch.Tensor] = None
    texture: Optional[torch.Tensor] = None
    uv_corners: Optional[torch.Tensor] = None
    specular: Optional[torch.Tensor] = None
    shininess: float = 20.0
    tangent: Optional[torch.Tensor] = None
    backface_dim: float = 1.0


def joint_weights(num: int, joint: int) -> torch.Tensor:
    w = torch.zeros(num, 5)
    w[:, joint] = 1.0
    return w


def grid_faces(rows: int, cols: int, wrap: bool) -> np.ndarray:
    """Faces of a rows x cols vertex grid (row-major ids), two triangles per quad, columns wrapping."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols if wrap else cols - 1), indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    d = (r + 1) * cols + c
    e = (r + 1) * cols + (c + 1) % cols
    return np.concatenate([np.stack([a, d, e], -1).reshape(-1, 3), np.stack([a, e, b], -1).reshape(-1, 3)])


def ellipsoid(centre, radii, n_lat: int = 10, n_lon: int = 16, z_max: Optional[float] = None):
    """UV-sphere ellipsoid vertices (N, 3) and faces (M, 3); `z_max` keeps only the part with
    local z <= z_max * radius_z (e.g. 0: the back half, open at the front)."""
    theta = np.linspace(0, np.pi, n_lat + 1)  # from +y (top) to -y
    phi = np.linspace(-np.pi, np.pi, n_lon, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    d = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1)
    verts = np.asarray(centre) + d * np.asarray(radii)
    faces = grid_faces(n_lat + 1, n_lon, wrap=True)
    if z_max is not None:
        keep = (d[..., 2].reshape(-1)[faces] <= z_max + 1e-9).all(1)
        faces = faces[keep]
    return verts.reshape(-1, 3), faces
