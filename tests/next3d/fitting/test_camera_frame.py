"""The FLAME -> EG3D frame and the fitted camera's parameters, pinned."""

from __future__ import annotations

import math

import numpy as np
import torch

from next3d.fitting import camera_frame
from next3d.fitting.align import eg3d_crop_transform
from next3d.fitting.landmark_head import contour_rows
from next3d.flame.landmarks import yaw_bins
from next3d.flame.lbs import batch_rodrigues
from next3d.render.cameras import orbit_label, project


def test_flame_to_eg3d_frame_is_pinned():
    pts = torch.tensor([[0.0, 0.0, 0.0], [0.1, -0.2, 0.05]])
    world = camera_frame.flame_to_world(pts)
    torch.testing.assert_close(world, torch.tensor([[0.0, 0.025, 0.0], [0.25, -0.475, 0.125]]))
    torch.testing.assert_close(camera_frame.world_to_flame(world), pts)
    assert (camera_frame.FLAME_TO_WORLD_SCALE, camera_frame.FLAME_Y_OFFSET) == (2.5, 0.01)
    assert camera_frame.PIVOT == (0.0, 0.0, 0.2) and camera_frame.RADIUS == 2.7


def test_zero_parameters_are_the_default_orbit_camera():
    zero = torch.zeros(1, 3)
    torch.testing.assert_close(camera_frame.camera_label(zero, zero), orbit_label(0.0, 0.0), atol=1e-6, rtol=0)


def test_label_parameter_round_trip_and_angles():
    yaw = torch.tensor([0.0, 0.5, -0.7, 0.2])
    pitch = torch.tensor([0.0, 0.1, -0.3, 0.25])
    c = orbit_label(yaw, pitch)
    rot, trans = camera_frame.camera_params_from_label(c)
    torch.testing.assert_close(trans, torch.zeros(4, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(camera_frame.camera_label(rot, trans), c, atol=1e-5, rtol=0)
    ang = camera_frame.camera_angles(c)
    torch.testing.assert_close(ang[:, 0], torch.rad2deg(yaw), atol=1e-3, rtol=0)
    torch.testing.assert_close(ang[:, 1], torch.rad2deg(pitch), atol=1e-3, rtol=0)
    torch.testing.assert_close(ang[:, 2], torch.zeros(4), atol=1e-3, rtol=0)
    # A shifted camera: translation comes back, rotation error zero.
    rot2, trans2 = rot.clone(), torch.tensor([[0.05, -0.02, 0.3]] * 4)
    c2 = camera_frame.camera_label(rot2, trans2)
    torch.testing.assert_close(camera_frame.camera_params_from_label(c2)[1], trans2, atol=1e-5, rtol=0)
    assert float(camera_frame.rotation_error_deg(c, c2).max()) < 1e-2


def test_roll_sign_clockwise_in_image():
    """Positive roll turns image content... the camera's x axis rotates towards its y (down) axis."""
    c = orbit_label(0.0, 0.0)
    c2w = c[:, :16].reshape(1, 4, 4).clone()
    r = batch_rodrigues(torch.tensor([[0.0, 0.0, math.radians(10)]]))
    c2w[:, :3, :3] = c2w[:, :3, :3] @ r
    c_roll = torch.cat([c2w.reshape(1, 16), c[:, 16:]], dim=1)
    assert abs(float(camera_frame.camera_angles(c_roll)[0, 2]) - 10.0) < 1e-3


def test_head_rotation_matches_flame_global_rotation():
    """Seeing the head from a turned camera == turning the head by head_rotation before a frontal camera,
    so the DECA contour row picked from the camera equals the one FLAME picks from a global rotation."""
    yaw = torch.tensor([0.3, -0.5])
    c = orbit_label(yaw, torch.zeros(2))
    r_head = camera_frame.head_rotation(c)
    pts = torch.randn(2, 10, 3) * 0.1
    seen = project(pts, c)
    front = orbit_label(torch.zeros(2), torch.zeros(2))
    pivot = torch.tensor(camera_frame.PIVOT)
    turned = torch.einsum("bij,bnj->bni", r_head, pts - pivot) + pivot
    torch.testing.assert_close(project(turned, front), seen, atol=1e-5, rtol=1e-5)
    rows = contour_rows(r_head)
    # Camera yaw +0.3 (sees the subject's left cheek) = head turned to its right: negative head yaw bin.
    assert int(rows[0]) == 39 + round(math.degrees(0.3)) and int(rows[1]) == round(math.degrees(0.5))
    assert torch.equal(rows, yaw_bins(r_head))


def test_published_crop_of_the_default_view(flame):
    """How the frame was checked: the built-in mean head rendered by the generator's default camera
    (orbit 2.7, FFHQ intrinsics) and cut with the published crop is nearly the identity: centred within
    8 px of 512 and 12.6 % larger, i.e. a mean-sized face in a published crop is seen from ~2.40, not 2.7."""
    lmk = flame(batch_size=1).landmarks
    uv = project(camera_frame.flame_to_world(lmk), orbit_label(0.0, 0.0))[0, :, :2].numpy() * 512
    tf = eg3d_crop_transform(uv, (512, 512), 512)
    assert 1.10 < tf.scale < 1.15
    centre = np.linalg.inv(tf.matrix) @ np.array([256.0, 256.0, 1.0])
    assert np.abs(centre[:2] - 256).max() < 10
