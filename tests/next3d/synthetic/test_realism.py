"""dlib's detector finds the synthetic faces and its landmarks land near the ground truth (skips without dlib)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dlib")


def test_dlib_finds_frontal_faces_near_the_ground_truth(assets):
    from next3d.synthetic.realism import DlibChecker, RealismUnavailable, summarise
    from next3d.synthetic.render import render_scene
    from next3d.synthetic import SynthDistributions
    from next3d.synthetic.distributions import camera_label
    from next3d.synthetic.scene import sample_scene

    try:
        checker = DlibChecker()
    except RealismUnavailable as exc:
        pytest.skip(str(exc))
    results = []
    for index, yaw in enumerate((0.0, 12.0, -15.0)):
        scene = sample_scene(SynthDistributions(), assets, 21, index)
        scene.camera = camera_label(yaw, 0.0, 0.0, SynthDistributions())
        scene.appearance["camera"]["yaw_deg"] = yaw
        item = render_scene(assets, scene, 256)
        results.append(checker.check(item.image, item.landmarks_2d, yaw))
    stats = summarise(results)
    assert stats["detected_frontal"] >= 2 / 3
    assert stats["median_error_inner"] < 0.06 and stats["median_error_68"] < 0.1
    # A blank image has no face.
    assert not checker.check(np.full((256, 256, 3), 128, np.uint8), item.landmarks_2d).detected
