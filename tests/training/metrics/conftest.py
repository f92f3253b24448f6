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
