"""Statistics of the sampling distributions (camera, jaw, eyelids) and the per-item generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from next3d.render.cameras import split_label
from next3d.synthetic.distributions import (SynthDistributions, camera_label, item_rng, sample_camera,
                                            sample_flame)


def test_camera_yaw_mostly_frontal_with_tails():
    dist = SynthDistributions()
    rng = np.random.default_rng(0)
    draws = [sample_camera(dist, rng) for _ in range(500)]
    yaw = np.array([d.yaw_deg for d in draws])
    pitch = np.array([d.pitch_deg for d in draws])
    roll = np.array([d.roll_deg for d in draws])
    assert np.mean(np.abs(yaw) <= 20) > 0.7  # most within +-20 degrees
    assert np.abs(yaw).max() <= 60.0 and np.abs(yaw).max() > 40.0  # tails to about 60
    assert 0.02 < np.mean(np.abs(yaw) > 30) < 0.2
    assert abs(np.median(yaw)) < 3.0
    assert 4.0 < pitch.std() < 8.0 and np.abs(pitch).max() <= 20.0
    assert roll.std() < 4.0 and np.abs(roll).max() <= 8.0


def test_camera_label_orbits_the_pivot():
    dist = SynthDistributions()
    label = torch.as_tensor(camera_label(30.0, 10.0, 5.0, dist))[None]
    c2w, intr = split_label(label)
    pos = c2w[0, :3, 3]
    pivot = torch.tensor(dist.pivot)
    assert torch.linalg.norm(pos - pivot).item() == pytest.approx(2.7, abs=1e-5)
    forward = c2w[0, :3, 2]
    assert torch.allclose(forward, (pivot - pos) / 2.7, atol=1e-5)  # roll keeps the optical axis
    assert math.degrees(math.atan2(pos[0] - pivot[0], pos[2] - pivot[2])) == pytest.approx(30.0, abs=1e-3)
    assert intr[0, 0, 0].item() == pytest.approx(dist.focal) and intr[0, 0, 2].item() == 0.5
    # Roll: the camera's x axis leaves the horizontal plane by sin(roll) times the down axis' height.
    expected = math.degrees(math.asin(math.sin(math.radians(5.0)) * math.cos(math.radians(10.0))))
    assert math.degrees(math.asin(abs(c2w[0, 1, 0].item()))) == pytest.approx(expected, abs=1e-3)


def test_jaw_modes_and_eyelids():
    dist = SynthDistributions()
    rng = np.random.default_rng(1)
    names = tuple(f"e{i}" for i in range(22)) + ("eye_close_left", "eye_close_right")
    jaw, closed = [], []
    for _ in range(500):
        params, info = sample_flame(dist, rng, 10, 24, names)
        jaw.append(params["jaw"][0])
        closed.append(info["eye_closure_left"] == 1.0 and info["eye_closure_right"] == 1.0)
        assert params["shape"].shape == (10,) and params["expression"].shape == (24,)
        assert params["expression"][22] == pytest.approx(2 * info["eye_closure_left"])
        assert all(params[k].shape == (3,) for k in ("neck", "jaw", "left_eye", "right_eye"))
    jaw = np.array(jaw)
    assert 0.55 < np.mean(jaw <= dist.jaw_closed_max) < 0.75  # mostly closed
    assert 0.06 < np.mean(jaw >= dist.jaw_wide_range[0]) < 0.2  # sometimes wide open
    assert jaw.max() <= dist.jaw_wide_range[1]
    assert 0.02 < np.mean(closed) < 0.1


def test_item_generator_depends_only_on_seed_and_index():
    a = item_rng(3, 7).random(4)
    assert np.array_equal(a, item_rng(3, 7).random(4))
    assert not np.array_equal(a, item_rng(3, 8).random(4))
    assert not np.array_equal(a, item_rng(4, 7).random(4))


def test_validate_names_the_bad_field():
    with pytest.raises(ValueError, match="jaw_mode_probs"):
        SynthDistributions(jaw_mode_probs=(0.5, 0.2, 0.1)).validate()
    with pytest.raises(ValueError, match="supersample"):
        SynthDistributions(supersample=0).validate()
    SynthDistributions().validate()
