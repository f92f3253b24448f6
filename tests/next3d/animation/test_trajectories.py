"""Camera paths: the angles sweep the stated ranges, labels look at the pivot, and the label round trip."""

import math

import pytest
import torch

from next3d.animation.trajectories import (TrajectoryConfig, TrajectoryError, label_angles, trajectory_angles,
                                           trajectory_labels)
from next3d.render.cameras import DEFAULT_PIVOT, DEFAULT_RADIUS, orbit_label, split_label


def test_orbit_yaw_and_pitch_sweep_their_ranges():
    cfg = TrajectoryConfig(kind="orbit", yaw_range=0.35, pitch_range=0.25)
    yaw, pitch, radius = label_angles(trajectory_labels(cfg, 16))
    assert float(yaw.max()) == pytest.approx(0.35, abs=1e-5) and float(yaw.min()) == pytest.approx(-0.35, abs=1e-5)
    assert float(pitch.max()) == pytest.approx(0.25, abs=1e-5)
    assert float(pitch.min()) == pytest.approx(-0.25, abs=1e-5)
    torch.testing.assert_close(radius, torch.full((16,), DEFAULT_RADIUS), atol=1e-5, rtol=0)
    # Frame 0 is frontal in yaw and at the top of the pitch swing; frame N/4 is the largest yaw (+ = towards +x).
    assert float(yaw[0]) == pytest.approx(0.0, abs=1e-6) and float(pitch[0]) == pytest.approx(0.25, abs=1e-5)
    assert float(yaw[4]) == pytest.approx(0.35, abs=1e-5)
    cam2world, _ = split_label(trajectory_labels(cfg, 16))
    assert float(cam2world[4, 0, 3]) > 0  # the camera moved to +x: it sees the subject's left cheek


def test_paths_loop_without_repeating_a_frame():
    cfg = TrajectoryConfig(kind="yaw", yaw_range=0.5)
    yaw, pitch = trajectory_angles(cfg, 8)
    assert yaw.tolist() == pytest.approx([0.5 * math.sin(2 * math.pi * i / 8) for i in range(8)], abs=1e-6)
    assert torch.all(pitch == 0)
    yaw_p, pitch_p = trajectory_angles(TrajectoryConfig(kind="pitch", pitch_range=0.2), 4)
    assert torch.all(yaw_p == 0) and pitch_p.tolist() == pytest.approx([0, 0.2, 0, -0.2], abs=1e-6)
    yaw_f, pitch_f = trajectory_angles(TrajectoryConfig(kind="front"), 3)
    assert torch.all(yaw_f == 0) and torch.all(pitch_f == 0)


def test_every_camera_looks_at_the_pivot():
    c = trajectory_labels(TrajectoryConfig(kind="orbit"), 12)
    cam2world, intr = split_label(c)
    pivot = torch.tensor(DEFAULT_PIVOT)
    towards = torch.nn.functional.normalize(pivot - cam2world[:, :3, 3], dim=-1)
    torch.testing.assert_close(cam2world[:, :3, 2], towards, atol=1e-5, rtol=0)  # OpenCV z = viewing direction
    assert float(intr[0, 0, 0]) == pytest.approx(4.2647)


def test_label_convention_round_trip():
    yaw = torch.tensor([-1.0, -0.3, 0.0, 0.2, 0.9])
    pitch = torch.tensor([0.4, -0.2, 0.0, 0.1, -0.6])
    got_yaw, got_pitch, got_r = label_angles(orbit_label(yaw, pitch, radius=2.0, pivot=(0.1, 0.0, 0.3)),
                                             pivot=(0.1, 0.0, 0.3))
    torch.testing.assert_close(got_yaw, yaw, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_pitch, pitch, atol=1e-5, rtol=0)
    torch.testing.assert_close(got_r, torch.full((5,), 2.0), atol=1e-5, rtol=0)


def test_bad_paths_are_one_line_errors():
    with pytest.raises(TrajectoryError, match="unknown kind 'spin'"):
        TrajectoryConfig(kind="spin")
    with pytest.raises(TrajectoryError, match="at least 1 frame"):
        trajectory_angles(TrajectoryConfig(), 0)
    with pytest.raises(TrajectoryError, match="yaw_range"):
        TrajectoryConfig(yaw_range=-1)
