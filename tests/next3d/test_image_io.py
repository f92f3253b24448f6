import os

import pytest
import torch

from next3d.image_io import depth_to_image, load_image, save_image, tile_images


def test_save_load_round_trip(tmp_path):
    img = torch.linspace(-1, 1, 3 * 8 * 10).reshape(3, 8, 10)
    save_image(img, tmp_path / "a.png")
    back = load_image(tmp_path / "a.png")
    assert back.shape == (3, 8, 10)
    assert (back - img).abs().max() <= 1.0 / 127.5 + 1e-6
    assert not list(tmp_path.glob(".tmp-*"))  # atomic write leaves no temporary file
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask  # as a plain open() would create


def test_depth_near_is_white():
    depth = torch.tensor([[[2.5, 3.0]]])
    out = depth_to_image(depth)
    assert out[0, 0, 0] == pytest.approx(1.0) and out[0, 0, 1] == pytest.approx(-1.0)


def test_tile_side_by_side():
    out = tile_images([torch.zeros(3, 4, 5), torch.ones(3, 4, 6)])
    assert out.shape == (3, 4, 11) and out[:, :, 5:].min() == 1


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        load_image(tmp_path / "missing.png")
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="corrupt.png"):
        load_image(bad)
    with pytest.raises(ValueError, match="expected"):
        save_image(torch.zeros(4, 2, 2), tmp_path / "x.png")
