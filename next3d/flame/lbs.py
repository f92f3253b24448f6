"""Linear blend skinning for FLAME-style models: axis-angle rotations, kinematic chain, skinning.

Conventions: batch B, vertices V, joints J. Rotations are axis-angle vectors (angle =
norm, radians, right-handed). Joint transforms are rigid 4x4 matrices mapping the rest
pose to the posed mesh; pose correctives are driven by (R - I) of every non-root joint,
flattened row-major, as in SMPL/FLAME.
"""

from __future__ import annotations

import torch

from torch_utils.misc import assert_shape


def batch_rodrigues(rot_vecs: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Axis-angle vectors (N, 3) -> rotation matrices (N, 3, 3).

    Differentiable everywhere including the zero rotation (the axis falls back to a
    finite direction there, and sin/cos are evaluated on the regularised norm).
    """
    assert_shape(rot_vecs, [None, 3], "rot_vecs")
    angle = torch.sqrt((rot_vecs * rot_vecs).sum(dim=1, keepdim=True) + eps)  # (N, 1); eps keeps the gradient finite at 0
    axis = rot_vecs / angle
    cos = torch.cos(angle)[:, :, None]
    sin = torch.sin(angle)[:, :, None]
    rx, ry, rz = axis[:, 0], axis[:, 1], axis[:, 2]
    zeros = torch.zeros_like(rx)
    skew = torch.stack([zeros, -rz, ry, rz, zeros, -rx, -ry, rx, zeros], dim=1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device)[None]
    return eye + sin * skew + (1 - cos) * torch.bmm(skew, skew)


def rigid_transforms(rot_mats: torch.Tensor, joints: torch.Tensor, parents: torch.Tensor):
    """Compose the kinematic chain.

    Args:
        rot_mats: (B, J, 3, 3) local rotation of each joint.
        joints: (B, J, 3) rest-pose joint locations.
        parents: (J,) long, parent index of each joint (-1 for the root, parents before children).

    Returns:
        posed_joints (B, J, 3) and transforms (B, J, 4, 4): rest-pose point -> posed point
        for each joint (the rest-joint offset already removed, ready for skinning).
    """
    batch, num_joints = joints.shape[:2]
    assert_shape(rot_mats, [batch, num_joints, 3, 3], "rot_mats")
    rel_joints = joints.clone()
    rel_joints[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    top = torch.cat([rot_mats, rel_joints[..., None]], dim=-1)  # (B, J, 3, 4)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    local = torch.cat([top, bottom], dim=-2)  # (B, J, 4, 4)
    chain = [local[:, 0]]
    for j in range(1, num_joints):
        chain.append(torch.matmul(chain[int(parents[j])], local[:, j]))
    world = torch.stack(chain, dim=1)
    posed_joints = world[:, :, :3, 3]
    # Remove the rest-pose joint location so the transform applies to rest-pose vertices.
    joints_h = torch.cat([joints, torch.zeros_like(joints[..., :1])], dim=-1)[..., None]  # (B, J, 4, 1)
    offset = torch.matmul(world, joints_h)  # (B, J, 4, 1)
    transforms = world - torch.nn.functional.pad(offset, (3, 0))
    return posed_joints, transforms


def lbs(
    pose: torch.Tensor,
    v_shaped: torch.Tensor,
    joints: torch.Tensor,
    parents: torch.Tensor,
    weights: torch.Tensor,
    posedirs: torch.Tensor,
):
    """Pose a shaped mesh.

    Args:
        pose: (B, J*3) axis-angle per joint.
        v_shaped: (B, V, 3) rest-pose vertices after shape and expression blendshapes.
        joints: (B, J, 3) rest-pose joints regressed from `v_shaped`.
        parents: (J,) long.
        weights: (V, J) skinning weights (rows sum to 1).
        posedirs: ((J-1)*9, V*3) pose-corrective basis.

    Returns:
        vertices (B, V, 3), posed joints (B, J, 3), rotation matrices (B, J, 3, 3).
    """
    batch, num_verts = v_shaped.shape[:2]
    num_joints = joints.shape[1]
    assert_shape(pose, [batch, num_joints * 3], "pose")
    assert_shape(weights, [num_verts, num_joints], "weights")
    rot_mats = batch_rodrigues(pose.reshape(-1, 3)).view(batch, num_joints, 3, 3)
    eye = torch.eye(3, dtype=pose.dtype, device=pose.device)
    pose_feature = (rot_mats[:, 1:] - eye).reshape(batch, -1)  # (B, (J-1)*9)
    v_posed = v_shaped + torch.matmul(pose_feature, posedirs).view(batch, num_verts, 3)
    posed_joints, transforms = rigid_transforms(rot_mats, joints, parents)
    per_vertex = torch.einsum("vj,bjk->bvk", weights, transforms.reshape(batch, num_joints, 16))
    per_vertex = per_vertex.view(batch, num_verts, 4, 4)
    # Elementwise product + sum: far faster than B*V tiny 3x3 matmuls.
    verts = (per_vertex[..., :3, :3] * v_posed[..., None, :]).sum(-1) + per_vertex[..., :3, 3]
    return verts, posed_joints, rot_mats
