"""Photo -> crop -> fit end to end on a synthetic photo; the real photo (skipped without ../shared)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import eye_line_angle_deg

from next3d.fitting import camera_frame
from next3d.fitting.calibrate import load_offsets
from next3d.flame import load_flame_model
from training.dataset_schema import head_identity
from next3d.fitting.landmark_fit import FitConfig
from next3d.fitting.pipeline import PhotoFailure, PhotoFit, fit_prepared, prepare_photo, summary_line, write_fit_folder
from next3d.render.cameras import orbit_label

CONFIG = FitConfig(rigid_iters=30, full_iters=100)


def test_synthetic_photo_end_to_end(detector, face_photo, flame, tmp_path):
    prepared = prepare_photo(face_photo, detector, 256, name="render")
    assert not isinstance(prepared, PhotoFailure)
    assert prepared.crop.shape == (256, 256, 3) and prepared.landmarks.shape == (68, 2)
    (raw,) = fit_prepared([prepared], flame, CONFIG)
    (fit,) = fit_prepared([prepared], flame, CONFIG, landmark_offsets=load_offsets("dlib", head_identity(
        load_flame_model(None))))
    assert isinstance(fit, PhotoFit)
    assert fit.error_px / 256 < 0.015
    # The render's camera was orbit(yaw 0.2, pitch 0.05): the fit finds that rotation (the crop only
    # scales and shifts the image, and the camera sees the same head). Since head v3 the built-in
    # landmarks sit where dlib puts them (measured: 2.1 degrees uncalibrated; v2's ellipse jaw: ~12);
    # the detector calibration still brings the camera closer (0.4 degrees).
    truth = orbit_label(0.2, 0.05)
    err = float(camera_frame.rotation_error_deg(fit.camera[None], truth))
    err_raw = float(camera_frame.rotation_error_deg(raw.camera[None], truth))
    assert err < 1.5 and err < err_raw - 0.5 and err_raw < 5.0
    assert "render: landmark error" in summary_line(fit) and "yaw +" in summary_line(fit)
    folder = write_fit_folder(fit, tmp_path / "render", flame)
    data = json.loads((folder / "fit.json").read_text())
    assert len(data["camera"]) == 25 and np.array(data["landmarks_2d"]).shape == (68, 2)
    assert np.array(data["crop_transform"]["matrix"]).shape == (3, 3)
    from PIL import Image

    assert Image.open(folder / "overlay.png").size == (256, 256)
    assert np.array_equal(np.asarray(Image.open(folder / "crop.png")), prepared.crop)


def test_ffhq_alignment_levels_a_rolled_photo(detector, face_photo):
    from PIL import Image

    rolled = np.asarray(Image.fromarray(face_photo).rotate(20, resample=Image.BICUBIC, fillcolor=(110, 110, 110)))

    eg3d = prepare_photo(rolled, detector, 256, name="rolled")
    ffhq = prepare_photo(rolled, detector, 256, name="rolled", align="ffhq")
    assert not isinstance(eg3d, PhotoFailure) and not isinstance(ffhq, PhotoFailure)
    # PIL rotates counter-clockwise on screen: the eye line tilts by -20 degrees in image coordinates.
    assert eye_line_angle_deg(eg3d.landmarks) == pytest.approx(-20.0, abs=4.0)
    assert abs(eye_line_angle_deg(ffhq.landmarks)) < 4.0
    # Same face size in both crops (inter-ocular distance within 10 %).
    iod = [float(np.linalg.norm(p.landmarks[42:48].mean(0) - p.landmarks[36:42].mean(0))) for p in (eg3d, ffhq)]
    assert iod[1] == pytest.approx(iod[0], rel=0.1)


def test_failures_are_values_not_exceptions(detector, tmp_path):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not a jpeg")
    r = prepare_photo(junk, detector, 256)
    assert isinstance(r, PhotoFailure) and r.stage == "read" and "junk.jpg" in r.message
    r = prepare_photo(np.full((100, 100, 3), 128, np.uint8), detector, 256, name="flat")
    assert isinstance(r, PhotoFailure) and r.stage == "detect" and r.message == "flat: no face found"
    assert summary_line(r) == "flat: skipped (detect): no face found"
    assert fit_prepared([], None) == []


def test_real_photo_fits_dlib_landmarks(detector, flame, shared_dir):
    photo = shared_dir / "photos" / "grace_hopper.jpg"
    if not photo.is_file():
        pytest.skip("../shared/photos is not present")
    prepared = prepare_photo(photo, detector, 512)
    assert not isinstance(prepared, PhotoFailure), prepared
    (fit,) = fit_prepared([prepared], flame, CONFIG)
    dist = np.linalg.norm(fit.fitted_landmarks - prepared.landmarks, axis=1)
    # The fitted model's landmarks re-project onto dlib's: mean within 1.5 % of the crop, inner face tighter.
    assert dist.mean() / 512 < 0.015 and np.median(dist[17:]) / 512 < 0.01
    yaw, pitch, roll = fit.angles
    assert abs(yaw) < 10 and abs(roll) < 10  # a frontal portrait


def test_photometric_stage_in_the_pipeline(detector, face_photo, flame):
    from next3d.fitting.photometric import PhotometricConfig

    prepared = prepare_photo(face_photo, detector, 128, name="render")
    cfg = FitConfig(rigid_iters=20, full_iters=40)
    (plain,) = fit_prepared([prepared], flame, cfg)
    (photo,) = fit_prepared([prepared], flame, cfg, photometric=PhotometricConfig(resolution=48, light_iters=3,
                                                                                  iters=4))
    assert isinstance(photo, PhotoFit) and photo.camera.shape == (25,) and bool(np.isfinite(photo.camera).all())
    moved = float(camera_frame.rotation_error_deg(photo.camera[None], plain.camera[None]))
    assert 0 < moved < 3  # refined from the landmark fit, not replaced
    # The landmarks still re-project near dlib's (the stage keeps the landmark term at a low weight).
    assert photo.error_px / 128 < 0.03 and set(photo.flame) == set(plain.flame)


def test_photometric_flags():
    from click.testing import CliRunner

    from next3d.cli import main

    for args in (["fit", "--help"], ["dataset", "from-photos", "--help"]):
        out = CliRunner().invoke(main, args)
        assert out.exit_code == 0 and "--photometric" in out.output, out.output
