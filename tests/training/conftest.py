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
