"""The dlib detector on synthetic renders; several faces, no face, huge images."""

from __future__ import annotations

import numpy as np
import pytest

from next3d.fitting.detect import FaceTooSmallError, NoFaceError, face_models_dir
from next3d.render.cameras import project
from next3d.render.triplane_coords import flame_to_world


def test_model_folder_found_without_importing_the_package():
    assert (face_models_dir() / "shape_predictor_68_face_landmarks.dat").is_file()


def test_landmarks_on_a_render_near_the_model_landmarks(detector, face_render, flame):
    import torch

    img, c = face_render
    det = detector.detect(img)
    assert det.landmarks.shape == (68, 2) and det.num_faces == 1 and det.face_index == 0
    with torch.no_grad():
        lmk = flame(jaw=torch.tensor([[0.15, 0.0, 0.0]])).landmarks
    truth = project(flame_to_world(lmk), c)[0, :, :2].numpy() * 256
    inner = np.linalg.norm(det.landmarks[17:] - truth[17:], axis=1)
    # dlib on a grey render of the built-in head: the inner-face points agree to a few pixels of 256.
    assert np.median(inner) < 6.0


def test_no_face_grey_and_noise(detector):
    with pytest.raises(NoFaceError, match="grey.png: no face found"):
        detector.detect(np.full((200, 200, 3), 128, np.uint8), what="grey.png")
    noise = np.random.RandomState(0).randint(0, 256, (240, 240, 3)).astype(np.uint8)
    with pytest.raises(NoFaceError, match="no face"):
        detector.detect(noise)


def test_largest_face_first_and_face_k(detector, face_render):
    from PIL import Image

    img, _ = face_render
    small = np.asarray(Image.fromarray(img).resize((160, 160), Image.BILINEAR))
    canvas = np.full((300, 460, 3), 110, np.uint8)
    canvas[20:276, 10:266] = img
    canvas[60:220, 290:450] = small
    first = detector.detect(canvas)
    second = detector.detect(canvas, face=1)
    assert first.num_faces == 2 and first.landmarks[:, 0].mean() < 266 and second.landmarks[:, 0].mean() > 290
    with pytest.raises(NoFaceError, match="face 2 requested but only 2 face"):
        detector.detect(canvas, face=2)


def test_huge_image_is_downscaled_for_detection(detector, face_render):
    from PIL import Image

    img, _ = face_render
    big = np.asarray(Image.fromarray(img).resize((1200, 1200), Image.BILINEAR))
    det_big = type(detector).__new__(type(detector))
    det_big.__dict__.update(detector.__dict__)
    det_big.detect_max_side = 300  # forces a 4x downscale before detection
    det = det_big.detect(big)
    ref = detector.detect(img)
    # Same landmarks up to the scale (predictor runs at full resolution inside the scaled-back box).
    assert np.median(np.linalg.norm(det.landmarks / (1200 / 256) - ref.landmarks, axis=1)) < 3.0


def test_face_too_small(detector, face_render):
    img, _ = face_render
    strict = type(detector).__new__(type(detector))
    strict.__dict__.update(detector.__dict__)
    strict.min_face = 400
    with pytest.raises(FaceTooSmallError, match="face too small"):
        strict.detect(img)


def test_rejects_non_rgb_arrays(detector):
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 RGB array"):
        detector.detect(np.zeros((50, 50), np.uint8))
