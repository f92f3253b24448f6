"""Per-model assets of the synthetic renderer: the FLAME layer and what is known about its mesh.

Topology-agnostic (built-in head and real FLAME alike), derived once per model from the model
data and its rest template:

* `face_class` (F,) uint8, the segmentation class of every FLAME face: 1 face/head skin,
  3 neck, 4 eyes (faces of the eyeballs: vertices skinned to the eye joints), 5 mouth interior
  (faces behind the lips inside the mouth opening).
* `template_landmarks` (68, 3): the 68 landmarks of the rest template (FLAME space, metres),
  the anchors of the procedural albedo, the teeth and the hairline.
* `uv_bake(size)`: for every texel of a (size, size) UV texture (row 0 = v = 1, as the UV
  mask), the rest-template point it shows (size, size, 3) and its class; texels outside every
  UV island take their nearest covered texel's values, so bilinear lookups never bleed.
* `pose_transforms(...)`: the rigid rest->posed transforms of the head (neck joint) and jaw,
  to carry hair, teeth and tongue along with the mesh.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from next3d.flame import FLAME
from next3d.flame.lbs import batch_rodrigues, rigid_transforms

SKIN, HAIR, BODY, EYES, MOUTH = 1, 2, 3, 4, 5
NECK = BODY  # the FLAME neck is class 3 with the shoulders


@dataclass(frozen=True)
class UVBake:
    """positions (S, S, 3) float32 rest-template points per texel; cls (S, S) uint8 class per texel."""

    positions: np.ndarray
    cls: np.ndarray


@dataclass
class HeadAssets:
    """The FLAME layer and the derived per-model data (see the module docstring)."""

    flame: FLAME
    head_model: str  # "builtin" | "flame"
    head_version: str
    head_topology: str
    expression_names: Optional[Tuple[str, ...]]
    face_class: np.ndarray  # (F,) uint8
    eye_vertices: Tuple[np.ndarray, np.ndarray]  # vertex ids of the left, right eyeball
    template: np.ndarray  # (V, 3) rest template
    template_landmarks: np.ndarray  # (68, 3)
    uv_corners: torch.Tensor  # (F, 3, 2) grid_sample coordinates of each face corner
    _bakes: Dict[int, UVBake] = field(default_factory=dict)
    _cache: Dict[tuple, object] = field(default_factory=dict)

    @property
    def faces(self) -> torch.Tensor:
        return self.flame.faces

    @property
    def num_vertices(self) -> int:
        return int(self.flame.num_vertices)

    def uv_bake(self, size: int) -> UVBake:
        if size not in self._bakes:
            self._bakes[size] = _bake(self, size)
        return self._bakes[size]

    def cached(self, key: tuple, make):
        """`make()` computed once per key for this model (per-model constant buffers, e.g. texture masks)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def rest_vertices(self, shape: torch.Tensor, expression: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(1, V, 3) rest-pose vertices after the shape (and expression) blendshapes."""
        f = self.flame
        v = f.v_template + torch.einsum("vcs,s->vc", f.shapedirs[:, :, :shape.shape[-1]], shape.reshape(-1))
        if expression is not None:
            v = v + torch.einsum("vce,e->vc", f.exprdirs[:, :, :expression.shape[-1]], expression.reshape(-1))
        return v[None]

    def pose_transforms(self, shape: torch.Tensor, expression: torch.Tensor, pose: Dict[str, torch.Tensor]):
        """Rigid transforms (1, 5, 4, 4) rest -> posed of FLAME's joints (root, neck/head, jaw, eyes)."""
        f = self.flame
        v_shaped = self.rest_vertices(shape, expression)
        joints = torch.matmul(f.j_regressor, v_shaped)
        full = torch.cat([torch.zeros(1, 3), pose["neck"].reshape(1, 3), pose["jaw"].reshape(1, 3),
                          pose["left_eye"].reshape(1, 3), pose["right_eye"].reshape(1, 3)], dim=1)
        rots = batch_rodrigues(full.reshape(-1, 3)).view(1, 5, 3, 3)
        _, transforms = rigid_transforms(rots, joints, f.parents)
        return transforms


def apply_transform(transform: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(4, 4) rigid transform applied to points (N, 3)."""
    return points @ transform[:3, :3].T + transform[:3, 3]


def blend_transforms(transforms: torch.Tensor, weights: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Linear blend skinning of points (N, 3) with transforms (J, 4, 4) and weights (N, J)."""
    per_point = torch.einsum("nj,jab->nab", weights, transforms)
    return (per_point[:, :3, :3] * points[:, None, :]).sum(-1) + per_point[:, :3, 3]


def _face_classes(template: np.ndarray, faces: np.ndarray, weights: np.ndarray, lmk: np.ndarray):
    """(F,) classes and the eyeball vertex ids from the template, skinning weights and landmarks."""
    eye_l = np.where(weights[:, 3] > 0.5)[0]
    eye_r = np.where(weights[:, 4] > 0.5)[0]
    is_eye = np.zeros(len(template), bool)
    is_eye[eye_l] = True
    is_eye[eye_r] = True
    centroid = template[faces].mean(1)
    x, y, z = centroid.T
    cls = np.full(len(faces), SKIN, np.uint8)
    # Neck: below the jaw contour (landmarks 0..16) in front of it, below the jaw angle behind it.
    contour = lmk[3:14]  # the jaw line from angle to angle (its ends run up to the ears)
    order = np.argsort(contour[:, 0])
    jaw_y = np.interp(x, contour[order, 0], contour[order, 1])
    jaw_z = np.interp(np.abs(x), np.abs(lmk[8:17, 0]), lmk[8:17, 2])
    back_y = lmk[4, 1] - 0.012
    neck = np.where(z > jaw_z - 0.015, y < jaw_y - 0.006, y < back_y)
    cls[neck] = NECK
    # Mouth interior: faces near the mouth that no view of the closed-mouth template sees.
    mouth_w = 0.5 * (lmk[54, 0] - lmk[48, 0])
    mouth_y = 0.5 * (lmk[62, 1] + lmk[66, 1])
    near_mouth = (np.abs(x) < mouth_w * 1.3) & (np.abs(y - mouth_y) < 0.03) & (z > lmk[4, 2] - 0.03)
    seen = _visible_faces(template, faces, centre=np.array([0.0, mouth_y, 0.0]))
    cls[near_mouth & ~seen & ~is_eye[faces].any(1)] = MOUTH
    cls[is_eye[faces].all(1)] = EYES
    return cls, eye_l, eye_r


def _visible_faces(template: np.ndarray, faces: np.ndarray, centre: np.ndarray, size: int = 512) -> np.ndarray:
    """(F,) bool: faces seen in orthographic views of the template from the front half-space."""
    from scipy.spatial.transform import Rotation

    from next3d.render.rasterize import rasterize

    seen = np.zeros(len(faces), bool)
    faces_t = torch.as_tensor(faces)
    for yaw, pitch in ((0, 0), (35, 0), (-35, 0), (0, 30), (0, -30), (60, 0), (-60, 0)):
        rot = Rotation.from_euler("xy", [pitch, yaw], degrees=True).as_matrix()
        p = (template - centre) @ rot.T
        ndc = np.stack([p[:, 0] / 0.2, -p[:, 1] / 0.2, -p[:, 2]], 1)
        frags = rasterize(torch.as_tensor(ndc, dtype=torch.float32)[None], faces_t, size)
        fid = frags.face_idx[0].numpy()
        seen[np.unique(fid[fid >= 0])] = True
    return seen


def _bake(assets: HeadAssets, size: int) -> UVBake:
    from scipy import ndimage

    from next3d.render.interpolate import interpolate_face_attrs
    from next3d.render.rasterize import rasterize

    f = assets.flame
    uv = f.uv_coords.float()
    ndc = torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1], torch.zeros_like(uv[:, 0])], dim=-1)[None]
    frags = rasterize(ndc, f.uv_faces, size)
    template = torch.as_tensor(assets.template, dtype=torch.float32)
    faces = f.faces
    pos = interpolate_face_attrs(frags, template[faces])[0].numpy()  # (S, S, 3)
    fid = frags.face_idx[0].numpy()
    covered = fid >= 0
    cls = np.where(covered, assets.face_class[np.clip(fid, 0, None)], 0).astype(np.uint8)
    if not covered.all():
        _, (ii, jj) = ndimage.distance_transform_edt(~covered, return_indices=True)
        pos, cls = pos[ii, jj], cls[ii, jj]
    return UVBake(positions=pos.astype(np.float32), cls=cls)


