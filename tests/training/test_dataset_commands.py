"""`next3d dataset check|show|stats` and the lazy registration of `synth` / `from-photos`."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from next3d.cli import main
from training.dataset_report import camera_angles, check_dataset
from training.dataset import ImageDataset


def _run(*args):
    return CliRunner().invoke(main, ["dataset", *map(str, args)])


def test_group_lists_commands_and_lazy_ones(monkeypatch, tmp_path):
    import next3d.cli.dataset as mod

    res = _run("--help")
    assert res.exit_code == 0 and all(c in res.output for c in ("check", "show", "stats"))
    pkg = tmp_path / "fake_synth_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "cmd.py").write_text("import click\n@click.command()\ndef synth():\n    'Fake synth.'\n"
                                "    click.echo('synth ran')\n")
    (pkg / "broken.py").write_text("raise ImportError('needs a package that is not installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(mod, "_LAZY", {"synth": ("fake_synth_pkg.cmd", "synth"),
                                       "from-photos": ("fake_synth_pkg.broken", "from_photos"),
                                       "later": ("fake_synth_pkg.not_written_yet", "later")})
    res = _run("--help")
    assert res.exit_code == 0 and "synth" in res.output and "later" not in res.output
    assert "from-photos" in res.output and "unavailable: ImportError" in res.output
    assert _run("synth").output.strip() == "synth ran"
    res = _run("from-photos")
    assert res.exit_code == 1 and "dataset from-photos: the command failed to load" in res.output
    assert _run("later").exit_code == 2  # no such command (yet)


def test_check_good(folder_set):
    res = _run("check", folder_set)
    assert res.exit_code == 0, res.output
    assert "items: 8 (train 6, test 2)" in res.output and "resolution: 64x64" in res.output
    assert "no problems found" in res.output and "ground truth: 8 of 8 items" in res.output
    yaw = np.degrees(camera_angles(ImageDataset(folder_set, split=None).cameras)["yaw"])
    assert f"yaw: {yaw.min():.1f} .. {yaw.max():.1f} deg" in res.output
    rep = json.loads(_run("check", folder_set, "--json").output)
    assert rep["num_items"] == 8 and len(rep["flame"]["expression"]["mean"]) == 24 and rep["problems"] == []


def test_camera_angles_of_orbit_cameras():
    from next3d.render.cameras import orbit_label

    ang = camera_angles(orbit_label([0.5, -0.2], [0.1, -0.3]).numpy())
    np.testing.assert_allclose(ang["yaw"], [0.5, -0.2], atol=1e-6)
    np.testing.assert_allclose(ang["pitch"], [0.1, -0.3], atol=1e-6)


def test_check_lists_every_problem(folder_set, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(folder_set, bad)
    data = (bad / "images" / "00000002.png").read_bytes()
    (bad / "images" / "00000002.png").write_bytes(data[:100])
    (bad / "gt" / "00000005.npz").unlink()
    Image.new("RGB", (64, 64)).save(bad / "images" / "extra.png")
    doc = json.loads((bad / "dataset.json").read_text())
    doc["items"][6]["camera"][0] = 3.0  # not a rotation any more
    (bad / "dataset.json").write_text(json.dumps(doc))
    res = _run("check", bad)
    assert res.exit_code == 1
    assert "problems (4):" in res.output
    assert "images/00000002.png: truncated PNG" in res.output
    assert "gt/00000005.npz: missing (ground truth of item 5)" in res.output
    assert "1 images not listed in dataset.json (8 items listed, 9 images found)" in res.output
    assert "images/00000006.png: camera rotation is not a rotation" in res.output
    (bad / "dataset.json").write_text("{")
    rep = check_dataset(bad)
    assert not rep.ok and "not valid JSON" in rep.problems[0]


def test_show_draws_landmarks_and_outline(folder_set, tmp_path):
    out = tmp_path / "sheet.png"
    res = _run("show", folder_set, "--out", out, "--count", "4", "--tile", "128")
    assert res.exit_code == 0, res.output
    sheet = np.asarray(Image.open(out))
    assert sheet.shape == (256, 256, 3)
    ds = ImageDataset(folder_set, split=None)
    green = (sheet[..., 1] > 240) & (sheet[..., 0] < 60)
    red = (sheet[..., 0] > 240) & (sheet[..., 1] < 60)
    for n, idx in enumerate([0, 2, 5, 7]):  # evenly spaced over 8 items
        tile = (slice((n // 2) * 128, (n // 2 + 1) * 128), slice((n % 2) * 128, (n % 2 + 1) * 128))
        lmk = ds[idx]["landmarks_2d"].numpy() * 2
        ys, xs = np.nonzero(green[tile])
        assert xs.size > 100, "the mesh outline is drawn"
        # the landmarks lie inside the outline's bounding box, and red dots sit on them
        assert xs.min() < lmk[:, 0].min() and lmk[:, 0].max() < xs.max() and ys.min() < lmk[:, 1].min()
        hit = [red[tile][int(y), int(x)] for x, y in lmk if 0 <= x < 128 and 0 <= y < 128]
        assert np.mean(hit) > 0.8


def test_show_flip_and_stats(folder_set, tmp_path):
    res = _run("show", folder_set, "--out", tmp_path / "f.png", "--count", "2", "--tile", "64", "--flip")
    assert res.exit_code == 0, res.output
    assert "2 of 16 items" in res.output
    res = _run("stats", folder_set, "--out", tmp_path / "s.png")
    assert res.exit_code == 0, res.output
    img = np.asarray(Image.open(tmp_path / "s.png"))
    assert img.shape[1] == 1260 and (img[..., 2] > 150).sum() > 1000  # blue histogram bars
    assert "8 items; yaw" in res.output
    res = _run("stats", folder_set, "--out", tmp_path / "s.jpg")
    assert res.exit_code == 1 and "expected a .png path" in res.output
    res = _run("show", folder_set, "--out", tmp_path / "nowhere" / "s.png")
    assert res.exit_code == 1 and "does not exist" in res.output


def test_show_bad_set_is_a_click_error(tmp_path):
    (tmp_path / "empty").mkdir()
    res = _run("show", tmp_path / "empty", "--out", tmp_path / "x.png")
    assert res.exit_code == 1 and "no dataset.json" in res.output and "Traceback" not in res.output
