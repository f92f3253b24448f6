"""The Photo tab's library side: a synthetic face photo -> crop, overlay, fitted jaw as controls;
non-images and faceless images are one-line errors naming the upload."""

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("dlib")
pytest.importorskip("next3d.fitting")

from next3d.demo.controls import DemoControls, DemoError  # noqa: E402


@pytest.fixture(scope="module")
def fitter(synthetic_photo):
    from next3d.demo.photo import PhotoFitter

    return PhotoFitter(synthetic_photo[1], full_iters=60)


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
