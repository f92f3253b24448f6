"""README pictures (next3d.pretrained.pictures) on an untrained tiny generator: layout and values."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from next3d.generate import GenerateOptions, generate, load_generator
from next3d.pretrained.pictures import expression_sweep, multiview_grid, save_png


@pytest.fixture(scope="module")
def G():
    return load_generator("random:tiny")


def test_grid_rows_are_seeds_and_columns_views(G, tmp_path):
    grid = multiview_grid(G, [3], views=2, yaw_range=0.5)
    assert grid.shape == (64, 128, 3) and grid.dtype == np.uint8
    ref = next(iter(generate(G, [3], None, GenerateOptions(views=2, yaw_range=0.5)))).images
    want = ((ref.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    assert np.array_equal(grid[:, :64], want[0]) and np.array_equal(grid[:, 64:], want[1])
    path = save_png(grid, tmp_path / "grid.png")
    assert np.array_equal(np.asarray(Image.open(path)), grid) and not list(tmp_path.glob(".*"))


def test_jaw_sweep_changes_the_mouth_columns(G):
    sweep = expression_sweep(G, seed=1, steps=2, kinds=("jaw",))
    assert sweep.shape == (64, 128, 3)
    assert np.abs(sweep[:, :64].astype(int) - sweep[:, 64:].astype(int)).mean() > 0
    with pytest.raises(ValueError, match="steps must be at least 2"):
        expression_sweep(G, steps=1)


def test_mesh_views_pair_each_image_row_with_its_shaded_mesh(G):
    from next3d.pretrained.pictures import mesh_views

    pic = mesh_views(G, [3], views=2, yaw_range=0.5, shape_res=24)
    assert pic.shape == (128, 128, 3) and pic.dtype == np.uint8
    assert np.array_equal(pic[:64], multiview_grid(G, [3], views=2, yaw_range=0.5))
    shaded = pic[64:].astype(int)
    assert (shaded == 0).all(-1).any(), "no background pixel in the mesh row"
    assert (shaded > 0).all(-1).mean() > 0.05, "the mesh covers almost nothing"
    assert np.array_equal(shaded[..., 0], shaded[..., 2]), "the mesh rendering is grey"
    with pytest.raises(ValueError, match="no surface at sigma"):
        mesh_views(G, [3], views=1, shape_res=8, level=1e6)
