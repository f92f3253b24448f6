"""Mesh renderings for the deformation-aware discriminator: normal map and Lambertian shading.

A FLAME mesh (FLAME space) is moved into world space with `triplane_coords.flame_to_world`
(the same box the volume renderer uses), projected with the camera of a label
(`projection.perspective_from_label`, conventions in `next3d.render.cameras`) and
rasterised with perspective-correct barycentrics; the nearest surface wins, no culling.

* **Normals** are per-vertex (area-weighted mean of the adjacent face normals, outward for
  a mesh wound counter-clockwise seen from outside, as FLAME is), rotated into camera
  space, interpolated per pixel and renormalised. Faces seen from behind (inside the
  mouth, eye sockets, the neck opening) are shaded on the side the camera sees: their
  normal is flipped.
* **Normal map** channels are (x right, y up, z towards the camera) in [-1, 1], the usual
  normal-map display convention; i.e. (n_x, -n_y, -n_z) of the OpenCV camera-space normal.
  A surface facing the camera is (0, 0, 1).
* **Lambertian shading**: grey `ambient + (1 - ambient) * max(0, n . l)` mapped from [0, 1]
  to [-1, 1] like images. `l` is the unit direction TOWARDS the light, fixed in camera
  space (OpenCV axes): `DEFAULT_LIGHT = (-0.4, -0.5, -1)` normalised, i.e. the light sits
  in front of the face, up and to the left of the camera as seen in the image; it moves
  with the camera, so every view is lit the same way.
* Background pixels hold `background` (default -1, black) in both images; `mask` is 1 on
  the mesh, 0 elsewhere.

Shapes: vertices (B, V, 3) FLAME space, faces (F, 3) int64, camera labels c (B, 25);
outputs (B, 3, H, W) and mask (B, 1, H, W), float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from next3d.render.cameras import split_label
from next3d.render.interpolate import interpolate
from next3d.render.projection import perspective_from_label
from next3d.render.rasterize import rasterize
from next3d.render.triplane_coords import flame_to_world
from torch_utils.misc import ShapeError, assert_shape

DEFAULT_LIGHT = (-0.4, -0.5, -1.0)
DEFAULT_AMBIENT = 0.25


@dataclass(frozen=True)
class MeshRendering:
    """normals (B, 3, H, W) and shaded (B, 3, H, W) in [-1, 1]; mask (B, 1, H, W) in {0, 1}."""

    normals: torch.Tensor
    shaded: torch.Tensor
    mask: torch.Tensor


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit per-vertex normals (B, V, 3): area-weighted sums of adjacent face normals.

    Vertices used by no face (or only by degenerate faces) get a zero normal.
    """
    assert_shape(vertices, [None, None, 3], "vertices")
    assert_shape(faces, [None, 3], "faces")
    faces = faces.long()
    tri = vertices[:, faces]  # (B, F, 3, 3)
    # Cross product length = 2 x area: the sum is area-weighted.
    face_n = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    normals = torch.zeros_like(vertices)
    for k in range(3):
        normals = normals.index_add(1, faces[:, k], face_n)
    return F.normalize(normals, dim=-1, eps=1e-12)


def _image_hw(image_size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    hw = tuple(int(s) for s in image_size)
    if len(hw) != 2:
        raise ValueError(f"image_size: expected an int or (H, W), got {image_size!r}")
    return hw


def render_mesh(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    c: torch.Tensor,
    image_size: Union[int, Sequence[int]] = 512,
    *,
    light: Sequence[float] = DEFAULT_LIGHT,
    ambient: float = DEFAULT_AMBIENT,
    background: float = -1.0,
    rasterize_impl: str = "auto",
) -> MeshRendering:
    """Render FLAME meshes under camera labels as normal maps and Lambertian shading.

    Args:
        vertices: (B, V, 3) FLAME-space vertices.
        faces: (F, 3) int64.
        c: (B, 25) camera labels (cam2world + normalised intrinsics, OpenCV axes).
        image_size: int or (H, W); any resolution.
        light: direction towards the light in camera space (OpenCV axes), any length.
        ambient: ambient term in [0, 1].
        background: value of uncovered pixels in `normals` and `shaded`.
        rasterize_impl: passed to `rasterize`.
    Returns:
        MeshRendering(normals (B, 3, H, W), shaded (B, 3, H, W), mask (B, 1, H, W)).
    """
    assert_shape(vertices, [None, None, 3], "vertices")
    batch = vertices.shape[0]
    assert_shape(faces, [None, 3], "faces")
    if faces.is_floating_point():
        raise ShapeError(f"faces: expected an integer tensor, got {faces.dtype}")
    assert_shape(c, [batch, 25], "camera label c")
    if not 0.0 <= ambient <= 1.0:
        raise ValueError(f"ambient: expected a value in [0, 1], got {ambient}")
    height, width = _image_hw(image_size)

    world = flame_to_world(vertices.float())
    ndc, w = perspective_from_label(world, c.float())
    frags = rasterize(ndc, faces, (height, width), clip_w=w, perspective_correct=True, impl=rasterize_impl)

    cam2world, _ = split_label(c.float())
    rot_w2c = cam2world[:, :3, :3].transpose(1, 2)  # world -> camera rotation
    normals_cam = torch.einsum("bij,bvj->bvi", rot_w2c, vertex_normals(world, faces))
    pos_cam = torch.einsum("bij,bvj->bvi", rot_w2c, world - cam2world[:, None, :3, 3])
    attrs = interpolate(frags, torch.cat([normals_cam, pos_cam], dim=-1), faces)  # (B, H, W, 6)
    normal = F.normalize(attrs[..., :3], dim=-1, eps=1e-12)
    # Show the side the camera sees: flip where the winning FACE is seen from behind
    # (face normal . (camera - p) < 0). Deciding per face, not by the interpolated vertex
    # normal, keeps grazing front faces at the silhouette unflipped.
    tri = pos_cam[:, faces.long()]  # (B, F, 3, 3)
    face_n = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    fid = frags.face_idx.clamp(min=0).reshape(batch, -1, 1).expand(-1, -1, 3)
    pixel_face_n = torch.gather(face_n, 1, fid).view(batch, height, width, 3)
    away = (pixel_face_n * attrs[..., 3:]).sum(-1, keepdim=True) > 0
    normal = torch.where(away, -normal, normal)

    light_t = F.normalize(torch.as_tensor(light, dtype=normal.dtype, device=normal.device), dim=0)
    lambert = (normal * light_t).sum(-1, keepdim=True).clamp(min=0.0)
    intensity = ambient + (1.0 - ambient) * lambert  # (B, H, W, 1) in [0, 1]

    mask = frags.mask[..., None].to(normal.dtype)
    display = normal * torch.tensor([1.0, -1.0, -1.0], dtype=normal.dtype, device=normal.device)
    normals_img = display * mask + background * (1 - mask)
    shaded = (2 * intensity - 1).expand(-1, -1, -1, 3) * mask + background * (1 - mask)
    to_nchw = lambda x: x.permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return MeshRendering(normals=to_nchw(normals_img), shaded=to_nchw(shaded), mask=to_nchw(mask))
