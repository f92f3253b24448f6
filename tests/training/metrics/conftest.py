"""Fixtures for the metric tests: small in-memory data sets of smooth synthetic images."""

from __future__ import annotations

import pytest
import torch


def smooth_images(count: int, size: int, seed: int = 0) -> torch.Tensor:
    """(N, 3, S, S) uint8 images: coloured blobs on a gradient, distinct per index."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    out = []
    for _ in range(count):
        img = torch.zeros(3, size, size) + (xx * torch.rand(3, 1, 1, generator=g))
        for _ in range(4):
            cx, cy, r = torch.rand(3, generator=g)
            col = torch.rand(3, 1, 1, generator=g) * 2 - 1
            img = img + col * torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (0.01 + 0.05 * r))
        out.append(((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))
    return torch.stack(out)


class ListDataset(torch.utils.data.Dataset):
    """Items {'image', 'camera', 'flame'} from tensors (the ImageDataset item layout)."""

    def __init__(self, images: torch.Tensor, cameras=None, flames=None):
        self.images = images
        self.cameras = cameras
        self.flames = flames

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        item = {"image": self.images[i], "index": i}
        if self.cameras is not None:
            item["camera"] = self.cameras[i]
        if self.flames is not None:
            item["flame"] = {k: v[i] for k, v in self.flames.items()}
        return item


@pytest.fixture
def image_set():
    return ListDataset(smooth_images(8, 48))


@pytest.fixture
def metrics_cache(tmp_path, monkeypatch):
    folder = tmp_path / "metrics-cache"
    monkeypatch.setenv("NEXT3D_METRICS_CACHE", str(folder))
    return folder


@pytest.fixture
def make_images():
    """smooth_images(count, size, seed) -> (N, 3, S, S) uint8."""
    return smooth_images


@pytest.fixture
def list_dataset():
    """The ListDataset class."""
    return ListDataset


@pytest.fixture(scope="session")
def head_dataset(tmp_path_factory):
    """A 6-item next3d data set at 64 px (train split): shaded renders of the built-in head with
    random expressions and orbit cameras, written with DatasetWriter and read with ImageDataset."""
    import numpy as np

    from next3d.flame import FLAME, load_flame_model
    from next3d.render.cameras import orbit_label
    from next3d.render.mesh_shading import render_mesh
    from training.dataset import DatasetWriter, ImageDataset, head_identity, project_landmarks

    data = load_flame_model(None)
    flame = FLAME(data)
    rng = np.random.RandomState(0)
    out = tmp_path_factory.mktemp("metrics-data") / "heads"
    res = 64
    with DatasetWriter(out, resolution=res, source={"tool": "tests"}, **head_identity(data)) as writer:
        for i in range(6):
            params = {"shape": (rng.randn(flame.num_shape) * 0.5).astype(np.float32),
                      "expression": (rng.randn(flame.num_expression) * 0.5).astype(np.float32),
                      "jaw": np.array([abs(rng.randn()) * 0.1, 0, 0], np.float32),
                      "neck": np.zeros(3, np.float32), "left_eye": np.zeros(3, np.float32),
                      "right_eye": np.zeros(3, np.float32)}
            camera = orbit_label(float(rng.uniform(-0.4, 0.4)), float(rng.uniform(-0.1, 0.1)))
            with torch.no_grad():
                mesh = flame(**{k: torch.from_numpy(v)[None] for k, v in params.items()})
                shaded = render_mesh(mesh.vertices, flame.faces, camera, res).shaded[0]
            img = ((shaded + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
            lmk = project_landmarks(mesh.landmarks[0].numpy(), camera[0].numpy(), res)
            writer.add(img, camera=camera[0].numpy(), flame=params, landmarks_2d=lmk)
    return ImageDataset(out)


@pytest.fixture(scope="session")
def tiny_generator():
    from next3d.checkpoint import build_generator
    from next3d.presets import get_preset

    return build_generator(get_preset("tiny"), seed=0).eval()
