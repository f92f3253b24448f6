"""`next3d flame render`: writes a shaded PNG of the head; clear errors for bad options."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

flame_commands = pytest.importorskip("next3d.cli.flame")


def _invoke(args):
    return CliRunner().invoke(flame_commands.flame, ["render"] + args)


def test_render_writes_shaded_png(tmp_path):
    out = tmp_path / "preview.png"
    res = _invoke(["--out", str(out), "--size", "48", "--yaw", "0.4", "--jaw-open", "0.2"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "48x48" in res.output
    img = np.asarray(Image.open(out))
    assert img.shape == (48, 48, 3)
    head = img.max(-1) > 0
    assert 0.15 < head.mean() < 0.8, "the head fills a sensible part of the image"
    assert (img[..., 0] == img[..., 1]).all(), "shading is grey"
    assert img[head].std() > 10, "shading varies over the surface"
    assert not head[:, 0].any() or head[:, 0].mean() < 0.5


def test_render_normals_and_yaw_changes_the_image(tmp_path):
    a, b, n = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "n.png"
    assert _invoke(["--out", str(a), "--size", "32"]).exit_code == 0
    assert _invoke(["--out", str(b), "--size", "32", "--yaw", "1.2"]).exit_code == 0
    res = _invoke(["--out", str(n), "--size", "32", "--normals"])
    assert res.exit_code == 0, res.output
    img_a, img_b, img_n = (np.asarray(Image.open(p)).astype(int) for p in (a, b, n))
    assert np.abs(img_a - img_b).mean() > 5
    assert np.abs(img_n[..., 0] - img_n[..., 2]).max() > 50, "normal map is coloured"


def test_render_bad_options(tmp_path):
    res = _invoke(["--out", str(tmp_path / "missing" / "x.png")])
    assert res.exit_code != 0 and "folder" in res.output and "does not exist" in res.output
    res = _invoke(["--out", str(tmp_path / "x.png"), "--size", "4"])
    assert res.exit_code != 0 and "--size" in res.output
    res = _invoke(["--out", str(tmp_path / "x.png"), "--shape", "a,b"])
    assert res.exit_code != 0 and "comma-separated numbers" in res.output


def test_render_is_in_the_flame_group_help():
    res = CliRunner().invoke(flame_commands.flame, ["--help"])
    assert res.exit_code == 0 and "render" in res.output
    res = _invoke(["--help"])
    assert "--yaw" in res.output and "--flame-dir" in res.output and "--size" in res.output
