"""Mouth cap, lip crop box, crop/paste of the front plane."""

import numpy as np
import pytest
import torch

from helpers import assert_close
from next3d.render import mouth_region as mr
from next3d.render.triplane_coords import flame_to_world, world_to_plane_coords
from torch_utils.misc import ShapeError


def _synthetic_landmarks(batch=2, mouth_open=0.01):
    """68 landmarks with an elliptical lip ring around (0, -0.05, 0.09)."""
    lms = torch.zeros(batch, 68, 3)
    lms[:, :, 2] = 0.05
    angles_outer = torch.linspace(0, 2 * np.pi, 13)[:-1]
    lms[:, 48:60, 0] = -0.025 * torch.cos(angles_outer)  # 48 at x=-0.025, 54 at x=+0.025
    lms[:, 48:60, 1] = -0.05 + 0.012 * torch.sin(angles_outer)
    lms[:, 48:60, 2] = 0.09
    angles_inner = torch.linspace(0, 2 * np.pi, 9)[:-1]
    lms[:, 60:68, 0] = -0.018 * torch.cos(angles_inner)
    lms[:, 60:68, 1] = -0.05 + mouth_open * torch.sin(angles_inner)
    lms[:, 60:68, 2] = 0.085 + 0.002 * torch.cos(angles_inner)
    return lms


def test_lip_box_matches_design_rule():
    lms = _synthetic_landmarks()
    lms[1, :, 0] += 0.01  # second sample shifted right
    box = mr.lip_box(lms, box_warp=1.0)
    assert box.shape == (2, 3)
    # grid = 2 * 2.5 * (x, y + 0.01) / box_warp
    assert_close(box[0, :2], torch.tensor([0.0, 5 * (-0.05 + 0.01)]), atol=1e-6, name="centre")
    assert_close(box[1, :2], torch.tensor([0.05, 5 * (-0.05 + 0.01)]), atol=1e-6, name="shifted centre")
    # width 0.05 m > height 0.024 m: side = 1.2 * 5 * 0.05
    assert_close(box[:, 2], torch.full((2,), 1.2 * 5 * 0.05), atol=1e-6, name="side")
    box2 = mr.lip_box(lms, box_warp=2.0)
    assert_close(box2, box / 2, name="box_warp scales grid coordinates")


def test_lip_box_on_real_landmarks(flame_deca_dir):
    lms = torch.from_numpy(np.loadtxt(flame_deca_dir / "demo_next3d_kpt.txt")).float()[None]
    box = mr.lip_box(lms)
    grid = world_to_plane_coords(flame_to_world(lms))[:, 0, 48:60]
    half = box[0, 2] / 2
    inside = (grid - box[0, :2]).abs().max()
    assert inside < half, "all lip landmarks lie inside the square box"
    assert inside > half / 1.25, "the box is tight (1.2 x extent)"
    # the mouth sits below the centre of the face: negative grid y (row < R/2)
    assert -0.6 < float(box[0, 1]) < 0.0


def test_crop_mouth_reads_the_box():
    res, size = 32, 8
    coords = (torch.arange(res) + 0.5) / res * 2 - 1
    plane = torch.stack(torch.meshgrid(coords, coords, indexing="xy"), 0)[None]  # (1, 2, R, R): (grid x, grid y)
    box = torch.tensor([[0.1, -0.3, 0.5]])
    patch = mr.crop_mouth(plane, box, size=size)
    assert patch.shape == (1, 2, size, size)
    local = (torch.arange(size) + 0.5) / size * 2 - 1
    exp_x = 0.1 + 0.25 * local
    exp_y = -0.3 + 0.25 * local
    assert_close(patch[0, 0, 3], exp_x, atol=1e-5, name="patch x follows the box")
    assert_close(patch[0, 1, :, 5], exp_y, atol=1e-5, name="patch y follows the box")


