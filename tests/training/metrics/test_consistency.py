"""Reprojection consistency: ~0 for a textured mesh warped with its true depth, larger otherwise."""

import math

import pytest
import torch

from next3d.flame import FLAME, load_flame_model
from next3d.render.cameras import orbit_label, split_label
from next3d.render.interpolate import interpolate
from next3d.render.projection import perspective_from_label
from next3d.render.rasterize import rasterize
from next3d.render.triplane_coords import flame_to_world
from torch_utils.misc import ShapeError
from training.metrics.consistency import reprojection_error, rotate_about_pivot


@pytest.fixture(scope="module")
def head():
    flame = FLAME(load_flame_model(None))
    return flame(batch_size=1).vertices, flame.faces


def render_textured(vertices, faces, c, res):
    """Per-vertex colours (a smooth function of the world position), along-ray depth, mask."""
    world = flame_to_world(vertices).expand(c.shape[0], -1, -1)
    colour = torch.stack([torch.sin(6 * world[..., 0]), torch.cos(5 * world[..., 1]),
                          torch.sin(4 * world[..., 2] + 3 * world[..., 0])], dim=-1) * 0.8
    ndc, w = perspective_from_label(world, c)
    frags = rasterize(ndc, faces, res, clip_w=w, perspective_correct=True)
    cam2world, _ = split_label(c)
    attrs = interpolate(frags, torch.cat([colour, world], dim=-1), faces)
    mask = frags.mask[:, None].float()
    image = attrs[..., :3].permute(0, 3, 1, 2) * mask - (1 - mask)
    depth = (attrs[..., 3:] - cam2world[:, None, None, :3, 3]).norm(dim=-1)[:, None] * mask
    return image, depth, mask


def test_true_depth_warps_with_small_error(head):
    vertices, faces = head
    c_a = orbit_label(torch.tensor([0.0, 0.2]))
    c_b = rotate_about_pivot(c_a, torch.tensor([0.25, -0.3]), (0.0, 0.0, 0.2))
    # The rotation about the pivot keeps the camera on its orbit: same as orbit_label at the new yaw.
    torch.testing.assert_close(c_b, orbit_label(torch.tensor([0.25, -0.1])), atol=1e-5, rtol=0)
    img_a, d_a, m_a = render_textured(vertices, faces, c_a, 64)
    img_b, d_b, _ = render_textured(vertices, faces, c_b, 64)
    true = reprojection_error(img_a, d_a, c_a, img_b, d_b, c_b, mask_a=m_a)
    wrong = reprojection_error(img_a, d_a * 1.04, c_a, img_b, d_b, c_b, mask_a=m_a, rel_tol=0.1)
    assert (true["coverage"] > 0.1).all()
    assert (true["l1"] < 0.02).all()
    assert (wrong["l1"] > 5 * true["l1"]).all()
    # Identical views: the warp is the identity, error 0 on every covered pixel.
    same = reprojection_error(img_a, d_a, c_a, img_a, d_a, c_a, mask_a=m_a)
    assert same["l1"].abs().max() < 1e-5
    assert not (same["covisible"] & ~m_a.bool()).any()                    # only covered pixels count
    assert same["covisible"].sum() >= 0.97 * m_a.sum()                    # and nearly all of them


def test_occluded_and_outside_pixels_are_excluded(head):
    vertices, faces = head
    c_a = orbit_label(torch.tensor([0.0]))
    c_b = rotate_about_pivot(c_a, torch.tensor([math.pi / 2 - 0.1]), (0.0, 0.0, 0.2))
    img_a, d_a, m_a = render_textured(vertices, faces, c_a, 48)
    img_b, d_b, _ = render_textured(vertices, faces, c_b, 48)
    res = reprojection_error(img_a, d_a, c_a, img_b, d_b, c_b, mask_a=m_a)
    frontal = reprojection_error(img_a, d_a, c_a, img_a, d_a, c_a, mask_a=m_a)
    # Seen from the side, about half of the frontal face is hidden.
    assert 0 < res["coverage"].item() < 0.75 * frontal["coverage"].item()
    assert res["l1"].item() < 0.05
    with pytest.raises(ShapeError):
        reprojection_error(img_a, d_a, c_a, img_b, d_b[:, :, :10], c_b)


def test_geometry_error_against_ground_truth(head):
    from next3d.render.mesh_shading import render_mesh
    from training.metrics.consistency import camera_points, geometry_error

    vertices, faces = head
    c = orbit_label(torch.tensor([0.3]))
    _, depth, mask = render_textured(vertices, faces, c, 64)
    # Ground truth in the data-set convention: camera-space z, OpenCV normals (render_mesh's display
    # normals are (n_x, -n_y, -n_z)).
    z_gt = camera_points(depth, c)[..., 2] * mask[:, 0]
    shown = render_mesh(vertices, faces, c, 64).normals.permute(0, 2, 3, 1)
    n_gt = shown * torch.tensor([1.0, -1.0, -1.0])
    exact = geometry_error(depth, c, z_gt, mask[:, 0], n_gt)
    assert exact["depth_l1"].item() < 1e-5
    assert exact["normal_deg"].item() < 12.0          # finite differences vs smooth vertex normals
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    bumpy = depth + 0.02 * torch.sin(12 * xx) * torch.sin(12 * yy) * mask
    wrong = geometry_error(bumpy, c, z_gt, mask[:, 0], n_gt)
    assert wrong["depth_l1"].item() > 0.005
    assert wrong["normal_deg"].item() > exact["normal_deg"].item() + 10.0
