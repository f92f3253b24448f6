"""The generator on the built-in head (tiny preset): the mouth responds to the jaw, and a
checkpoint round trip reproduces images exactly."""

import pytest
import torch

from next3d.checkpoint import build_generator, save_checkpoint
from next3d.networks.generator import Next3DGenerator
from next3d.presets import get_preset
from next3d.render.cameras import orbit_label
from next3d.render.mouth_region import lip_box


@pytest.fixture(scope="module")
def g():
    torch.manual_seed(1)
    return Next3DGenerator(get_preset("tiny")).eval()


def _box_mask(box, size):
    """Pixels of a (size, size) plane inside a (cx, cy, side) grid-coordinate box."""
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    cx, cy, side = (float(v) for v in box)
    inside_x = (coords - cx).abs() <= side / 2
    inside_y = (coords - cy).abs() <= side / 2
    return inside_y[:, None] & inside_x[None, :]


@torch.no_grad()
def test_jaw_open_changes_the_front_plane_inside_the_lip_box(g):
    z = torch.randn(1, g.z_dim)
    ws = g.mapping(z, orbit_label(0.0, 0.0))
    closed = {"jaw": torch.zeros(1, 3)}
    opened = {"jaw": torch.tensor([[0.35, 0.0, 0.0]])}
    planes_closed = g.synthesize_planes(ws, closed, noise_mode="const")
    planes_open = g.synthesize_planes(ws, opened, noise_mode="const")
    front_diff = (planes_open - planes_closed)[0, 0].abs().mean(dim=0)  # (P, P)
    size = front_diff.shape[-1]
    lmk_closed = g.flame(**closed).landmarks
    lmk_open = g.flame(**opened).landmarks
    inside = _box_mask(lip_box(lmk_closed)[0], size) | _box_mask(lip_box(lmk_open)[0], size)
    assert 0 < int(inside.sum()) < size * size // 4  # the box is a small part of the plane
    mean_in = float(front_diff[inside].mean())
    mean_out = float(front_diff[~inside].mean())
    assert mean_in > 0
    assert mean_in > 4 * mean_out, (mean_in, mean_out)


@torch.no_grad()
def test_checkpoint_round_trip_gives_identical_images(g, tmp_path):
    path = save_checkpoint(tmp_path / "tiny.n3d", config=g.config, G_ema=g)
    g2 = build_generator(path)
    z = torch.randn(2, g.z_dim)
    c = orbit_label(torch.tensor([0.0, 0.4]), torch.zeros(2))
    flame = {"expression": torch.randn(2, 4), "jaw": torch.tensor([[0.1, 0, 0], [0.3, 0, 0]])}

    def render(model):
        gen = torch.Generator().manual_seed(7)  # same ray jitter for both
        return model(z, c, flame, noise_mode="const", generator=gen)

    a, b = render(g), render(g2)
    for key in ("image", "image_raw", "image_depth"):
        assert torch.equal(a[key], b[key]), key
    assert float(a["image"].std()) > 0