def test_paste_mouth_inverse_of_crop():
    res = 64
    plane = torch.randn(2, 3, res, res)
    mouth = torch.randn(2, 3, 16, 16)
    # side 0.5 grid units = 16 pixels, centred on pixel edges: crop and paste are exact
    box = torch.tensor([[0.0, 0.25, 0.5], [-0.5, 0.0, 0.5]])
    pasted = mr.paste_mouth(plane, mouth, box)
    assert_close(mr.crop_mouth(pasted, box, size=16), mouth, atol=1e-5, name="crop(paste(mouth)) = mouth")
    # outside the box the plane is untouched
    assert_close(pasted[0, :, :, :20], plane[0, :, :, :20], name="left of box 0")
    assert_close(pasted[0, :, :32, :], plane[0, :, :32, :], name="above box 0")
    changed = ((pasted - plane).abs() > 1e-4).any(dim=1)
    assert int(changed[0].sum()) == 16 * 16 and int(changed[1].sum()) == 16 * 16
    rows, cols = torch.nonzero(changed[0], as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (32, 47, 24, 39)


def test_paste_blends_partial_pixels_and_is_differentiable():
    plane = torch.zeros(1, 1, 16, 16, requires_grad=True)
    mouth = torch.ones(1, 1, 4, 4, requires_grad=True)
    box = torch.tensor([[0.03, 0.0, 0.5]])  # not pixel aligned
    out = mr.paste_mouth(plane, mouth, box)
    assert float(out.detach().min()) >= 0 and float(out.detach().max()) <= 1 + 1e-6
    assert abs(float(out.detach().sum()) - (0.5 / 2 * 16) ** 2) < 0.5, "pasted area = box area in pixels"
    (out * torch.randn_like(out)).sum().backward()
    assert plane.grad is not None and mouth.grad is not None and mouth.grad.abs().sum() > 0
    crop = mr.crop_mouth(plane, box)
    crop.sum().backward()
    assert plane.grad.abs().sum() > 0


def test_mouth_cap_covers_inner_lip_polygon():
    lms = _synthetic_landmarks(batch=1)
    cap, faces = mr.mouth_cap(lms)
    assert cap.shape == (1, 9, 3) and faces.shape == (8, 3) and faces.dtype == torch.int64
    assert_close(cap[0, :8, :2], lms[0, 60:68, :2], name="cap ring = inner lip xy")
    assert_close(cap[0, :, 2], torch.full((9,), float(lms[0, 60:68, 2].min())), name="cap flattened to deepest z")
    tri = cap[0, :, :2][faces]  # (8, 3, 2)
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    fan_area = (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).abs().sum() / 2
    poly = lms[0, 60:68, :2].numpy()
    shoelace = 0.5 * abs(np.dot(poly[:, 0], np.roll(poly[:, 1], -1)) - np.dot(poly[:, 1], np.roll(poly[:, 0], -1)))
    assert abs(float(fan_area) - shoelace) < 1e-9 + 1e-4 * shoelace
    closed, _ = mr.mouth_cap(_synthetic_landmarks(batch=1, mouth_open=0.0))
    assert float(closed[0, :, 1].std()) < 1e-6, "closed mouth gives a degenerate cap"


@pytest.mark.parametrize("bad", [torch.zeros(2, 67, 3), torch.zeros(68, 3), torch.zeros(2, 68, 2)])
def test_bad_landmarks(bad):
    with pytest.raises(ShapeError, match=r"landmarks: expected .*68, 3"):
        mr.lip_box(bad)
    with pytest.raises(ShapeError, match="landmarks"):
        mr.mouth_cap(bad)


def test_bad_box_and_plane():
    with pytest.raises(ShapeError, match="box"):
        mr.crop_mouth(torch.zeros(2, 3, 8, 8), torch.zeros(2, 4))
    with pytest.raises(ShapeError, match="front_plane: expected 4 dimensions"):
        mr.crop_mouth(torch.zeros(3, 8, 8), torch.zeros(1, 3))
    with pytest.raises(ShapeError, match="mouth"):
        mr.paste_mouth(torch.zeros(2, 3, 8, 8), torch.zeros(2, 4, 4, 4), torch.ones(2, 3))
