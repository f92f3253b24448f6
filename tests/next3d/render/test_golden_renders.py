"""Golden renders of the built-in head: geometry, rasteriser and shading together.

A change to the built-in head or the shading shows up here; regenerate with
NEXT3D_REGENERATE_GOLDEN=1 after looking at the new image (tests/golden.py).
"""

import pytest
import torch

from golden import check_golden
from next3d.flame import FLAME, load_flame_model
from next3d.render.cameras import orbit_label
from next3d.render.mesh_shading import render_mesh


@pytest.fixture(scope="module")
def flame():
    return FLAME(load_flame_model(None))


@pytest.mark.parametrize("name, yaw, pitch, params", [
    ("builtin_front_neutral", 0.0, 0.0, {}),
    ("builtin_three_quarter_jaw", 0.6, 0.15, {"jaw": torch.tensor([[0.3, 0.0, 0.0]])}),
])
def test_builtin_head_render_matches_golden(flame, name, yaw, pitch, params):
    with torch.no_grad():
        out = flame(batch_size=1, **params)
        render = render_mesh(out.vertices, flame.faces, orbit_label(yaw, pitch), image_size=96)
    assert float(render.mask.mean()) > 0.2  # the head fills a good part of the frame
    check_golden(name, render.shaded[0])
