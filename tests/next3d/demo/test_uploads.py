"""Upload checks: size limits, empty and missing files, non-images."""

import numpy as np
import pytest
from PIL import Image

from next3d.demo.controls import DemoError
from next3d.demo.uploads import parse_size, read_uploaded_image, uploaded_file


def test_parse_size():
    assert parse_size("10mb") == 10 * 1024 ** 2
    assert parse_size("512KB") == 512 * 1024
    assert parse_size(1000) == 1000
    for bad in ("lots", "-1mb", 0, "mb"):
        with pytest.raises(DemoError, match="max upload size"):
            parse_size(bad)


def test_uploaded_file_limits(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2000)
    assert uploaded_file(big, "photo", max_bytes=2000) == big
    with pytest.raises(DemoError, match="photo big.bin: 0.0 MB is larger than the limit"):
        uploaded_file(big, "photo", max_bytes=1999)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DemoError, match="photo empty.png: the file is empty"):
        uploaded_file(empty, "photo")
    with pytest.raises(DemoError, match="photo: no file uploaded"):
        uploaded_file(None, "photo")
    with pytest.raises(DemoError, match="photo gone.png: the upload is gone"):
        uploaded_file(tmp_path / "gone.png", "photo")


def test_read_uploaded_image(tmp_path):
    arr = np.zeros((6, 5, 3), np.uint8)
    arr[..., 0] = 255
    Image.fromarray(arr).save(tmp_path / "red.png")
    img = read_uploaded_image(tmp_path / "red.png")
    assert img.shape == (3, 6, 5) and float(img[0].min()) == 1.0 and float(img[1].max()) == -1.0
    (tmp_path / "notes.png").write_text("not an image at all")
    with pytest.raises(DemoError, match="photo notes.png: not an image this demo can read") as info:
        read_uploaded_image(tmp_path / "notes.png")
    assert str(tmp_path) not in str(info.value)
