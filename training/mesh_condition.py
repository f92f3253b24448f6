"""The deformation-aware discriminator's extra input: the FLAME mesh rendered under the camera.

`MeshConditioner(flame_layer, mode, resolution)(flame_params, c)` -> (B, C, r, r) in [-1, 1]:
for real items from their FLAME parameters, for fakes from the driving mesh (the FLAME
parameters the generator was given), rendered by `next3d.render.mesh_shading.render_mesh`
under the camera label c (B, 25). mode "normals" gives the 3-channel camera-space normal
map, "shaded" the 1-channel Lambertian grey image; background -1. No gradients flow (the
rendering is a condition, the same function of the same kind of input for real and fake).
A data set in the published layout gives `vertices` (B, V, 3) instead of parameters.
"""

from __future__ import annotations

from typing import Mapping

import torch

from next3d.render.mesh_shading import render_mesh
from torch_utils.misc import assert_shape


class MeshConditioner(torch.nn.Module):
    """Renders meshes for D; holds no trainable state (the FLAME layer is the generator's)."""

    def __init__(self, flame: torch.nn.Module, mode: str = "normals", resolution: int = 64):
        super().__init__()
        if mode not in ("normals", "shaded"):
            raise ValueError(f"MeshConditioner: mode={mode!r}, expected 'normals' or 'shaded'")
        self.flame = flame
        self.mode = mode
        self.resolution = int(resolution)
        self.channels = 3 if mode == "normals" else 1

    @torch.no_grad()
    def forward(self, flame: Mapping[str, torch.Tensor], c: torch.Tensor) -> torch.Tensor:
        """flame: FLAME parameters (B, n) each, or {'vertices': (B, V, 3)}; c (B, 25) -> (B, C, r, r)."""
        if "vertices" in flame:
            vertices = flame["vertices"]
        else:
            params = {k: v for k, v in flame.items() if k != "landmarks"}
            vertices = self.flame(**params).vertices
        assert_shape(c, [vertices.shape[0], 25], "camera label c")
        out = render_mesh(vertices.float(), self.flame.faces, c.float(), self.resolution)
        return out.normals if self.mode == "normals" else out.shaded[:, :1]

    def extra_repr(self) -> str:
        return f"mode={self.mode}, resolution={self.resolution}, channels={self.channels}"
