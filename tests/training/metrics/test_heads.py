"""The head measurements (training/metrics/heads.py): mouth gap geometry, face rate and jaw
bookkeeping with a stand-in detector, depth against known ground truth, speed."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.metrics import heads
from training.metrics.face_models import FaceResult
from training.metrics.feature_nets import MetricError


def _landmarks(gap: float, eye_distance: float = 40.0) -> np.ndarray:
    lm = np.zeros((68, 2))
    lm[36], lm[45] = (44.0, 50.0), (44.0 + eye_distance, 50.0)
    for upper, lower in heads.INNER_LIP_PAIRS:
        lm[upper] = (60.0, 90.0)
        lm[lower] = (60.0, 90.0 + gap)
    return lm


def test_mouth_gap_is_scale_free():
    assert heads.mouth_gap(_landmarks(8.0)) == pytest.approx(0.2)
    assert heads.mouth_gap(_landmarks(16.0, eye_distance=80.0)) == pytest.approx(0.2)
    with pytest.raises(MetricError, match="expected \\(68, 2\\)"):
        heads.mouth_gap(np.zeros((5, 2)))


class MouthFromImage:
    """Stand-in for dlib: 'detects' a face when the image is not flat, and reads a mouth gap
    that grows with the mean brightness of the image's lower half."""

    def __init__(self):
        self.seen = []

    def analyse(self, image, descriptor=True, landmarks=False):
        arr = image.float()
        self.seen.append(arr)
        gap = float(arr[:, arr.shape[1] // 2:].mean())
        return FaceResult(descriptor=None, landmarks=_landmarks(gap) if landmarks else None, box=(0, 0, 1, 1),
                          detected=bool(arr.std() > 1.0))


def test_face_rate_counts_detections(tiny_generator, head_dataset):
    faces = MouthFromImage()
    out = heads.face_detection_rate(tiny_generator, head_dataset, 2, batch=2, seed=1, faces=faces)
    assert out["face_rate_num"] == 2 and len(faces.seen) == 2
    assert out["face_rate"] == pytest.approx(np.mean([float(a.std() > 1.0) for a in faces.seen]))
    assert faces.seen[0].shape == (3, 64, 64)
    with pytest.raises(MetricError, match="max_yaw_deg must be in"):
        heads.face_detection_rate(tiny_generator, head_dataset, 1, max_yaw_deg=95, faces=faces)


def test_jaw_sweep_bookkeeping(tiny_generator):
    faces = MouthFromImage()
    out = heads.jaw_mouth_opening(tiny_generator, 2, jaws=(0.0, 0.3), batch=2, faces=faces)
    assert len(faces.seen) == 4 and out["jaw_num"] == 2
    # Renders come per angle for the whole batch: [id0 jaw0, id1 jaw0, id0 jaw.3, id1 jaw.3].
    gaps = np.array([[heads.mouth_gap(_landmarks(float(faces.seen[j * 2 + i][:, 32:].mean()))) for j in range(2)]
                     for i in range(2)])
    assert out["jaw_gap_0"] == pytest.approx(gaps[:, 0].mean()) and out["jaw_gap_0.3"] == pytest.approx(gaps[:, 1].mean())
    assert out["jaw_gap_increase"] == pytest.approx((gaps[:, 1] - gaps[:, 0]).mean())
    assert out["jaw_monotonic"] == pytest.approx(np.mean(gaps[:, 1] > gaps[:, 0]))
    # The jaw reaches the generator: the renders of one identity differ between the two angles.
    assert (faces.seen[0] - faces.seen[2]).abs().mean() > 0
    with pytest.raises(MetricError, match="jaw angles must increase"):
        heads.jaw_mouth_opening(tiny_generator, 1, jaws=(0.3, 0.0), faces=faces)


class GroundTruthSet(torch.utils.data.Dataset):
    """Items of the built-in head with a flat ground-truth depth of 2.6 inside a square."""

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        item = dict(self.base[i])
        depth = torch.zeros(64, 64)
        depth[16:48, 16:48] = 2.6
        item["ground_truth"] = {"depth": depth, "mask": (depth > 0).to(torch.uint8)}
        return item


def test_depth_against_known_ground_truth(tiny_generator, head_dataset):
    out = heads.depth_against_ground_truth(tiny_generator, GroundTruthSet(head_dataset), 2, batch=2)
    assert out["depth_gt_mean"] == pytest.approx(2.6) and out["depth_gt_relief"] == pytest.approx(0.0, abs=1e-6)
    assert out["depth_valid"] == 1.0 and out["depth_num"] == 2
    assert out["depth_l1"] >= abs(out["depth_mean"] - 2.6) - 1e-6  # |mean error| <= mean |error|
    r = tiny_generator.config.render
    assert r.ray_start * 0.9 < out["depth_mean"] < r.ray_end and math.isnan(out["normal_deg"])
    with pytest.raises(MetricError, match="carry no ground truth"):
        heads.depth_against_ground_truth(tiny_generator, head_dataset, 1)


def test_speed_and_registry(tiny_generator, head_dataset):
    from training.metrics.registry import check_names, compute_metric

    assert check_names(["face_rate", "jaw_mouth", "depth", "speed"]) == ["face_rate", "jaw_mouth", "depth", "speed"]
    out = compute_metric("speed", tiny_generator, head_dataset, num_gen=1, batch=1)
    res = out["results"]
    assert res["speed_num"] == 1 and res["images_per_s"] == pytest.approx(1 / res["seconds_per_image"])
    assert res["cpu_seconds_per_image"] > 0 and out["num_gen"] == 1
