"""Projection helpers into the rasteriser's NDC: conventions pinned."""

from __future__ import annotations

import pytest
import torch

from helpers import assert_close
from next3d.render import cameras
from next3d.render.projection import orthographic, orthographic_front_winding, perspective_from_label
from next3d.render.rasterize import rasterize
from next3d.render.triplane_coords import world_to_plane_coords


def test_orthographic_axes_and_depth():
    p = torch.tensor([[[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]]])
    front = orthographic(p)
    assert_close(front, torch.tensor([[[0.1, 0.2, -0.3], [-0.4, 0.5, 0.6]]]), name="front")
    side = orthographic(p, axes=(2, 1), depth_axis=0, depth_sign=1, scale=2.0)
    assert_close(side, torch.tensor([[[0.6, 0.4, 0.2], [-1.2, 1.0, -0.8]]]), name="side")


def test_orthographic_lands_where_the_planes_are_sampled():
    pts = torch.rand(1, 50, 3) - 0.5
    grid = world_to_plane_coords(pts, box_warp=1.0)  # (1, 3, N, 2)
    for slot, (axes, depth_axis) in enumerate([((0, 1), 2), ((0, 2), 1), ((2, 1), 0)]):
        ndc = orthographic(pts, axes=axes, depth_axis=depth_axis, scale=2.0)
        assert_close(ndc[..., :2], grid[:, slot], name=f"slot {slot}")


def test_front_view_nearest_to_the_viewer_wins():
    # Two parallel triangles at z = +0.2 (nearer the viewer at +z) and z = -0.2.
    tri = torch.tensor([[-0.8, -0.8], [0.8, -0.8], [0.0, 0.8]])
    pts = torch.cat([torch.cat([tri, torch.full((3, 1), z)], 1) for z in (-0.2, 0.2)])[None]
    frags = rasterize(orthographic(pts), torch.tensor([[0, 1, 2], [3, 4, 5]]), 8)
    assert (frags.face_idx[frags.mask] == 1).all() and frags.mask.sum() > 10


def test_front_winding_follows_handedness():
    assert orthographic_front_winding((0, 1), 2, -1) == "cw"   # tri-plane front view: mirrored
    assert orthographic_front_winding((0, 1), 2, 1) == "ccw"
    assert orthographic_front_winding((2, 1), 0, -1) == "ccw"
    assert orthographic_front_winding((0, 2), 1, -1) == "ccw"
    # Pin it on a triangle wound counter-clockwise seen from +z, facing +z.
    tri = torch.tensor([[[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]])
    faces = torch.tensor([[0, 1, 2]])
    winding = orthographic_front_winding((0, 1), 2, -1)
    assert rasterize(orthographic(tri), faces, 8, cull_backfaces=True, front_winding=winding).mask.any()
    # Seen from behind (depth = +z), the same face is a back face.
    back = orthographic(tri, depth_sign=1)
    assert not rasterize(back, faces, 8, cull_backfaces=True,
                         front_winding=orthographic_front_winding((0, 1), 2, 1)).mask.any()


def test_bad_orthographic_arguments():
    p = torch.rand(1, 4, 3)
    with pytest.raises(ValueError, match="permutation"):
        orthographic(p, axes=(0, 0), depth_axis=2)
    with pytest.raises(ValueError, match="depth_sign"):
        orthographic(p, depth_sign=2)
    with pytest.raises(ValueError, match="scale"):
        orthographic(p, scale=0.0)


def test_perspective_conventions():
    c = cameras.orbit_label(0.0, 0.0, pivot=(0.0, 0.0, 0.2))
    pts = torch.tensor([[[0.0, 0.0, 0.2], [0.3, 0.0, 0.2], [0.0, 0.3, 0.2], [0.0, 0.0, 0.7]]])
    ndc, w = perspective_from_label(pts, c)
    assert_close(ndc[0, 0], torch.tensor([0.0, 0.0, 2.7]), atol=1e-6, name="pivot at the image centre")
    assert ndc[0, 1, 0] > 0.1 and abs(ndc[0, 1, 1]) < 1e-6, "world +x appears on the image right"
    assert ndc[0, 2, 1] < -0.1, "world +y (up) appears towards the top (row 0)"
    assert_close(w, ndc[..., 2], name="w = depth")
    assert_close(w[0, 3], torch.tensor(2.2), atol=1e-6, name="nearer point, smaller depth")
    # Analytic position: u = f * x / z + 0.5 -> ndc x = 2 f x / z.
    assert_close(ndc[0, 1, 0], torch.tensor(2 * cameras.FFHQ_FOCAL * 0.3 / 2.7), atol=1e-5, name="focal")


def test_perspective_near_far_give_nan():
    c = cameras.orbit_label(0.0, 0.0)
    pts = torch.tensor([[[0.0, 0.0, 0.2], [0.0, 0.0, 2.85], [0.0, 0.0, 5.0], [0.0, 0.0, -20.0]]])
    ndc, w = perspective_from_label(pts, c, near=0.1, far=10.0)
    assert torch.isfinite(ndc[0, 0]).all()
    assert torch.isnan(ndc[0, 1:]).all(dim=-1).all()  # too near, behind, too far
    assert w[0, 2] < 0
    with pytest.raises(ValueError, match="near"):
        perspective_from_label(pts, c, near=1.0, far=0.5)
