"""Rendered items: determinism, ground truth against a re-render of the stored parameters, and
appearance parameters changing only the regions they claim."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy import ndimage

from next3d.render.cameras import orbit_label, project
from next3d.render.mesh_shading import render_mesh
from next3d.render.projection import perspective_from_label
from next3d.render.rasterize import rasterize
from next3d.render.triplane_coords import flame_to_world
from next3d.synthetic import SynthDistributions
from next3d.synthetic.head import EYES, HAIR, MOUTH, SKIN
from next3d.synthetic.render import SynthError, check_resolution, render_item, render_scene
from next3d.synthetic.scene import sample_scene

R = 64


@pytest.fixture(scope="module")
def item(assets):
    return render_item(None, 3, 11, R, assets=assets)


def test_same_bytes_twice(assets, item):
    again = render_item(None, 3, 11, R, assets=assets)
    assert again.image.tobytes() == item.image.tobytes()
    assert again.depth.tobytes() == item.depth.tobytes()
    assert again.appearance == item.appearance
    other = render_item(None, 4, 11, R, assets=assets)
    assert other.image.tobytes() != item.image.tobytes()


def test_item_shapes_and_ranges(item):
    assert item.image.shape == (R, R, 3) and item.image.dtype == np.uint8
    assert item.camera.shape == (25,) and item.landmarks_2d.shape == (68, 2)
    assert item.depth.shape == (R, R) and item.normals.shape == (R, R, 3)
    assert set(np.unique(item.segmentation)) <= {0, 1, 2, 3, 4, 5}
    assert np.array_equal(item.mask, (item.segmentation > 0).astype(np.uint8))
    fg = item.mask.astype(bool)
    assert 0.3 < fg.mean() < 0.98  # the head fills the frame, background around it
    assert np.allclose(np.linalg.norm(item.normals[fg], axis=-1), 1.0, atol=1e-4)
    assert (item.normals[~fg] == 0).all() and (item.depth[~fg] == 0).all()
    assert (item.depth[fg] > 1.5).all() and (item.depth[fg] < 3.5).all()  # radius 2.7 around the head
    # Normals face the camera (OpenCV: the camera looks along +z, so a visible surface has n_z < 0).
    assert (item.normals[fg][:, 2] <= 1e-4).mean() > 0.99
    assert (item.segmentation == SKIN).sum() > 0.1 * R * R


def test_ground_truth_agrees_with_a_rerender(assets, item):
    f = assets.flame
    params = {k: torch.as_tensor(v)[None] for k, v in item.flame.items()}
    with torch.no_grad():
        out = f(**params)
    assert np.allclose(out.vertices[0].numpy(), item.vertices, atol=1e-6)
    c = torch.as_tensor(item.camera)[None]
    # Landmarks: the stored FLAME parameters' landmarks projected with the stored camera.
    lmk = project(flame_to_world(out.landmarks), c)[0, :, :2].numpy() * R
    assert np.abs(lmk - item.landmarks_2d).max() < 1e-3
    # Depth and coverage of the FLAME mesh alone: wherever the ground truth says skin or eyes,
    # the head mesh is there at exactly that depth.
    ndc, w = perspective_from_label(flame_to_world(out.vertices), c)
    frags = rasterize(ndc, f.faces, R, clip_w=w, perspective_correct=True)
    head = frags.mask[0].numpy()
    on_head = np.isin(item.segmentation, [SKIN, EYES])
    assert on_head.sum() > 100 and head[on_head].all()
    assert np.allclose(frags.depth[0].numpy()[on_head], item.depth[on_head], rtol=0, atol=1e-5)
    # The project's mesh shading under the same label covers the same head pixels.
    shaded = render_mesh(out.vertices, f.faces, c, R)
    assert shaded.mask[0, 0].numpy().astype(bool)[on_head].all()
    # Pixels the head does not cover are hair, body, mouth parts or background, never skin.
    assert not np.isin(item.segmentation[~head], [SKIN, EYES]).any()


def _changed(a, b):
    return np.abs(a.astype(int) - b.astype(int)).max(-1) > 0


def test_hair_colour_changes_only_hair(assets):
    scene = sample_scene(SynthDistributions(), assets, 5, 0)
    scene.appearance["hair"]["style"] = "short"
    base = render_scene(assets, scene, R)
    other = copy.deepcopy(scene)
    other.appearance["hair"]["rgb"] = [0.6, 0.05, 0.6]
    changed_item = render_scene(assets, other, R)
    changed = _changed(base.image, changed_item.image)
    hair = base.segmentation == HAIR
    assert changed[hair].mean() > 0.8
    assert not changed[~ndimage.binary_dilation(hair, iterations=1)].any()


def test_skin_tone_changes_skin_not_hair(assets):
    scene = sample_scene(SynthDistributions(), assets, 5, 1)
    scene.appearance["hair"]["style"] = "bob"
    base = render_scene(assets, scene, R)
    other = copy.deepcopy(scene)
    other.appearance["skin"]["skin_rgb"] = [0.05, 0.03, 0.02]
    changed = _changed(base.image, render_scene(assets, other, R).image)
    skin = base.segmentation == SKIN
    assert changed[skin].mean() > 0.8
    hair_inner = ndimage.binary_erosion(base.segmentation == HAIR, iterations=1)
    background = ndimage.binary_erosion(base.segmentation == 0, iterations=1)
    assert hair_inner.sum() > 20 and not changed[hair_inner].any()
    assert not changed[background].any()


def test_jaw_open_shows_the_mouth_interior(assets):
    scene = sample_scene(SynthDistributions(), assets, 2, 0)
    scene.camera = orbit_label(0.0, 0.0)[0].numpy()
    scene.flame["expression"][:] = 0
    scene.flame["neck"][:] = 0
    scene.appearance["hair"]["style"] = "buzz"
    scene.flame["jaw"][:] = 0
    closed = render_scene(assets, scene, R, supersample=1)
    scene.flame["jaw"][:] = [0.35, 0.0, 0.0]
    opened = render_scene(assets, scene, R, supersample=1)
    assert (closed.segmentation == MOUTH).sum() == 0
    assert (opened.segmentation == MOUTH).sum() > 20
    assert opened.landmarks_2d[66, 1] - opened.landmarks_2d[62, 1] > closed.landmarks_2d[66, 1] - \
        closed.landmarks_2d[62, 1] + 3


def test_bad_resolution_is_a_one_line_error():
    for bad in (17, 4096, 0):
        with pytest.raises(SynthError, match=f"resolution {bad}") as err:
            check_resolution(bad)
        assert "\n" not in str(err.value)
    check_resolution(64)
