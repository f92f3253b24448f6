"""The photometric stage: SH basis, face-region mask, and on a photographic synthetic render (the truth
known) a camera knocked 4 degrees off is pulled back by the pixels alone (landmark term off)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from next3d.fitting import camera_frame
from next3d.fitting.landmark_fit import FitConfig, FitResult, POSE_NAMES
from next3d.fitting.photometric import (PhotometricConfig, face_region_masks, load_photometric_model,
                                        refine_photometric, sh_basis)

RES = 64


def test_sh_basis_is_orthonormal():
    g = torch.Generator().manual_seed(0)
    n = torch.nn.functional.normalize(torch.randn(40000, 3, generator=g, dtype=torch.float64), dim=1)
    y = sh_basis(n)
    gram = 4 * math.pi * (y.T @ y) / n.shape[0]  # Monte Carlo integral over the sphere
    torch.testing.assert_close(gram, torch.eye(9, dtype=torch.float64), atol=0.06, rtol=0)
    assert float(sh_basis(torch.tensor([0.0, 0.0, 1.0]))[6]) == pytest.approx(0.315392 * 2)


def test_face_region_mask_is_the_landmark_outline():
    # A square outline: contour along three sides, brows along the top, in a 100 px image.
    lm = np.zeros((1, 68, 2))
    lm[0, :17] = np.stack([np.r_[np.full(6, 20.0), np.linspace(20, 80, 5), np.full(6, 80.0)],
                           np.r_[np.linspace(20, 80, 6), np.full(5, 80.0), np.linspace(80, 20, 6)]], 1)
    lm[0, 17:27] = np.stack([np.linspace(20, 80, 10), np.full(10, 20.0)], 1)
    mask = face_region_masks(lm, np.array([100]), 50)[0]
    assert mask.shape == (50, 50) and mask.dtype == torch.bool
    assert bool(mask[25, 25]) and not bool(mask[5, 25]) and not bool(mask[25, 45])
    assert abs(int(mask.sum()) - 30 * 30) <= 2 * 30 + 2  # the square 10..40 of the 50 px mask


@pytest.fixture(scope="module")
def scene_render():
    from next3d.synthetic.distributions import SynthDistributions
    from next3d.synthetic.head import load_head_assets
    from next3d.synthetic.render import render_scene
    from next3d.synthetic.scene import sample_scene

    assets = load_head_assets(None)
    scene = sample_scene(SynthDistributions(), assets, seed=11, index=3)
    scene.flame["neck"] = np.zeros(3, np.float32)
    return render_scene(assets, scene, RES, supersample=1, shadows=False)


def _init(item, rot_offset):
    """A FitResult at the truth, its camera rotated by `rot_offset` (axis-angle, radians)."""
    c = torch.tensor(item.camera[None])
    rot, trans = camera_frame.camera_params_from_label(c.double())
    cam = camera_frame.camera_label((rot + torch.tensor([rot_offset], dtype=torch.float64)).float(), trans.float())
    flame = {k: torch.tensor(item.flame[k][None]) for k in ("shape", "expression", *POSE_NAMES)}
    z = torch.zeros(1)
    return FitResult(cameras=cam, flame=flame, landmarks_2d=torch.tensor(item.landmarks_2d[None]), error_px=z,
                     error_frac=z, angles=camera_frame.camera_angles(cam)), c


def test_pixels_pull_a_rotated_camera_back(scene_render, flame):
    item = scene_render
    init, truth = _init(item, (0.05, -0.045, 0.0))
    before = float(camera_frame.rotation_error_deg(init.cameras, truth))
    assert 3.5 < before < 4.5
    cfg = PhotometricConfig(resolution=RES, light_iters=20, iters=40, landmark_weight=0.0, lr=0.004)
    model = load_photometric_model(None)
    out = refine_photometric(item.image[None], torch.tensor(item.landmarks_2d[None]), init, flame, model.basis,
                             model.uv_corners, model.face_class, cfg, FitConfig(fit_shape=False))
    after = float(camera_frame.rotation_error_deg(out.fit.cameras, truth))
    assert after < 0.5 * before, (before, after)
    assert float(out.photo_error_after[0]) < float(out.photo_error_before[0])
    assert out.render.shape == (1, 3, RES, RES) and out.sh.shape == (1, 9, 3)
    assert int(out.mask.sum()) > 0.15 * RES * RES  # the face region is a good part of the crop
    # The fitted albedo x lighting reproduces the skin: mean colour error < 0.04 (linear RGB).
    assert float(out.photo_error_after[0]) < 0.04
