"""Fixtures of the training tests: a small in-memory labelled data set and tiny run configs."""

from __future__ import annotations

import pytest
import torch

from next3d.flame import FLAME, load_flame_model
from next3d.render.cameras import orbit_label
from next3d.render.mesh_shading import render_mesh


class MemoryDataset(torch.utils.data.Dataset):
    """Items as `training/dataset.py` returns them: shaded renders of random FLAME heads."""

    def __init__(self, count: int = 8, resolution: int = 64, seed: int = 0, flame=None):
        g = torch.Generator().manual_seed(seed)
        self.flame_layer = flame or FLAME(load_flame_model(None))
        self.resolution = resolution
        self.head_topology = None
        self.num_shape, self.num_expression = 10, 10
        yaw = (torch.rand(count, generator=g) - 0.5) * 0.8
        pitch = (torch.rand(count, generator=g) - 0.5) * 0.3
        self.cameras = torch.cat([orbit_label(float(y), float(p)) for y, p in zip(yaw, pitch)])
        self.params = {"shape": torch.randn(count, 10, generator=g) * 0.5,
                       "expression": torch.randn(count, 10, generator=g) * 0.5,
                       "neck": torch.zeros(count, 3), "jaw": torch.rand(count, 3, generator=g) * torch.tensor([0.2, 0, 0]),
                       "left_eye": torch.zeros(count, 3), "right_eye": torch.zeros(count, 3)}
        with torch.no_grad():
            verts = self.flame_layer(**self.params).vertices
            shaded = render_mesh(verts, self.flame_layer.faces, self.cameras, resolution).shaded
        self.images = ((shaded + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        return {"image": self.images[i], "camera": self.cameras[i],
                "flame": {k: v[i] for k, v in self.params.items()},
                "landmarks_2d": torch.zeros(68, 2), "index": int(i)}


@pytest.fixture(scope="session")
def memory_dataset():
    return MemoryDataset()


# Tiny preset made quicker still: 16² neural rendering with 4+4 samples, small batch.
FAST_SETS = ["G.render.neural_resolution=16", "G.render.samples_per_ray=4", "G.render.importance_samples=4",
             "batch=2", "density_reg_points=64", "mesh_resolution=32", "metric_images=0", "d_reg_interval=2",
             "g_reg_interval=2", "blur_fade_kimg=1"]
