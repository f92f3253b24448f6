"""Reenactment: frame i uses driver frame i exactly, --relative with a still driver gives the neutral
avatar, avatar files round-trip and are checked."""

import numpy as np
import pytest
import torch

from next3d.animation.avatar import AvatarError, load_avatar, save_avatar
from next3d.animation.drivers import DriverSequence
from next3d.animation.reenact import (ReenactConfig, ReenactError, avatar_identity, build_reenact_plan,
                                      reenact_frames, seed_identity)
from next3d.animation.render_video import RenderVideoOptions


def _driver(jaws):
    n = len(jaws)
    jaw = torch.zeros(n, 3)
    jaw[:, 0] = torch.tensor(jaws)
    params = {"expression": torch.zeros(n, 3), "jaw": jaw, "neck": torch.zeros(n, 3),
              "left_eye": torch.zeros(n, 3), "right_eye": torch.zeros(n, 3)}
    return DriverSequence(kind="params", names=tuple(f"frame {i}" for i in range(n)), params=params)


def test_frame_i_uses_driver_frame_i(tiny_G):
    identity = seed_identity(tiny_G, 2)
    driver = _driver([0.0, 0.3, 0.0])
    plan = build_reenact_plan(tiny_G, identity, driver, ReenactConfig())
    # Meshes: frames 0 and 2 are the same pose but not consecutive -> 3 rows; frame 1 is the open jaw.
    assert plan.mesh_index.tolist() == [0, 1, 2]
    with torch.no_grad():
        want, _ = tiny_G.head_mesh({"jaw": driver.params["jaw"][1:2]})
    torch.testing.assert_close(plan.vertices[1:2], want)
    frames = list(reenact_frames(tiny_G, identity, driver, ReenactConfig(render=RenderVideoOptions(batch=3))))
    assert len(frames) == 3 and frames[0].shape == (3, 64, 64)
    torch.testing.assert_close(frames[0], frames[2], atol=2e-4, rtol=0)
    assert float((frames[1] - frames[0]).abs().mean()) > 1e-3


def test_relative_still_driver_reproduces_the_neutral_avatar(tiny_G, tmp_path):
    g = torch.Generator().manual_seed(3)
    ws = tiny_G.mapping(torch.randn(1, tiny_G.z_dim, generator=g), torch.zeros(1, 25))[0]
    neutral = {"jaw": torch.tensor([0.1, 0.0, 0.0]), "expression": torch.tensor([0.5, -0.5])}
    path = save_avatar(tmp_path / "me.npz", ws, torch.randn(5, generator=g) * 0.5, neutral=neutral,
                       head_topology=tiny_G.config.head_topology)
    avatar = load_avatar(path)
    avatar.check(tiny_G)
    identity = avatar_identity(avatar)
    still = _driver([0.4, 0.4])  # the driver's own neutral has an open jaw: it must not leak
    plan = build_reenact_plan(tiny_G, identity, still, ReenactConfig(relative=True))
    with torch.no_grad():
        v, _ = tiny_G.head_mesh({"shape": avatar.shape[None], "jaw": neutral["jaw"][None],
                                 "expression": neutral["expression"][None]})
    assert plan.vertices.shape[0] == 1  # both frames share one mesh (and one set of planes)
    torch.testing.assert_close(plan.vertices[0], v[0], atol=1e-5, rtol=0)


def test_avatar_file_errors(tiny_G, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, ws=np.zeros((3, 4), np.float32))
    with pytest.raises(AvatarError, match="missing 'meta'"):
        load_avatar(bad)
    path = save_avatar(tmp_path / "a.npz", torch.zeros(3, 4), torch.zeros(2), generator=tmp_path / "G.n3d")
    avatar = load_avatar(path)
    assert avatar.generator == tmp_path / "G.n3d"
    with pytest.raises(AvatarError, match=r"ws has shape \(3, 4\), the generator expects"):
        avatar.check(tiny_G)
    with pytest.raises(ReenactError, match="the driver has no cameras"):
        build_reenact_plan(tiny_G, seed_identity(tiny_G, 0), _driver([0.0]), ReenactConfig(camera="driver"))
