"""The landmark fit on synthetic landmarks (the truth known): camera and jaw recovered, deterministic,
items independent, the temporal prior smooths, bad input refused."""

from __future__ import annotations

import math

import pytest
import torch

from next3d.fitting import camera_frame
from next3d.fitting.landmark_fit import FitConfig, fit_landmarks, project_landmarks
from next3d.fitting.landmark_head import LandmarkHead, contour_rows
from next3d.render.cameras import orbit_label

CONFIG = FitConfig(rigid_iters=30, full_iters=100)
RES = 512


def synthetic(flame, n, seed=0, noise_px=0.0):
    """Sampled FLAME parameters and cameras -> (landmarks (n, 68, 2) px, camera labels, jaw (n, 3))."""
    g = torch.Generator().manual_seed(seed)
    shape = torch.randn(n, flame.num_shape, generator=g) * 0.5
    expr = torch.randn(n, flame.num_expression, generator=g) * 0.5
    jaw = torch.zeros(n, 3)
    jaw[:, 0] = torch.rand(n, generator=g) * 0.3
    yaw = (torch.rand(n, generator=g) * 2 - 1) * math.radians(35)
    pitch = (torch.rand(n, generator=g) * 2 - 1) * math.radians(15)
    rot, trans = camera_frame.camera_params_from_label(orbit_label(yaw, pitch))
    trans = trans + torch.randn(n, 3, generator=g) * torch.tensor([0.02, 0.02, 0.1])
    c = camera_frame.camera_label(rot, trans)
    pose = torch.zeros(n, 15)
    pose[:, 6:9] = jaw
    lmk = LandmarkHead(flame)(shape, expr, pose, contour_rows(camera_frame.head_rotation(c)))
    px = project_landmarks(lmk, c) * RES
    px = px + noise_px * torch.randn(px.shape, generator=g)
    return px, c, jaw


@pytest.fixture(scope="module")
def problem(flame):
    px, c, jaw = synthetic(flame, 6, seed=0)
    return px, c, jaw, fit_landmarks(px, RES, flame, CONFIG)


def test_recovers_camera_and_jaw(problem):
    px, c, jaw, res = problem
    assert res.cameras.shape == (6, 25) and res.landmarks_2d.shape == (6, 68, 2)
    assert set(res.flame) == {"shape", "expression", "neck", "jaw", "left_eye", "right_eye"}
    rot_err = camera_frame.rotation_error_deg(res.cameras, c)
    assert float(rot_err.median()) < 3.0 and float(rot_err.max()) < 6.0
    assert float(res.error_frac.median()) < 0.005  # < 0.5 % of the crop on noise-free landmarks
    torch.testing.assert_close(res.error_px, (res.landmarks_2d - px).norm(dim=-1).mean(1))
    jaw_err = (res.flame["jaw"][:, 0] - jaw[:, 0]).abs()
    assert float(jaw_err.median()) < math.radians(3)
    # Intrinsics stay FFHQ's; camera positions near the truth (world units, orbit radius 2.7).
    torch.testing.assert_close(res.cameras[:, 16:], c[:, 16:])
    assert float((res.cameras[:, [3, 7, 11]] - c[:, [3, 7, 11]]).norm(dim=1).median()) < 0.25
    yaw_true = camera_frame.camera_angles(c)[:, 0]
    assert float((res.angles[:, 0] - yaw_true).abs().max()) < 5.0


def test_deterministic_and_items_independent(problem, flame):
    px, _, _, res = problem
    again = fit_landmarks(px, RES, flame, CONFIG)
    assert torch.equal(again.cameras, res.cameras) and torch.equal(again.flame["expression"], res.flame["expression"])
    alone = fit_landmarks(px[2:3], RES, flame, CONFIG)
    torch.testing.assert_close(alone.cameras[0], res.cameras[2], atol=2e-3, rtol=0)


def test_image_size_scales_out(problem, flame):
    px, _, _, res = problem
    half = fit_landmarks(px[:2] / 2, RES // 2, flame, CONFIG)
    torch.testing.assert_close(half.cameras, res.cameras[:2], atol=2e-3, rtol=0)
    torch.testing.assert_close(half.error_px * 2, res.error_px[:2], atol=0.05, rtol=0)


def test_temporal_prior_smooths_a_sequence(flame):
    px, _, _ = synthetic(flame, 1, seed=4)
    g = torch.Generator().manual_seed(5)
    seq = px.expand(6, -1, -1) + 1.5 * torch.randn(6, 68, 2, generator=g)  # one pose, jittery detections
    cfg = FitConfig(rigid_iters=20, full_iters=60)
    free = fit_landmarks(seq, RES, flame, cfg)
    smooth = fit_landmarks(seq, RES, flame, cfg, temporal_weight=50.0)

    def jitter(r):
        return float((r.cameras[1:] - r.cameras[:-1]).abs().sum() + (r.flame["expression"][1:]
                                                                     - r.flame["expression"][:-1]).abs().sum())

    assert jitter(smooth) < 0.5 * jitter(free)


def test_bad_input(flame):
    with pytest.raises(Exception, match="landmarks_2d"):
        fit_landmarks(torch.zeros(2, 5, 2), RES, flame, CONFIG)
    bad = torch.zeros(1, 68, 2)
    bad[0, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fit_landmarks(bad, RES, flame, CONFIG)
    with pytest.raises(ValueError, match="image_size"):
        fit_landmarks(torch.zeros(2, 68, 2) + 100, [512, 512, 512], flame, CONFIG)
