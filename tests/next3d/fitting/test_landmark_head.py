"""The landmark-only FLAME equals the FLAME layer's landmarks."""

from __future__ import annotations

import torch

from next3d.fitting.landmark_head import LandmarkHead
from next3d.flame.landmarks import yaw_bins
from next3d.flame.lbs import batch_rodrigues


def test_matches_flame_layer(flame):
    head = LandmarkHead(flame)
    assert head.num_subset < flame.num_vertices / 4
    g = torch.Generator().manual_seed(3)
    b = 5
    shape = torch.randn(b, flame.num_shape, generator=g)
    expr = torch.randn(b, flame.num_expression, generator=g)
    pose = torch.zeros(b, 15)
    pose[:, 0:3] = 0.4 * torch.randn(b, 3, generator=g)
    pose[:, 3:6] = 0.2 * torch.randn(b, 3, generator=g)
    pose[:, 6] = torch.rand(b, generator=g) * 0.3
    ref = flame(shape, expr, pose).landmarks
    rows = yaw_bins(batch_rodrigues(pose[:, 0:3]) @ batch_rodrigues(pose[:, 3:6]))
    torch.testing.assert_close(head(shape, expr, pose, rows), ref, atol=1e-6, rtol=1e-5)
    fixed = head(shape, expr, pose, None)
    torch.testing.assert_close(fixed[:, 17:], ref[:, 17:], atol=1e-6, rtol=1e-5)
