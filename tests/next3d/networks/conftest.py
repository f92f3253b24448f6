"""Fixtures for the network tests: tiny configurations (fast on 2 CPU cores), reference names."""

from __future__ import annotations

import pytest
import torch

from helpers import SHARED
from next3d.networks.backbone import StyleGAN2Backbone
from next3d.networks.discriminator import DualDiscriminator

Z_DIM, C_DIM, W_DIM = 8, 25, 16
SMALL = dict(channel_base=128, channel_max=16)  # 16 channels at <= 8^2, 8 at 16^2


@pytest.fixture
def make_backbone():
    """Factory for a tiny StyleGAN2Backbone (z 8, c 25, w 16, 16^2, <= 16 channels)."""

    def make(img_channels: int = 3, img_resolution: int = 16, **kwargs) -> StyleGAN2Backbone:
        return StyleGAN2Backbone(
            Z_DIM, C_DIM, W_DIM, img_resolution=img_resolution, img_channels=img_channels,
            mapping_kwargs=dict(num_layers=2), **SMALL, **kwargs,
        )

    return make


@pytest.fixture
def make_dual_d():
    """Factory for a tiny DualDiscriminator (c 25, 16^2, <= 16 channels, mapping 2 layers)."""

    def make(img_resolution: int = 16, **kwargs) -> DualDiscriminator:
        return DualDiscriminator(c_dim=C_DIM, img_resolution=img_resolution, mapping_kwargs=dict(num_layers=2),
                                 **SMALL, **kwargs)

    return make


@pytest.fixture
def zc():
    """Factory: (z (B, 8), c (B, 25)) from a seed."""

    def make(batch: int = 2, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(batch, Z_DIM, generator=g), torch.randn(batch, C_DIM, generator=g)

    return make


@pytest.fixture
def reference_dir():
    """../shared/reference (published state_dict names and shapes), or skip when absent."""
    path = SHARED / "reference"
    if not path.is_dir():
        pytest.skip("../shared/reference is not present (it is never needed to run next3d)")
    return path
