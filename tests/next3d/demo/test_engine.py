"""DemoEngine: cached planes equal the generator's, what is reused per change, renders equal
`next3d generate`, PNG and PLY export."""

import numpy as np
import pytest
import torch
from PIL import Image

from next3d.demo.controls import DemoControls, DemoError
from next3d.demo.engine import DemoEngine, _LRU
from next3d.generate import GenerateOptions, generate
from next3d.image_io import to_uint8
from next3d.render.density_grid import read_ply


def test_lru_evicts_least_recent():
    lru = _LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert "b" not in lru and lru.get("a") == 1 and lru.get("c") == 3 and len(lru) == 2
    with pytest.raises(ValueError, match="capacity"):
        _LRU(0)


@torch.no_grad()
def test_cached_planes_equal_synthesize_planes(tiny_engine):
    c = DemoControls(seed=5, expression=(1.0, -0.5), jaw_open=12, neck_yaw=10, gaze_pitch=5)
    ident, _ = tiny_engine.identity(c)
    mesh = tiny_engine.head_mesh(c)
    expected = tiny_engine.G.synthesize_planes(ident.ws, mesh, noise_mode="const")
    got = tiny_engine.blend_planes(ident, mesh)
    assert got.shape == expected.shape == (1, 3, tiny_engine.G.config.plane_channels, 64, 64)
    assert torch.equal(got, expected)


def test_render_matches_generate_and_reuses_by_change(tiny_engine):
    engine = DemoEngine(tiny_engine.G, "random:tiny", trained=False)  # fresh caches
    c = DemoControls(seed=11, jaw_open=15, expression=(0.8,))
    first = engine.render(c)
    assert first.reused == "nothing"
    assert first.image.shape == (64, 64, 3) and first.image.dtype == np.uint8
    assert first.depth.shape == (64, 64) and first.depth_raw.shape == (1, 32, 32)
    # The same pixels as `next3d generate` for the same seed, face and (frontal) camera.
    out = next(generate(engine.G, [11], c.flame_params(engine.num_expression), GenerateOptions(views=1)))
    assert np.array_equal(to_uint8(out.images[0]), first.image)

    moved = engine.render(c.replace(yaw=25))
    assert moved.reused == "planes"
    assert np.abs(moved.image.astype(int) - first.image).mean() > 1.0  # the view changed
    face = engine.render(c.replace(jaw_open=30))
    assert face.reused == "identity"
    assert engine.render(c.replace(seed=12)).reused == "nothing"
    # Back to the first controls: all from the cache, identical pixels.
    again = engine.render(c)
    assert again.reused == "planes" and np.array_equal(again.image, first.image)

    # Depth: inside the renderer's range, shown near = white.
    r = engine.G.config.render
    assert r.ray_start - 1e-4 <= float(first.depth_raw.min()) <= float(first.depth_raw.max()) <= r.ray_end + 1e-4


def test_bad_controls_for_this_head(tiny_engine):
    c = DemoControls(expression=tuple([0.1] * (tiny_engine.num_expression + 1)))
    with pytest.raises(DemoError, match="components given but this head model has"):
        tiny_engine.render(c)


def test_png_and_ply_export(tiny_engine, tmp_path):
    c = DemoControls(seed=2)
    frame = tiny_engine.render(c)
    image_path, depth_path = tiny_engine.save_png(frame, tmp_path)
    assert np.array_equal(np.asarray(Image.open(image_path)), frame.image)
    assert np.array_equal(np.asarray(Image.open(depth_path)), frame.depth)
    assert image_path.name.startswith("seed0002-") and depth_path.name.endswith("_depth.png")

    with pytest.raises(DemoError, match=r"mesh: density spans \[.*\] and never crosses the level 1000"):
        tiny_engine.save_ply(c, tmp_path, resolution=16, level=1000.0)
    path, n_v, n_f, (lo, hi) = tiny_engine.save_ply(c, tmp_path, resolution=24, level=0.0)
    assert lo < 0.0 < hi and n_f > 0
    vertices, faces = read_ply(path)
    assert vertices.shape == (n_v, 3) and faces.shape == (n_f, 3)
    half = tiny_engine.G.config.render.box_warp / 2
    assert float(np.abs(vertices).max()) <= half + 1e-5  # inside the renderer's box
    assert not list(tmp_path.glob(".tmp-*"))  # no half-written file left
    with pytest.raises(DemoError, match="mesh resolution: 4 is outside 8..256"):
        tiny_engine.save_ply(c, tmp_path, resolution=4)
    # No level: the density where this view's rays end (generate's auto level), inside the σ range.
    level = tiny_engine.surface_level(c)
    (tmp_path / "auto").mkdir()
    auto_path, _, auto_faces, (lo2, hi2) = tiny_engine.save_ply(c, tmp_path / "auto", resolution=24)
    assert lo2 < level < hi2 and auto_faces > 0 and auto_path.exists()
