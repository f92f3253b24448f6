"""Mouth cap, lip crop box, crop/paste of the front plane."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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


def _published_box(lms, res=256):
    """Next3D's gen_mouth_mask written out with numpy from FLAME landmarks (B, 68, 3) ->
    [row0, row1, col0, col1] per item, on a res x res front plane."""
    grid = world_to_plane_coords(flame_to_world(lms))[:, 0].numpy().astype(np.float32)  # (B, 68, 2)
    lm = grid * (res / 2) + res / 2
    lips = lm[:, 48:60]
    avg = (lips[:, 0] + lips[:, 6]) * 0.5
    ext = np.maximum(lips[..., 0].max(1) - lips[..., 0].min(1), lips[..., 1].max(1) - lips[..., 1].min(1))
    mask_res = (ext * 1.2).astype(int)
    half = mask_res // 2
    return [[int(a[1] - h), int(a[1] + h), int(a[0] - h), int(a[0] + h)] for a, h in zip(avg, half)]


def test_box_pixels_by_hand():
    # 256 plane: centre pixel coords (130.7, 150.3), side 50.28 px -> int 50, half 25.
    box = torch.tensor([[130.7 / 128 - 1, 150.3 / 128 - 1, 50.28 / 128],
                        [100.2 / 128 - 1, 90.9 / 128 - 1, 47.6 / 128]])  # 47 -> 2 * (47 // 2) = 46
    row0, col0, side = mr.box_pixels(box, 256)
    assert row0.tolist() == [125, 67] and col0.tolist() == [105, 77] and side.tolist() == [50, 46]
    assert row0.dtype == torch.int64


def test_box_pixels_match_published_gen_mouth_mask():
    lms = _synthetic_landmarks(batch=3)
    lms[1, :, 0] += 0.0137
    lms[2, :, :2] *= 1.09
    lms[2, :, 1] += 0.004
    row0, col0, side = mr.box_pixels(mr.lip_box(lms), 256)
    got = [[r, r + s, c, c + s] for r, c, s in zip(row0.tolist(), col0.tolist(), side.tolist())]
    assert got == _published_box(lms)


def _published_crop(plane, rows_cols, size):
    return torch.cat([F.interpolate(plane[i:i + 1, :, r0:r1, c0:c1], size=(size, size), mode="bilinear",
                                    antialias=True) for i, (r0, r1, c0, c1) in enumerate(rows_cols)])


def _box(r0, c0, s, res):
    """A grid-coordinate box whose pixel block is rows [r0, r0 + s), cols [c0, c0 + s)."""
    return [(c0 + s / 2) / (res / 2) - 1, (r0 + s / 2) / (res / 2) - 1, s / (res / 2)]


def test_crop_mouth_is_the_published_one_step_resize():
    res = 48
    plane = torch.randn(3, 2, res, res, generator=torch.Generator().manual_seed(0))
    blocks = [(5, 9, 12), (20, 3, 24), (10, 14, 30)]  # 12 px upsampled to 16; 24 and 30 px downsampled
    box = torch.tensor([_box(r, c, s, res) for r, c, s in blocks])
    patch = mr.crop_mouth(plane, box, size=16)
    assert patch.shape == (3, 2, 16, 16)
    expect = _published_crop(plane, [(r, r + s, c, c + s) for r, c, s in blocks], 16)
    assert_close(patch, expect, atol=1e-5, name="F.interpolate(plane[r0:r1, c0:c1], antialias=True)")


def test_paste_mouth_is_the_published_one_step_resize():
    res = 40
    plane = torch.randn(2, 3, res, res, generator=torch.Generator().manual_seed(1))
    mouth = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    blocks = [(6, 10, 14), (18, 2, 20)]
    box = torch.tensor([_box(r, c, s, res) for r, c, s in blocks])
    pasted = mr.paste_mouth(plane, mouth, box)
    expect = plane.clone()
    for i, (r, c, s) in enumerate(blocks):
        expect[i, :, r:r + s, c:c + s] = F.interpolate(mouth[i:i + 1], size=(s, s), mode="bilinear",
                                                       antialias=True)[0]
    assert_close(pasted, expect, atol=1e-5, name="published paste")
    changed = ((pasted - plane).abs() > 0).any(dim=1)
    assert int(changed[0].sum()) == 14 * 14 and int(changed[1].sum()) == 20 * 20
    # A patch of the box's own size goes in unchanged, and crops back out unchanged.
    same = torch.randn(2, 3, 14, 14)
    box0 = box[:1].expand(2, 3)
    assert_close(mr.crop_mouth(mr.paste_mouth(plane, same, box0), box0, size=14), same, atol=1e-5,
                 name="crop(paste(mouth)) = mouth")


def test_box_outside_the_plane_reads_zeros_and_writes_nothing_there():
    res = 16
    plane = torch.randn(1, 1, res, res)
    box = torch.tensor([_box(-3, 10, 8, res)])  # rows -3..4, cols 10..17 (two past the edge)
    padded = F.pad(plane, (0, 2, 3, 0))  # zeros above and to the right
    expect = F.interpolate(padded[:, :, 0:8, 10:18], size=(12, 12), mode="bilinear", antialias=True)
    assert_close(mr.crop_mouth(plane, box, size=12), expect, atol=1e-5, name="zeros outside")
    pasted = mr.paste_mouth(plane, torch.ones(1, 1, 8, 8), box)
    assert_close(pasted[0, 0, :5, 10:], torch.ones(5, 6), name="inside part written")
    assert_close(pasted[0, 0, 5:], plane[0, 0, 5:], name="rest untouched")


def test_crop_and_paste_are_differentiable_in_plane_and_patch():
    plane = torch.randn(1, 2, 16, 16, requires_grad=True)
    mouth = torch.randn(1, 2, 8, 8, requires_grad=True)
    box = torch.tensor([_box(4, 5, 6, 16)])
    out = mr.paste_mouth(plane, mouth, box)
    (out * torch.randn_like(out)).sum().backward()
    assert float(mouth.grad.abs().sum()) > 0
    assert float(plane.grad[0, :, 4:10, 5:11].abs().max()) == 0.0, "pixels under the patch are replaced"
    plane.grad = None
    mr.crop_mouth(plane, box, size=8).sum().backward()
    assert float(plane.grad[0, :, 4:10, 5:11].abs().min()) > 0 and float(plane.grad.abs().sum()) > 0
    assert float(plane.grad[0, :, :4].abs().max()) == 0.0, "only the box is read"


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
