"""Detector calibration: the solver recovers known offsets; the stored dlib offsets belong to this built-in head."""

from __future__ import annotations

import os

import torch

from next3d.fitting import calibrate
from next3d.fitting.landmark_fit import project_landmarks

REGENERATE = os.environ.get("NEXT3D_REGENERATE_CALIBRATION", "") == "1"


def test_solver_recovers_known_offsets(flame):
    params, c = calibrate.calibration_views(flame, 12, seed=3)
    lmk = calibrate.model_landmarks(flame, params, c)
    g = torch.Generator().manual_seed(0)
    truth = calibrate.symmetrise(torch.randn(68, 3, generator=g) * 0.004)
    detected = project_landmarks(lmk + truth, c) * 512
    delta = calibrate.solve_offsets(lmk, c, detected, prior=1e-6, iters=400)
    # x and y (in the image plane) are well determined; depth less so from |yaw| <= 40 degrees.
    assert float((delta - truth)[:, :2].abs().median()) < 5e-4
    assert float((delta - truth).norm(dim=1).median()) < 2e-3


def test_symmetrise_and_mirror_table():
    mirror = torch.as_tensor(calibrate.IBUG_MIRROR)
    assert torch.equal(mirror[mirror], torch.arange(68))
    assert calibrate.IBUG_MIRROR[36] == 45 and calibrate.IBUG_MIRROR[30] == 30 and calibrate.IBUG_MIRROR[60] == 64
    d = torch.randn(68, 3)
    s = calibrate.symmetrise(d)
    torch.testing.assert_close(s[mirror] * torch.tensor([-1.0, 1.0, 1.0]), s)


def test_stored_dlib_offsets_match_the_builtin_head(flame, request):
    from next3d.flame import load_flame_model
    from training.dataset_schema import head_identity

    head = head_identity(load_flame_model(None))
    if REGENERATE:
        delta, n = calibrate.calibrate_offsets(flame, request.getfixturevalue("detector"))
        calibrate.save_offsets(delta, "dlib", head, {"views": n, "seed": 1000, "resolution": 512,
                                                     "renders": "photographic (next3d.synthetic render_scene)",
                                                     "symmetrised": True})
    delta = calibrate.load_offsets("dlib", head)
    assert delta is not None, ("the stored dlib calibration is for another built-in head version: regenerate with "
                               "NEXT3D_REGENERATE_CALIBRATION=1")
    assert delta.shape == (68, 3) and float(delta.abs().max()) < 0.03  # offsets of millimetres, not decimetres
    mirror = torch.as_tensor(calibrate.IBUG_MIRROR)
    torch.testing.assert_close(delta[mirror] * torch.tensor([-1.0, 1.0, 1.0]), delta, atol=2e-6, rtol=0)
    assert calibrate.load_offsets("dlib", {**head, "head_version": "other"}) is None