@functools.lru_cache(maxsize=4)
def _load(flame_dir: Optional[str]) -> HeadAssets:
    from next3d.config import topology_hash
    from next3d.flame import load_flame_model

    data = load_flame_model(flame_dir)
    flame = FLAME(data).eval()
    builtin = data.name == "builtin"
    if builtin:
        from next3d.flame.builtin import BUILTIN_VERSION
        from next3d.flame.builtin.blendshapes import EXPRESSION_NAMES

        version, names = BUILTIN_VERSION, tuple(EXPRESSION_NAMES)
    else:
        version, names = data.name, None
    template = np.asarray(data.v_template, np.float64)
    faces = np.asarray(data.faces, np.int64)
    with torch.no_grad():
        lmk = flame(batch_size=1).landmarks[0].double().numpy()
    cls, eye_l, eye_r = _face_classes(template, faces, np.asarray(data.weights), lmk)
    uv = torch.as_tensor(np.asarray(data.uv_coords), dtype=torch.float32)
    grid = torch.stack([2 * uv[:, 0] - 1, 1 - 2 * uv[:, 1]], dim=-1)
    uv_corners = grid[torch.as_tensor(np.asarray(data.uv_faces), dtype=torch.long)]
    return HeadAssets(
        flame=flame, head_model="builtin" if builtin else "flame", head_version=version,
        head_topology=topology_hash(faces, data.uv_faces, len(data.uv_coords)), expression_names=names,
        face_class=cls, eye_vertices=(eye_l, eye_r), template=template, template_landmarks=lmk,
        uv_corners=uv_corners)


def load_head_assets(flame_dir: Union[str, Path, None] = None) -> HeadAssets:
    """Assets for the FLAME folder `flame_dir` (None: $NEXT3D_FLAME_DIR, else the built-in head); cached."""
    from next3d.flame.files import resolve_flame_dir

    resolved = resolve_flame_dir(flame_dir)
    return _load(None if resolved is None else str(resolved))
