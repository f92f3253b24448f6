"""The FLAME layer: shape, expression and pose -> posed vertices, 68 landmarks and joints.

FLAME space: metres, y up, z towards the viewer, x to the subject's left. Pose is 15
axis-angle values: global (root), neck, jaw, left eye, right eye (joint order of the
model file). Next3D keeps the global rotation at zero (head rotation lives in the camera).

Topology-agnostic: the vertex, face and component counts come from the model data, so
real FLAME (5023 vertices) and the built-in head (`next3d.flame.builtin`) run the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from next3d.flame.files import FlameModelData
from next3d.flame.landmarks import (INNER_LIP_LOWER, INNER_LIP_UPPER, NOSE_TIP, NUM_CONTOUR, vertices_to_landmarks,
                                    yaw_bins)
from next3d.flame.lbs import lbs
from torch_utils.misc import ShapeError, assert_shape

POSE_SLOTS = ("global", "neck", "jaw", "left_eye", "right_eye")


@dataclass(frozen=True)
class FlameOutput:
    """vertices (B, V, 3), landmarks (B, 68, 3) (iBUG order), joints (B, 5, 3) posed; FLAME space."""

    vertices: torch.Tensor
    landmarks: torch.Tensor
    joints: torch.Tensor


class FLAME(torch.nn.Module):
    """FLAME as a module. Buffers: faces (F, 3) long, uv_coords (T, 2) in [0, 1] (v up),
    uv_faces (F, 3) long, uv_mask (1, 1, S, S) face/eye mask (row 0 = top, v = 1).

    Args:
        model_data: from `next3d.flame.load_flame_model`.
        dynamic_contour: pick the jaw contour (landmarks 0..16) by head yaw where the
            embedding has a yaw table (DECA); otherwise use the fixed full-68 embedding.
    """

    inner_lip_landmark_ids = (INNER_LIP_UPPER, INNER_LIP_LOWER)
    nose_tip_landmark_id = NOSE_TIP

    def __init__(self, model_data: FlameModelData, dynamic_contour: bool = True):
        super().__init__()
        d = model_data
        self.model_name = d.name
        self.num_vertices = d.num_vertices
        self.num_shape = d.num_shape
        self.num_expression = d.num_expression
        self.num_joints = int(d.parents.shape[0])
        f32 = torch.float32

        def buf(name, array, dtype=f32):
            self.register_buffer(name, torch.as_tensor(array).to(dtype).contiguous(), persistent=False)

        buf("v_template", d.v_template)
        buf("faces", d.faces, torch.long)
        buf("shapedirs", d.shapedirs)
        buf("exprdirs", d.exprdirs)
        buf("posedirs", d.posedirs.reshape(-1, d.posedirs.shape[-1]).T)  # ((J-1)*9, V*3) as FLAME
        buf("j_regressor", d.j_regressor)
        buf("lbs_weights", d.weights)
        buf("parents", d.parents, torch.long)
        buf("uv_coords", d.uv_coords)
        buf("uv_faces", d.uv_faces, torch.long)
        buf("uv_mask", d.uv_mask[None, None])
        buf("lmk_faces", d.landmarks.full_faces, torch.long)
        buf("lmk_bary", d.landmarks.full_bary)
        self.has_dynamic_contour = bool(dynamic_contour and d.landmarks.dynamic_faces is not None)
        if self.has_dynamic_contour:
            buf("dyn_lmk_faces", d.landmarks.dynamic_faces, torch.long)
            buf("dyn_lmk_bary", d.landmarks.dynamic_bary)
        # Chain from the root to the neck: its rotation decides the head yaw for the contour.
        chain, j = [], 1
        while j >= 0:
            chain.append(j)
            j = int(d.parents[j])
        self._neck_chain = tuple(reversed(chain))

    def extra_repr(self) -> str:
        return (f"model={self.model_name}, vertices={self.num_vertices}, faces={self.faces.shape[0]}, "
                f"shape={self.num_shape}, expression={self.num_expression}, dynamic_contour={self.has_dynamic_contour}")

    def _param(self, value: Optional[torch.Tensor], width: int, max_width: int, name: str, batch: int,
               ref: torch.Tensor) -> torch.Tensor:
        """Pad/validate a (B, <=max_width) parameter to (B, width)."""
        if value is None:
            return ref.new_zeros(batch, width)
        if value.ndim != 2 or value.shape[0] != batch or value.shape[1] > max_width:
            raise ShapeError(f"{name}: expected shape ({batch}, <= {max_width}), got {tuple(value.shape)}")
        value = value.to(ref.dtype)
        if value.shape[1] < width:
            value = torch.nn.functional.pad(value, (0, width - value.shape[1]))
        return value

    def forward(self, shape: Optional[torch.Tensor] = None, expression: Optional[torch.Tensor] = None,
                pose: Optional[torch.Tensor] = None, *, neck: Optional[torch.Tensor] = None,
                jaw: Optional[torch.Tensor] = None, left_eye: Optional[torch.Tensor] = None,
                right_eye: Optional[torch.Tensor] = None, batch_size: Optional[int] = None) -> FlameOutput:
        """Run FLAME.

        Args:
            shape: (B, <= num_shape) β; missing trailing components are zero.
            expression: (B, <= num_expression) ψ.
            pose: (B, 15) axis-angle (global, neck, jaw, left eye, right eye), or (B, 3*k) for
                the first k joints.
            neck, jaw, left_eye, right_eye: (B, 3) axis-angle, added to the matching slot of `pose`.
            batch_size: B when every parameter is None.

        Returns:
            FlameOutput with vertices (B, V, 3), landmarks (B, 68, 3), joints (B, 5, 3).
        """
        named = {"neck": neck, "jaw": jaw, "left_eye": left_eye, "right_eye": right_eye}
        given = [t for t in (shape, expression, pose, *named.values()) if t is not None]
        batch = int(given[0].shape[0]) if given else int(batch_size or 1)
        if batch_size is not None and batch != batch_size:
            raise ShapeError(f"batch_size={batch_size} disagrees with the parameters' batch {batch}")
        ref = self.v_template
        shape = self._param(shape, self.num_shape, self.num_shape, "shape", batch, ref)
        expression = self._param(expression, self.num_expression, self.num_expression, "expression", batch, ref)
        full_pose = self._param(pose, 3 * self.num_joints, 3 * self.num_joints, "pose", batch, ref)
        if pose is not None and pose.shape[1] % 3:
            raise ShapeError(f"pose: expected (B, 3*k) axis-angle values, got {tuple(pose.shape)}")
        extra = []
        for slot, name in enumerate(POSE_SLOTS):
            value = named.get(name)
            if value is None:
                extra.append(ref.new_zeros(batch, 3))
            else:
                assert_shape(value, [batch, 3], name)
                extra.append(value.to(ref.dtype))
        full_pose = full_pose + torch.cat(extra, dim=1)

        # One matmul over the stacked bases: (B, S+E) @ (S+E, V*3).
        coeffs = torch.cat([shape, expression], dim=1)
        basis = torch.cat([self.shapedirs, self.exprdirs], dim=2).reshape(-1, coeffs.shape[1])
        v_shaped = self.v_template + torch.matmul(coeffs, basis.T).view(batch, -1, 3)
        joints_rest = torch.matmul(self.j_regressor, v_shaped)  # (J, V) @ (B, V, 3) -> (B, J, 3)
        vertices, joints, rot_mats = lbs(full_pose, v_shaped, joints_rest, self.parents, self.lbs_weights,
                                         self.posedirs)
        landmarks = self._landmarks(vertices, rot_mats)
        return FlameOutput(vertices=vertices, landmarks=landmarks, joints=joints)

    def _landmarks(self, vertices: torch.Tensor, rot_mats: torch.Tensor) -> torch.Tensor:
        batch = vertices.shape[0]
        lmk_faces = self.lmk_faces[None].expand(batch, -1)
        lmk_bary = self.lmk_bary[None].expand(batch, -1, -1)
        if self.has_dynamic_contour:
            head_rot = rot_mats[:, self._neck_chain[0]]
            for j in self._neck_chain[1:]:
                head_rot = torch.bmm(head_rot, rot_mats[:, j])
            rows = yaw_bins(head_rot.detach())
            lmk_faces = torch.cat([self.dyn_lmk_faces[rows], lmk_faces[:, NUM_CONTOUR:]], dim=1)
            lmk_bary = torch.cat([self.dyn_lmk_bary[rows], lmk_bary[:, NUM_CONTOUR:]], dim=1)
        return vertices_to_landmarks(vertices, self.faces, lmk_faces, lmk_bary)

    def template(self) -> torch.Tensor:
        """The rest-pose template (V, 3)."""
        return self.v_template
