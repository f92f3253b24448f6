"""Fixtures for the dataset tests: the built-in head, and small data sets rendered with the
FLAME layer (landmarks projected with `next3d.render.cameras.project`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from next3d.flame import FLAME, load_flame_model
from next3d.render.cameras import orbit_label
from training.dataset import DatasetWriter, head_identity, project_landmarks
from training.dataset_mirror import build_mirror_operator


@pytest.fixture(scope="session")
def head_data():
    return load_flame_model(None)


@pytest.fixture(scope="session")
def flame_layer(head_data):
    return FLAME(head_data)


@pytest.fixture(scope="session")
def mirror_op(head_data):
    return build_mirror_operator(head_data)


@pytest.fixture(scope="session")
def closed_ids(mirror_op):
    """Shape / expression components that mirror exactly within the basis."""
    return (np.flatnonzero(mirror_op.residual_shape < 1e-3), np.flatnonzero(mirror_op.residual_expression < 1e-3))


def sample_items(flame_layer, count: int, resolution: int, seed: int = 0, shape_ids=None, expr_ids=None):
    """Random FLAME parameters and orbit cameras, the FLAME landmarks projected to pixels,
    and a simple image per item (a face-coloured disk over the landmarks on a gradient)."""
    rng = np.random.RandomState(seed)
    s_ids = np.arange(flame_layer.num_shape) if shape_ids is None else shape_ids
    e_ids = np.arange(flame_layer.num_expression) if expr_ids is None else expr_ids
    items = []
    for i in range(count):
        shape = np.zeros(flame_layer.num_shape, np.float32)
        expr = np.zeros(flame_layer.num_expression, np.float32)
        shape[s_ids] = rng.randn(len(s_ids)) * 0.8
        expr[e_ids] = rng.randn(len(e_ids)) * 0.6
        flame = {"shape": shape, "expression": expr,
                 "neck": (rng.randn(3) * [0.1, 0.2, 0.05]).astype(np.float32),
                 "jaw": np.array([abs(rng.randn()) * 0.15, rng.randn() * 0.02, rng.randn() * 0.02], np.float32),
                 "left_eye": (rng.randn(3) * 0.1).astype(np.float32),
                 "right_eye": (rng.randn(3) * 0.1).astype(np.float32)}
        camera = orbit_label(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.2, 0.2)))[0].numpy()
        with torch.no_grad():
            out = flame_layer(**{k: torch.from_numpy(v)[None] for k, v in flame.items()})
        lmk = project_landmarks(out.landmarks[0].numpy(), camera, resolution)
        yy, xx = np.mgrid[0:resolution, 0:resolution] + 0.5
        img = np.zeros((resolution, resolution, 3), np.uint8)
        img[..., 0] = (40 + 100 * yy / resolution).astype(np.uint8)
        img[..., 2] = (30 + 120 * xx / resolution + 3 * i).astype(np.uint8)
        centre, radius = lmk.mean(0), np.ptp(lmk, axis=0).max() * 0.6
        img[(xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 < radius ** 2] = (200, 160, 130)
        items.append({"image": img, "camera": camera, "flame": flame, "landmarks_2d": lmk,
                      "vertices": out.vertices[0].numpy(), "split": "test" if i % 4 == 3 else "train"})
    return items


def write_items(out, items, head_data, resolution, ground_truth=True, **kwargs):
    with DatasetWriter(out, resolution=resolution, source={"tool": "tests"}, **head_identity(head_data),
                       **kwargs) as writer:
        for it in items:
            gt = None
            if ground_truth:
                mask = np.zeros((resolution, resolution), np.uint8)
                mask[:, : resolution // 3] = 1
                depth = np.linspace(2, 3, resolution * resolution, dtype=np.float32).reshape(resolution, resolution)
                normals = np.zeros((resolution, resolution, 3), np.float32)
                normals[..., 0] = np.linspace(-1, 1, resolution)[None, :]
                gt = {"vertices": it["vertices"], "mask": mask, "depth": depth, "normals": normals}
            writer.add(it["image"], camera=it["camera"], flame=it["flame"], landmarks_2d=it["landmarks_2d"],
                       split=it["split"], ground_truth=gt)
    return out


@pytest.fixture(scope="session")
def items64(flame_layer, closed_ids):
    """8 items at 64 px whose FLAME coefficients mirror exactly (6 train, 2 test)."""
    return sample_items(flame_layer, 8, 64, shape_ids=closed_ids[0], expr_ids=closed_ids[1])


@pytest.fixture(scope="session")
def folder_set(tmp_path_factory, items64, head_data):
    return write_items(tmp_path_factory.mktemp("sets") / "heads", items64, head_data, 64)


@pytest.fixture(scope="session")
def zip_set(tmp_path_factory, items64, head_data):
    return write_items(tmp_path_factory.mktemp("sets") / "heads.zip", items64, head_data, 64)


@pytest.fixture
def make_items():
    return sample_items


@pytest.fixture
def write_set():
    return write_items


# ---------------------------------------------------------------------------------------
# Training tests (tests/training/test_loop.py, test_losses.py, ...): an in-memory labelled
# data set of shaded renders of random built-in heads, items as `ImageDataset` returns them.

from next3d.render.mesh_shading import render_mesh  # noqa: E402

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


# Training tests: the tiny preset shrunk further (32² output, 8² neural rendering, 4+4 samples),
# batch 2, regularisers every 2 steps, so that a step takes well under a second on a CPU.
MICRO_SETS = ["G.render.neural_resolution=8", "G.render.samples_per_ray=4", "G.render.importance_samples=4",
              "G.channel_base=256", "G.channel_max=16", "G.texture.resolution=32", "G.static.resolution=32",
              "G.mouth.crop_size=8", "G.mouth.out_resolution=16", "G.blending.final_size=8",
              "G.superres.input_resolution=8", "G.superres.out_resolution=32", "D.img_resolution=32",
              "D.channel_base=256", "D.channel_max=16", "batch=2", "density_reg_points=32", "mesh_resolution=16",
              "metric_images=0", "d_reg_interval=2", "g_reg_interval=2", "blur_fade_kimg=0.004", "log_kimg=0.002",
              "snap_kimg=1000"]


@pytest.fixture(scope="session")
def micro_dataset():
    """8 items at 32² (matches MICRO_SETS)."""
    return MemoryDataset(count=8, resolution=32)


@pytest.fixture
def micro_sets():
    return list(MICRO_SETS)



def write_memory_dataset(out, ds: MemoryDataset, head_data):
    """Write a MemoryDataset in the dataset format (for the command-line and torchrun tests)."""
    with DatasetWriter(out, resolution=ds.resolution, source={"tool": "tests"}, **head_identity(head_data)) as writer:
        for i in range(len(ds)):
            it = ds[i]
            writer.add(it["image"].permute(1, 2, 0).numpy(), camera=it["camera"].numpy(),
                       flame={k: v.numpy() for k, v in it["flame"].items()},
                       landmarks_2d=np.full((68, 2), ds.resolution / 2, np.float32))
    return out


@pytest.fixture(scope="session")
def micro_dataset_dir(tmp_path_factory, micro_dataset, head_data):
    """micro_dataset written to a folder (dataset.json + images)."""
    return write_memory_dataset(tmp_path_factory.mktemp("micro") / "data", micro_dataset, head_data)
