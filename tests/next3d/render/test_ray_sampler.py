import math

import pytest
import torch

from helpers import assert_close
from next3d.render.cameras import DEFAULT_PIVOT, DEFAULT_RADIUS, FFHQ_FOCAL, orbit_label, project
from next3d.render.ray_sampler import make_rays, pixel_uv, rays_to_image
from torch_utils.misc import ShapeError


def test_pixel_centres():
    uv = pixel_uv(4)
    assert uv.shape == (16, 2)
    assert_close(uv[0], torch.tensor([0.125, 0.125]), name="first pixel")
    assert_close(uv[1], torch.tensor([0.375, 0.125]), name="second pixel runs along u")
    assert_close(uv[4], torch.tensor([0.125, 0.375]), name="second row")


def test_frontal_rays_point_from_camera_to_pivot():
    res = 4
    c = orbit_label(0.0, 0.0)
    origins, dirs = make_rays(c, res)
    assert origins.shape == (1, res * res, 3) and dirs.shape == (1, res * res, 3)
    assert_close(origins[0, 0], torch.tensor([0.0, 0.0, 0.2 + DEFAULT_RADIUS]), name="camera origin")
    assert_close(dirs.norm(dim=-1), torch.ones(1, res * res), name="unit directions")
    # The mean of the four central rays (the image centre) points at the pivot.
    centre = dirs[0].reshape(res, res, 3)[1:3, 1:3].mean(dim=(0, 1))
    centre = centre / centre.norm()
    to_pivot = torch.tensor(DEFAULT_PIVOT) - origins[0, 0]
    assert_close(centre, to_pivot / to_pivot.norm(), atol=1e-6, name="centre ray")


def test_corner_rays_symmetric_and_match_fov():
    res = 2
    origins, dirs = make_rays(orbit_label(0.0, 0.0), res)
    d = dirs[0]  # (4, 3): top-left, top-right, bottom-left, bottom-right
    assert_close(d[0, 0], -d[1, 0], name="left/right mirror x")
    assert_close(d[0, 1], d[1, 1], name="top row shares y")
    assert_close(d[0, 1], -d[2, 1], name="top/bottom mirror y")
    # Camera y is down, world y up: the top row looks upwards (+y) in the world.
    assert float(d[0, 1]) > 0 and float(d[2, 1]) < 0
    # The frontal camera looks along world -z with its x axis along world +x (the
    # subject's left appears on the image's right), so the left column looks towards -x.
    assert float(d[0, 0]) < 0
    # Angle from the optical axis: tan = 0.25 / focal for pixel centres at u = 0.25.
    expected = math.atan(math.hypot(0.25, 0.25) / FFHQ_FOCAL)
    angle = math.acos(float(-d[0, 2]))
    assert abs(angle - expected) < 1e-5


def test_rays_reproject_to_their_pixels():
    res = 5
    c = orbit_label(torch.tensor([0.4, -0.2]), torch.tensor([0.1, 0.3]))
    origins, dirs = make_rays(c, res)
    points = origins + 2.7 * dirs
    uvz = project(points, c)
    uv = pixel_uv(res).expand(2, -1, -1)
    assert_close(uvz[..., :2], uv, atol=1e-5, name="reprojection")
    assert bool((uvz[..., 2] > 0).all())


def test_rays_to_image_layout_and_errors():
    values = torch.arange(2 * 9 * 1, dtype=torch.float32).reshape(2, 9, 1)
    img = rays_to_image(values, 3)
    assert img.shape == (2, 1, 3, 3)
    assert float(img[0, 0, 1, 2]) == 5.0  # ray i * R + j
    with pytest.raises(ShapeError, match="camera label"):
        make_rays(torch.zeros(1, 16), 4)
    with pytest.raises(ValueError, match="resolution"):
        make_rays(orbit_label(), 0)
