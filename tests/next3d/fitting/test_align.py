"""The published crop: a hand-computed case, the recorded transform, crop / paste-back round trips."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import eye_line_angle_deg

from next3d.fitting.align import (LM3D_STD, AlignmentError, crop_image, crop_transform, eg3d_crop_transform,
                                  ffhq_align_matrix, five_points, paste_back, pos_fit, transform_points)


def _landmarks_for(five_idx: np.ndarray) -> np.ndarray:
    """68 landmarks (corner-origin pixels) whose five alignment points are `five_idx` (pixel-index coords)."""
    lm = np.full((68, 2), 400.0)
    pts = five_idx + 0.5
    lm[36] = lm[39] = pts[0]
    lm[42] = lm[45] = pts[1]
    lm[30], lm[48], lm[54] = pts[2], pts[3], pts[4]
    return lm


def test_published_crop_hand_computed():
    # Five points exactly a * standard face + t in the published y-up index frame of a 1000 x 1000 photo:
    # a = 90, t = (523.4, 487.9). By hand: s = 300 / 90 = 3.333..; w = h = int(1000 s) = 3333;
    # left = int(3333/2 - 512 + (523.4 - 500) s) = int(1154.5 + 78) = 1232;
    # up = int(3333/2 - 512 + (500 - 487.9) s) = int(1154.5 + 40.33) = 1194; centre-crop offset int(512 - 350) = 162;
    # so x_crop = 512/700 (3.333 x - 1394), y_crop = 512/700 (3.333 y - 1356) (corner-origin pixels).
    a, t = 90.0, np.array([523.4, 487.9])
    up = LM3D_STD[:, :2] * a + t
    idx = np.stack([up[:, 0], 1000 - 1 - up[:, 1]], axis=1)
    tf = eg3d_crop_transform(_landmarks_for(idx), (1000, 1000), 512)
    k = 512 / 700
    expected = np.array([[3.333 * k, 0, -1394 * k], [0, 3.333 * k, -1356 * k], [0, 0, 1]])
    np.testing.assert_allclose(tf.matrix, expected, rtol=0, atol=1e-9)
    assert tf.resolution == 512 and tf.photo_size == (1000, 1000)
    np.testing.assert_allclose(tf.scale, 3.333 * k)


def test_pos_fit_recovers_scale_and_translation():
    pts = LM3D_STD[:, :2] * 37.5 + np.array([10.0, -4.0])
    t, s = pos_fit(pts)
    np.testing.assert_allclose(s, 37.5, rtol=1e-12)
    np.testing.assert_allclose(t, [10.0, -4.0], atol=1e-9)


def test_five_points_and_bad_shapes():
    lm = np.arange(136, dtype=np.float64).reshape(68, 2)
    five = five_points(lm)
    np.testing.assert_allclose(five[0], (lm[36] + lm[39]) / 2)
    np.testing.assert_allclose(five[2], lm[30])
    np.testing.assert_allclose(five[4], lm[54])
    with pytest.raises(AlignmentError, match=r"expected shape \(68, 2\), got \(5, 2\)"):
        five_points(np.zeros((5, 2)))
    with pytest.raises(AlignmentError, match="degenerate"):
        eg3d_crop_transform(np.full((68, 2), 100.0), (300, 300), 256)


def _smooth_photo(h=300, w=360):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(xx / 23), 128 + 100 * np.cos(yy / 31), (xx + yy) / (h + w) * 255], axis=2)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_crop_then_paste_back_round_trips():
    photo = _smooth_photo()
    idx = np.stack([LM3D_STD[:, 0] * 90 + 180, 300 - 1 - (LM3D_STD[:, 1] * 90 + 140)], axis=1)
    tf = eg3d_crop_transform(_landmarks_for(idx), (360, 300), 256)
    pts = np.array([[10.0, 20.0], [180.0, 150.0], [359.0, 299.0]])
    np.testing.assert_allclose(transform_points(tf.inverse, transform_points(tf.matrix, pts)), pts, atol=1e-9)
    crop = crop_image(photo, tf)
    assert crop.shape == (256, 256, 3)
    back = paste_back(crop, tf, photo)
    # Inside the crop's footprint (away from its border) the paste-back reproduces the photo.
    corners = transform_points(tf.inverse, np.array([[0.0, 0.0], [256.0, 256.0]]))
    x0, y0 = np.ceil(corners[0]).astype(int) + 3
    x1, y1 = np.floor(corners[1]).astype(int) - 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, 360), min(y1, 300)
    assert x1 - x0 > 100 and y1 - y0 > 100
    diff = np.abs(back[y0:y1, x0:x1].astype(int) - photo[y0:y1, x0:x1].astype(int))
    assert diff.mean() < 1.5 and np.percentile(diff, 99) <= 6
    # Outside the footprint the photo is kept unchanged.
    outside = np.ones((300, 360), bool)
    r0, r1 = max(int(corners[0][1]) - 2, 0), int(corners[1][1]) + 2
    c0, c1 = max(int(corners[0][0]) - 2, 0), int(corners[1][0]) + 2
    outside[r0:r1, c0:c1] = False
    assert np.array_equal(back[outside], photo[outside])


def test_crop_samples_where_the_matrix_says():
    photo = np.zeros((200, 200, 3), np.uint8)
    photo[100, 60] = 255  # pixel centre (60.5, 100.5)
    idx = np.stack([LM3D_STD[:, 0] * 60 + 100, 200 - 1 - (LM3D_STD[:, 1] * 60 + 100)], axis=1)
    tf = eg3d_crop_transform(_landmarks_for(idx), (200, 200), 512)
    crop = crop_image(photo, tf)
    x, y = transform_points(tf.matrix, np.array([[60.5, 100.5]]))[0]
    peak = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    assert abs(peak[1] + 0.5 - x) <= 1.0 and abs(peak[0] + 0.5 - y) <= 1.0


def test_crop_size_mismatch():
    tf = eg3d_crop_transform(_landmarks_for(np.stack([LM3D_STD[:, 0] * 60 + 100, 100 - LM3D_STD[:, 1] * 60], 1)),
                             (200, 200), 64)
    with pytest.raises(AlignmentError, match="made for 200x200"):
        crop_image(np.zeros((100, 100, 3), np.uint8), tf)


def _eyes_mouth(left_eye, right_eye, mouth_l, mouth_r, rest=(400.0, 400.0)) -> np.ndarray:
    lm = np.tile(np.asarray(rest, dtype=np.float64), (68, 1))
    lm[36:42], lm[42:48], lm[48], lm[54] = left_eye, right_eye, mouth_l, mouth_r
    lm[30] = (np.asarray(left_eye) + np.asarray(right_eye)) / 2 + [0.0, 60.0]  # nose tip, for the EG3D part
    return lm


def test_ffhq_alignment_hand_computed():
    # Eyes (400, 500), (600, 500); mouth corners (450, 700), (550, 700): eye_to_eye (200, 0), eye_to_mouth
    # (0, 200); x = (200, 0) - (-200, 0) = (400, 0), |x| = max(2 * 200, 1.8 * 200) = 400; y = (0, 400);
    # centre (500, 500 + 20). The square from (100, 120) to (900, 920) becomes 0..1024: scale 1.28.
    lm = _eyes_mouth((400, 500), (600, 500), (450, 700), (550, 700))
    expected = np.array([[1.28, 0, -128.0], [0, 1.28, -153.6], [0, 0, 1]])
    np.testing.assert_allclose(ffhq_align_matrix(lm), expected, atol=1e-9)


def _rotate(points: np.ndarray, degrees: float, centre=(500.0, 550.0)) -> np.ndarray:
    a = np.radians(degrees)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points - centre) @ r.T + centre


def test_ffhq_route_levels_a_rolled_head_and_eg3d_keeps_the_roll():
    lm = _eyes_mouth((400, 500), (600, 500), (450, 700), (550, 700))
    rolled = _rotate(lm, 25.0)
    ffhq_flat = transform_points(crop_transform(lm, (1000, 1000), 512, align="ffhq").matrix, lm)
    ffhq_rolled = transform_points(crop_transform(rolled, (1000, 1000), 512, align="ffhq").matrix, rolled)
    # The aligned frame is the same for the rolled head, so the crop sees the same landmarks.
    np.testing.assert_allclose(ffhq_rolled, ffhq_flat, atol=1e-6)
    assert abs(eye_line_angle_deg(ffhq_rolled)) < 1e-6
    eg3d_rolled = transform_points(crop_transform(rolled, (1000, 1000), 512).matrix, rolled)
    assert eye_line_angle_deg(eg3d_rolled) == pytest.approx(25.0, abs=1e-6)
    # Without roll both routes put the face at nearly the same place and size (the EG3D part normalises
    # scale and position; only its integer truncations differ).
    eg3d_flat = transform_points(eg3d_crop_transform(lm, (1000, 1000), 512).matrix, lm)
    assert np.abs(ffhq_flat - eg3d_flat).max() < 2.0
    tf = crop_transform(rolled, (1000, 800), 256, align="ffhq")
    assert tf.photo_size == (1000, 800) and tf.resolution == 256


def test_ffhq_alignment_bad_input():
    with pytest.raises(ValueError, match="align: got 'dlib', expected one of eg3d, ffhq"):
        crop_transform(np.zeros((68, 2)), (100, 100), 64, align="dlib")
    with pytest.raises(AlignmentError, match="degenerate"):
        ffhq_align_matrix(np.full((68, 2), 50.0))
    with pytest.raises(AlignmentError, match=r"expected shape \(68, 2\)"):
        ffhq_align_matrix(np.zeros((5, 2)))
