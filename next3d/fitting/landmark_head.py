"""FLAME landmarks only, fast: the FLAME layer evaluated on the few vertices the 68 landmarks use.

Fitting needs the 68 landmarks hundreds of times; the full mesh is not needed for that. The
joints are regressed from the full shaped mesh, which is linear in the coefficients, so the
regressor is folded into the bases once (J = J_template + coeffs @ J_dirs); skinning and
pose correctives then run on the subset of vertices that the landmark faces touch (the
static 68 and every row of the yaw-dependent contour table). Results equal the FLAME layer's
(`tests/next3d/fitting/test_landmark_head.py`).

The jaw contour row is chosen by the caller from the head's rotation relative to the camera
(`camera_frame.head_rotation`), since Next3D keeps FLAME's global rotation at zero and the
head turn lives in the camera; `contour_rows` applies DECA's yaw bins to it.
"""

from __future__ import annotations

from typing import Optional

import torch

from next3d.flame.landmarks import NUM_CONTOUR, yaw_bins
from next3d.flame.layer import FLAME
from next3d.flame.lbs import lbs
from torch_utils.misc import assert_shape


class LandmarkHead(torch.nn.Module):
    """Landmarks (B, 68, 3) in FLAME space from shape, expression and pose.

    Args:
        flame: the FLAME layer whose buffers are used.
        points: optional (faces (K,), barycentrics (K, 3)): other surface points instead of the 68
            (a dense landmark set, `mesh_correspondence`); then (B, K, 3) and no dynamic contour.
    """

    def __init__(self, flame: FLAME, points: Optional[tuple] = None):
        super().__init__()
        faces = flame.faces
        lmk_faces, lmk_bary = flame.lmk_faces, flame.lmk_bary
        if points is not None:
            lmk_faces, lmk_bary = torch.as_tensor(points[0]).long(), torch.as_tensor(points[1]).float()
        used = [lmk_faces]
        has_contour = flame.has_dynamic_contour and points is None
        if has_contour:
            used.append(flame.dyn_lmk_faces.reshape(-1))
        vert_ids = torch.unique(faces[torch.cat(used)].reshape(-1))
        local = torch.full((flame.num_vertices,), -1, dtype=torch.long)
        local[vert_ids] = torch.arange(vert_ids.numel())
        nv = flame.num_vertices
        basis = torch.cat([flame.shapedirs, flame.exprdirs], dim=2)  # (V, 3, S+E)
        self.num_shape = flame.num_shape
        self.num_expression = flame.num_expression
        self.num_joints = flame.num_joints
        self.has_dynamic_contour = has_contour
        self.num_points = int(lmk_faces.numel())
        self.register_buffer("v_template", flame.v_template[vert_ids].clone(), persistent=False)
        self.register_buffer("basis", basis[vert_ids].reshape(-1, basis.shape[2]).T.contiguous(), persistent=False)
        self.register_buffer("j_template", flame.j_regressor @ flame.v_template, persistent=False)  # (J, 3)
        j_dirs = torch.einsum("jv,vck->kjc", flame.j_regressor, basis).reshape(basis.shape[2], -1)
        self.register_buffer("j_dirs", j_dirs, persistent=False)  # (S+E, J*3)
        num_pose = flame.posedirs.shape[0]
        posedirs = flame.posedirs.reshape(num_pose, nv, 3)[:, vert_ids].reshape(num_pose, -1)
        self.register_buffer("posedirs", posedirs.contiguous(), persistent=False)
        self.register_buffer("lbs_weights", flame.lbs_weights[vert_ids].clone(), persistent=False)
        self.register_buffer("parents", flame.parents.clone(), persistent=False)
        self.register_buffer("lmk_tri", local[faces[lmk_faces]], persistent=False)  # (K, 3)
        self.register_buffer("lmk_bary", lmk_bary.clone(), persistent=False)
        if self.has_dynamic_contour:
            self.register_buffer("dyn_tri", local[faces[flame.dyn_lmk_faces]], persistent=False)  # (79, 17, 3)
            self.register_buffer("dyn_bary", flame.dyn_lmk_bary.clone(), persistent=False)
        self.num_subset = int(vert_ids.numel())

    def extra_repr(self) -> str:
        return f"vertices={self.num_subset}, dynamic_contour={self.has_dynamic_contour}"

    def forward(self, shape: torch.Tensor, expression: torch.Tensor, pose: torch.Tensor,
                rows: Optional[torch.Tensor] = None) -> torch.Tensor:
        """shape (B, num_shape), expression (B, num_expression), pose (B, 3*J) axis-angle,
        rows (B,) long contour rows (None: the fixed full-68 contour) -> landmarks (B, K, 3) (K = 68 or the
        given points)."""
        batch = shape.shape[0]
        assert_shape(shape, [batch, self.num_shape], "shape")
        assert_shape(expression, [batch, self.num_expression], "expression")
        assert_shape(pose, [batch, 3 * self.num_joints], "pose")
        coeffs = torch.cat([shape, expression], dim=1)
        v_shaped = self.v_template + (coeffs @ self.basis).view(batch, -1, 3)
        joints = self.j_template + (coeffs @ self.j_dirs).view(batch, -1, 3)
        verts, _, _ = lbs(pose, v_shaped, joints, self.parents, self.lbs_weights, self.posedirs)
        tri = self.lmk_tri[None].expand(batch, -1, -1)
        bary = self.lmk_bary[None].expand(batch, -1, -1)
        if rows is not None and self.has_dynamic_contour:
            tri = torch.cat([self.dyn_tri[rows], tri[:, NUM_CONTOUR:]], dim=1)
            bary = torch.cat([self.dyn_bary[rows], bary[:, NUM_CONTOUR:]], dim=1)
        corners = torch.gather(verts, 1, tri.reshape(batch, -1, 1).expand(-1, -1, 3)).view(batch, -1, 3, 3)
        return (corners * bary[..., None].to(verts.dtype)).sum(dim=2)


def contour_rows(head_rot: torch.Tensor) -> torch.Tensor:
    """Head rotations (B, 3, 3) relative to the camera -> contour rows (B,) (DECA's yaw bins)."""
    return yaw_bins(head_rot.detach())
