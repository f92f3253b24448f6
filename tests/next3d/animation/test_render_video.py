"""Batched frame rendering: the cached planes equal the generator's own, and reuse gives the same frames."""

import pytest
import torch

from next3d.animation.render_video import (FramePlan, RenderStats, RenderVideoError, RenderVideoOptions,
                                           compose_planes, dedupe_meshes, identity_planes, render_frames)
from next3d.animation.latent_paths import seed_ws
from next3d.animation.trajectories import TrajectoryConfig, trajectory_labels


def test_compose_planes_equals_synthesize_planes(tiny_G):
    ws = seed_ws(tiny_G, [0])
    with torch.no_grad():
        v, lm = tiny_G.head_mesh({"jaw": torch.tensor([[0.25, 0, 0]])})
        ref = tiny_G.synthesize_planes(ws, {"vertices": v, "landmarks": lm}, noise_mode="const")
        got = compose_planes(tiny_G, ws, identity_planes(tiny_G, ws, noise_mode="const"), v, lm, noise_mode="const")
    assert got.shape == ref.shape == (1, 3, tiny_G.config.plane_channels, 64, 64)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)


def _plan(G, frames=3):
    ws = seed_ws(G, [0, 1])
    with torch.no_grad():
        v, lm = G.head_mesh({"jaw": torch.tensor([[0.0, 0, 0], [0.3, 0, 0]])})
    cams = trajectory_labels(TrajectoryConfig(kind="yaw"), frames)
    return FramePlan(ws=ws, vertices=v, landmarks=lm, ws_index=torch.tensor([0, 0, 1][:frames]),
                     mesh_index=torch.tensor([0, 0, 1][:frames]), cameras=cams)


def test_plane_reuse_gives_the_same_frames_as_recomputing(tiny_G):
    plan = _plan(tiny_G)
    reused, fresh = RenderStats(), RenderStats()
    a = list(render_frames(tiny_G, plan, RenderVideoOptions(batch=2, depth=True), stats=reused))
    b = list(render_frames(tiny_G, plan, RenderVideoOptions(batch=3, reuse=False, depth=True), stats=fresh))
    assert [o.index for o in a] == list(range(3))
    for x, y in zip(a, b):
        assert x.image.shape == (3, 64, 64) and x.depth.shape == (1, 32, 32)
        torch.testing.assert_close(x.image, y.image, atol=2e-4, rtol=0)
        torch.testing.assert_close(x.depth, y.depth, atol=2e-4, rtol=0)
    # 2 distinct (identity, mesh) pairs and 2 identities, against one of each per frame without reuse.
    assert (reused.planes, reused.identities) == (2, 2)
    assert (fresh.planes, fresh.identities) == (3, 3)
    assert float((a[0].image - a[2].image).abs().mean()) > 1e-3  # another identity looks different


def test_dedupe_meshes_keeps_consecutive_runs():
    v = torch.zeros(5, 4, 3)
    v[2:4] = 1.0
    lm = torch.zeros(5, 68, 3)
    tv, tl, index = dedupe_meshes(v, lm)
    assert index.tolist() == [0, 0, 1, 1, 2] and tv.shape == (3, 4, 3)
    assert torch.equal(tv[index], v)


def test_bad_plans_are_refused(tiny_G):
    plan = _plan(tiny_G)
    bad = FramePlan(plan.ws, plan.vertices, plan.landmarks, plan.ws_index + 5, plan.mesh_index, plan.cameras)
    with pytest.raises(RenderVideoError, match="ws_index out of range 0..1"):
        list(render_frames(tiny_G, bad))
    nan_cams = plan.cameras.clone()
    nan_cams[1, 3] = float("nan")
    bad = FramePlan(plan.ws, plan.vertices, plan.landmarks, plan.ws_index, plan.mesh_index, nan_cams)
    with pytest.raises(RenderVideoError, match="cameras holds NaN"):
        list(render_frames(tiny_G, bad))
