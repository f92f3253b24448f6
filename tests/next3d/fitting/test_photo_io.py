"""Reading photos: formats, modes, orientation and bad files give arrays or one clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from next3d.fitting import photo_io
from next3d.fitting.photo_io import PhotoError, read_photo


def _save(tmp_path, name, pil, **kw):
    path = tmp_path / name
    pil.save(path, **kw)
    return path


def test_rgb_grey_rgba_palette(tmp_path):
    rgb = np.random.RandomState(0).randint(0, 255, (40, 50, 3)).astype(np.uint8)
    out = read_photo(_save(tmp_path, "a.png", Image.fromarray(rgb)))
    assert out.dtype == np.uint8 and out.shape == (40, 50, 3) and np.array_equal(out, rgb)
    grey = read_photo(_save(tmp_path, "g.png", Image.fromarray(rgb[..., 0])))
    assert grey.shape == (40, 50, 3) and np.array_equal(grey[..., 1], rgb[..., 0])
    rgba = np.concatenate([rgb, np.zeros((40, 50, 1), np.uint8)], axis=2)
    rgba[:20, :, 3] = 255
    out = read_photo(_save(tmp_path, "t.png", Image.fromarray(rgba, "RGBA")))
    assert np.array_equal(out[:20], rgb[:20]) and (out[20:] == 255).all()  # transparent -> white
    pal = Image.fromarray(rgb).convert("P")
    assert read_photo(_save(tmp_path, "p.png", pal)).shape == (40, 50, 3)


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    ramp = (np.linspace(0, 65535, 64 * 40).reshape(40, 64)).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    out = read_photo(path)
    assert out.shape == (40, 64, 3)
    expected = np.round(ramp.astype(np.float64) / 65535 * 255)
    assert np.abs(out[..., 0].astype(np.float64) - expected).max() <= 1
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255 and 100 < out[20, 32, 0] < 155


def test_exif_rotation_applied(tmp_path):
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :10] = 255  # a white stripe on the left
    pil = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs 90 degrees clockwise
    path = tmp_path / "rot.jpg"
    pil.save(path, exif=exif.tobytes(), quality=95)
    out = read_photo(path)
    assert out.shape == (60, 40, 3)  # upright: height and width swapped
    assert out[:10].mean() > 200 and out[20:].mean() < 30  # the left stripe is now on top


@pytest.mark.parametrize("content, match", [
    (b"", "empty file"),
    (b"this is not an image at all", "not an image file"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not"),
])
def test_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(PhotoError, match=match) as exc:
        read_photo(path)
    assert str(path) in str(exc.value)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.RandomState(1).randint(0, 255, (200, 200, 3)).astype(np.uint8)).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[:600])
    with pytest.raises(PhotoError, match="cut.jpg: not a readable image"):
        read_photo(path)


def test_missing_tiny_and_huge(tmp_path, monkeypatch):
    with pytest.raises(PhotoError, match="no such file"):
        read_photo(tmp_path / "nope.jpg")
    tiny = _save(tmp_path, "tiny.png", Image.new("RGB", (20, 100)))
    with pytest.raises(PhotoError, match=r"too small \(20x100 px"):
        read_photo(tiny)
    monkeypatch.setattr(photo_io, "MAX_PIXELS", 1000)
    big = _save(tmp_path, "big.png", Image.new("RGB", (100, 100)))
    with pytest.raises(PhotoError, match="image too large"):
        read_photo(big)


def test_bytes_source_names_the_member():
    with pytest.raises(PhotoError, match="photos/x.jpg: not an image"):
        read_photo(b"nonsense", name="photos/x.jpg")
