"""Latent paths: keyframes are hit exactly, paths loop, and seeds mean what they mean in `generate`."""

import pytest
import torch

from next3d.animation.latent_paths import LatentPathError, interpolate_ws, keyframe_positions, seed_ws
from next3d.generate import frontal_label, seeds_to_z


def _keys(k=3):
    g = torch.Generator().manual_seed(1)
    return torch.randn(k, 4, 5, generator=g)


@pytest.mark.parametrize("kind", ["cubic", "linear"])
def test_keyframes_are_hit_and_the_path_loops(kind):
    keys = _keys(3)
    path = interpolate_ws(keys, 12, kind=kind)
    assert path.shape == (12, 4, 5)
    for j in range(3):
        torch.testing.assert_close(path[4 * j], keys[j], atol=1e-5, rtol=0)
    # Looping: the step from the last frame back to frame 0 is like the other steps (no jump).
    steps = (path.roll(-1, 0) - path).flatten(1).norm(dim=1)
    assert float(steps.max()) < 3 * float(steps.mean())


def test_linear_midpoints_and_open_paths():
    keys = _keys(2)
    path = interpolate_ws(keys, 4, kind="linear")
    torch.testing.assert_close(path[1], 0.5 * (keys[0] + keys[1]), atol=1e-6, rtol=0)
    torch.testing.assert_close(path[3], 0.5 * (keys[0] + keys[1]), atol=1e-6, rtol=0)  # on the way back
    open_path = interpolate_ws(_keys(3), 5, kind="cubic", loop=False)
    torch.testing.assert_close(open_path[-1], _keys(3)[-1], atol=1e-5, rtol=0)
    assert keyframe_positions(5, 3, loop=False).tolist() == [0, 0.5, 1, 1.5, 2]


def test_one_keyframe_is_constant_and_errors():
    keys = _keys(1)
    path = interpolate_ws(keys, 3)
    assert torch.equal(path, keys.expand(3, -1, -1))
    with pytest.raises(LatentPathError, match="unknown interpolation"):
        interpolate_ws(keys, 3, kind="slerp")
    with pytest.raises(LatentPathError, match="at least 1 frame"):
        interpolate_ws(keys, 0)


def test_seed_ws_matches_the_generate_convention(tiny_G):
    ws = seed_ws(tiny_G, [3, 5], truncation_psi=0.5)
    z = seeds_to_z([3, 5], tiny_G.z_dim)
    ref = tiny_G.mapping(z, frontal_label(tiny_G).expand(2, -1), truncation_psi=0.5, truncation_cutoff=14)
    torch.testing.assert_close(ws, ref)
    assert ws.shape == (2, tiny_G.num_ws, tiny_G.w_dim)
