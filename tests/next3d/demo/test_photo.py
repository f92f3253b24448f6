"""The Photo tab's library side: a synthetic face photo -> crop, overlay, fitted jaw as controls;
non-images and faceless images are one-line errors naming the upload."""

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("dlib")
pytest.importorskip("next3d.fitting")

from next3d.demo.controls import DemoControls, DemoError  # noqa: E402


@pytest.fixture(scope="module")
def synthetic_photo(tmp_path_factory):
    """A shaded render of the built-in head (jaw open 0.15 rad, yaw 0.2) on a grey 360 x 300 canvas, as PNG."""
    from next3d.flame import FLAME, load_flame_model
    from next3d.render.cameras import orbit_label
    from next3d.render.mesh_shading import render_mesh

    flame = FLAME(load_flame_model(None))
    with torch.no_grad():
        verts = flame(jaw=torch.tensor([[0.15, 0.0, 0.0]])).vertices
        rend = render_mesh(verts, flame.faces, orbit_label(0.2, 0.05), 256, rasterize_impl="ref")
    img = ((rend.shaded[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    img[rend.mask[0, 0].numpy() <= 0.5] = 110
    canvas = np.full((300, 360, 3), 110, np.uint8)
    canvas[20:276, 60:316] = img
    path = tmp_path_factory.mktemp("photo") / "synthetic_face.png"
    Image.fromarray(canvas).save(path)
    return path, flame


@pytest.fixture(scope="module")
def fitter(synthetic_photo):
    from next3d.demo.photo import PhotoFitter

    return PhotoFitter(synthetic_photo[1])


def test_fit_gives_crop_overlay_and_controls(fitter, synthetic_photo):
    from next3d.demo.photo import controls_from_fit

    result = fitter.fit(synthetic_photo[0], resolution=128)
    assert result.crop.shape == result.overlay.shape == (128, 128, 3) and result.crop.dtype == np.uint8
    assert np.abs(result.overlay.astype(int) - result.crop).mean() > 2.0  # the overlay draws something
    assert result.camera.shape == (25,) and "synthetic_face.png" in result.summary
    controls, note = controls_from_fit(result, DemoControls(seed=4, yaw=10), num_sliders=8)
    assert controls.seed == 4 and controls.yaw == 10.0  # identity and camera kept
    assert 0.0 < controls.jaw_open <= 40.0 and len(controls.expression) <= 8
    assert abs(controls.jaw_open - np.degrees(0.15)) < 6.0  # the rendered jaw, within a few degrees


def test_bad_photos_are_messages(fitter, tmp_path):
    (tmp_path / "notes.png").write_text("a shopping list, not a photo")
    with pytest.raises(DemoError) as info:
        fitter.fit(tmp_path / "notes.png")
    assert "notes.png" in str(info.value) and str(tmp_path) not in str(info.value)
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(tmp_path / "wall.png")
    with pytest.raises(DemoError, match="wall.png") as info:
        fitter.fit(tmp_path / "wall.png")
    assert "face" in str(info.value).lower()
