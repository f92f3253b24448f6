"""The FLAME layer on the built-in head: template, expression, jaw, eyes, gradients, batching, landmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from next3d.flame import FLAME
from next3d.flame.builtin.features import EYE_CENTER
from next3d.flame.lbs import batch_rodrigues
from torch_utils.misc import ShapeError


@pytest.fixture(scope="module")
def flame(builtin_data):
    return FLAME(builtin_data)


def _eye_mask(flame):
    v = flame.v_template
    near = [torch.linalg.norm(v - torch.tensor(EYE_CENTER * s, dtype=v.dtype), dim=1) < 0.0125
            for s in ([1, 1, 1], [-1, 1, 1])]
    return near[0], near[1]


def test_zero_parameters_give_template(flame):
    out = flame(batch_size=3)
    assert out.vertices.shape == (3, flame.num_vertices, 3)
    torch.testing.assert_close(out.vertices, flame.v_template.expand(3, -1, -1), atol=1e-6, rtol=0)
    assert out.landmarks.shape == (3, 68, 3) and out.joints.shape == (3, 5, 3)


def test_expression_moves_face_not_back_of_skull(flame):
    v0 = flame.v_template
    back = v0[:, 2] < -0.06
    face = (v0[:, 2] > 0.04) & (v0[:, 1].abs() < 0.08)
    for e in range(flame.num_expression):
        expr = torch.zeros(1, flame.num_expression)
        expr[0, e] = 1.0
        d = (flame(expression=expr).vertices[0] - v0).norm(dim=1)
        assert float(d[back].max()) < 1e-5, f"expression {e} moves the back of the skull"
        assert float(d[face].max()) > 1e-3, f"expression {e} does not move the face"


def test_jaw_opens_mouth(flame):
    v0 = flame.v_template
    rest = flame(batch_size=1)
    gaps = []
    for angle in (0.0, 0.05, 0.1, 0.2, 0.3):
        out = flame(jaw=torch.tensor([[angle, 0.0, 0.0]]))
        lmk = out.landmarks[0]
        gaps.append(float((lmk[62] - lmk[66]).norm()))
        if angle == 0.3:
            d = out.vertices[0] - v0
            top = v0[:, 1] > 0.09
            assert float(d[top].norm(dim=1).max()) < 1e-6
            assert float(lmk[8, 1] - rest.landmarks[0, 8, 1]) < -0.01  # chin down
            assert float(lmk[57, 1] - rest.landmarks[0, 57, 1]) < -0.01  # lower lip down
            assert abs(float(lmk[51, 1] - rest.landmarks[0, 51, 1])) < 0.003  # upper lip stays
    assert gaps[0] < 1e-6
    assert all(b > a + 1e-4 for a, b in zip(gaps, gaps[1:])), gaps


def test_eye_pose_moves_only_eyeballs(flame):
    left, right = _eye_mask(flame)
    v0 = flame.v_template
    out = flame(left_eye=torch.tensor([[0.0, 0.5, 0.0]]))
    d = (out.vertices[0] - v0).norm(dim=1)
    assert float(d[left].max()) > 0.003
    assert float(d[~left].max()) < 1e-6
    # The eyeball rotates about its centre: distances to the joint are kept.
    centre = out.joints[0, 3]
    torch.testing.assert_close((out.vertices[0, left] - centre).norm(dim=1), (v0[left] - centre).norm(dim=1),
                               atol=1e-6, rtol=0)
    out_r = flame(right_eye=torch.tensor([[0.3, 0.0, 0.0]]))
    d = (out_r.vertices[0] - v0).norm(dim=1)
    assert float(d[right].max()) > 0.002 and float(d[~right].max()) < 1e-6


def test_gradients_finite_for_all_parameters(flame):
    shape = torch.zeros(2, flame.num_shape, requires_grad=True)
    expr = torch.zeros(2, flame.num_expression, requires_grad=True)
    pose = torch.zeros(2, 15, requires_grad=True)  # zero rotation is the delicate case
    jaw = torch.full((2, 3), 0.1, requires_grad=True)
    out = flame(shape, expr, pose, jaw=jaw)
    (out.vertices.square().sum() + out.landmarks.sum() + out.joints.sum()).backward()
    for name, t in (("shape", shape), ("expression", expr), ("pose", pose), ("jaw", jaw)):
        assert torch.isfinite(t.grad).all(), name
        assert float(t.grad.abs().max()) > 0, name


def test_batch_entries_are_independent(flame):
    g = torch.Generator().manual_seed(1)
    shape = torch.randn(3, flame.num_shape, generator=g)
    expr = torch.randn(3, flame.num_expression, generator=g)
    pose = torch.randn(3, 15, generator=g) * 0.1
    full = flame(shape, expr, pose)
    for i in range(3):
        single = flame(shape[i:i + 1], expr[i:i + 1], pose[i:i + 1])
        torch.testing.assert_close(full.vertices[i:i + 1], single.vertices, atol=1e-6, rtol=0)
        torch.testing.assert_close(full.landmarks[i:i + 1], single.landmarks, atol=1e-6, rtol=0)


def test_partial_parameters_and_bad_shapes(flame):
    out = flame(shape=torch.ones(1, 2))
    full = torch.zeros(1, flame.num_shape)
    full[0, :2] = 1
    torch.testing.assert_close(out.vertices, flame(shape=full).vertices)
    with pytest.raises(ShapeError, match="shape"):
        flame(shape=torch.zeros(1, flame.num_shape + 1))
    with pytest.raises(ShapeError, match="jaw"):
        flame(jaw=torch.zeros(1, 2))
    with pytest.raises(ShapeError, match="batch"):
        flame(shape=torch.zeros(2, 3), batch_size=3)


def _on_surface(points, verts, faces, tol=1e-6):
    """Every point lies on some triangle (orthographic test along z, then depth)."""
    tri = verts[faces]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    den = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    res = []
    for p in points:
        with np.errstate(divide="ignore", invalid="ignore"):
            w0 = ((b[:, 1] - c[:, 1]) * (p[0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (p[1] - c[:, 1])) / den
            w1 = ((c[:, 1] - a[:, 1]) * (p[0] - c[:, 0]) + (a[:, 0] - c[:, 0]) * (p[1] - c[:, 1])) / den
        w2 = 1 - w0 - w1
        hit = (w0 >= -1e-6) & (w1 >= -1e-6) & (w2 >= -1e-6) & np.isfinite(w0)
        z = w0 * a[:, 2] + w1 * b[:, 2] + w2 * c[:, 2]
        res.append(bool((np.abs(z[hit] - p[2]) < tol).any()))
    return np.array(res)


@pytest.mark.parametrize("neck_yaw", [0.0, 0.45, -0.45])
def test_landmarks_on_surface_with_semantics(flame, neck_yaw):
    out = flame(neck=torch.tensor([[0.0, neck_yaw, 0.0]]), jaw=torch.tensor([[0.1, 0.0, 0.0]]))
    lmk, verts = out.landmarks[0].numpy(), out.vertices[0].numpy()
    assert _on_surface(lmk, verts, flame.faces.numpy()).all()
    if neck_yaw != 0.0:
        return
    nose = lmk[27:36]
    assert np.argmax(nose[:, 2]) == 30 - 27
    assert np.argmin(lmk[:17, 1]) == 8
    assert lmk[36, 0] < lmk[39, 0] < 0 < lmk[42, 0] < lmk[45, 0]
    mouth_centre = lmk[[62, 66]].mean(0)
    assert lmk[48, 0] < mouth_centre[0] - 0.015 and lmk[54, 0] > mouth_centre[0] + 0.015
    assert lmk[62, 1] > lmk[66, 1]
    assert lmk[19, 1] > lmk[37, 1] > lmk[30, 1] > lmk[51, 1] > lmk[57, 1] > lmk[8, 1]


def test_yaw_contour_follows_silhouette(flame):
    """Turning the head left (+yaw) moves the left-side contour (9..16) towards the face centre."""
    turned = flame(neck=torch.tensor([[0.0, 0.5, 0.0]]))
    rot = batch_rodrigues(torch.tensor([[0.0, 0.5, 0.0]]))[0]
    # Express landmarks in the head frame: undo the neck rotation about the neck joint.
    j = turned.joints[0, 1]
    head = (turned.landmarks[0] - j) @ rot + j
    rest = flame(batch_size=1).landmarks[0]
    moved = (head[:17] - rest[:17]).norm(dim=1)
    assert float(moved[10:17].max()) > 0.005  # the side turning away picks silhouette points
    assert float(moved[:8].max()) < 1e-5  # the side facing the camera keeps the static contour
    assert float((head[17:] - rest[17:]).norm(dim=1).max()) < 1e-5
