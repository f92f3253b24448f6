"""Rodrigues, kinematic chain and skinning against independent references."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from next3d.flame.lbs import batch_rodrigues, lbs, rigid_transforms


def test_rodrigues_matches_scipy():
    vecs = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [0.0, 1.2, 0.0], [-2.0, 0.5, 1.0]], dtype=torch.float64)
    ours = batch_rodrigues(vecs, eps=1e-20).numpy()
    ref = Rotation.from_rotvec(vecs.numpy()).as_matrix()
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_rodrigues_gradient_at_zero_is_finite():
    vec = torch.zeros(1, 3, requires_grad=True)
    rot = batch_rodrigues(vec)
    (rot * torch.arange(9.0).view(1, 3, 3)).sum().backward()
    assert torch.isfinite(vec.grad).all()
    # d(R)/d(r) at 0 is the skew matrix: R[2,1] - R[1,2] grows with r_x.
    assert abs(float(vec.grad[0, 0]) - (7.0 - 5.0)) < 1e-3


def test_chain_rotates_children_about_parent():
    joints = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 2.0, 0.0]]])
    parents = torch.tensor([-1, 0, 1])
    rots = batch_rodrigues(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, np.pi / 2], [0.0, 0.0, 0.0]])).view(1, 3, 3, 3)
    posed, transforms = rigid_transforms(rots, joints, parents)
    # Joint 1 rotates joint 2 by +90 degrees about z: (0, 2) -> (-1, 1).
    torch.testing.assert_close(posed[0, 2], torch.tensor([-1.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    # A rest-pose point at joint 2 is carried by joint 2's transform to its posed location.
    p = torch.tensor([0.0, 2.0, 0.0, 1.0])
    torch.testing.assert_close(transforms[0, 2] @ p, torch.tensor([-1.0, 1.0, 0.0, 1.0]), atol=1e-6, rtol=0)


def test_lbs_blends_transforms():
    joints = torch.tensor([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    parents = torch.tensor([-1, 0])
    verts = torch.tensor([[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]])
    weights = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    pose = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, np.pi / 2]])
    out, posed_joints, _ = lbs(pose, verts, joints, parents, weights, torch.zeros(9, 6))
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, 2.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(out[0, 1], torch.tensor([0.5, 1.5, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(posed_joints, joints)
