"""The tri-plane decoder: plane features -> raw density and rendering features.

Input: features sampled from the three planes (B, 3, N, C) (C = 32). They are averaged
over the planes, then FC C->64, softplus, FC 64->1+F. Output channel 0 is the raw
density σ (activated later by the compositor); the other F channels (F = 32) become
features = sigmoid(x) * (1 + 2 * 0.001) - 0.001, in (-0.001, 1.001). The view direction
is not used (as in EG3D/Next3D).

Parameter names match the published checkpoint: net.0.weight (64, C), net.0.bias (64,),
net.2.weight (1+F, 64), net.2.bias (1+F,). Both layers are StyleGAN2's equalised-lr
`FullyConnectedLayer`: weights are stored as N(0, 1 / lr_multiplier^2) and multiplied by lr_multiplier /
sqrt(fan_in) at run time; biases are multiplied by lr_multiplier (1 in the published model).
"""

from __future__ import annotations

from typing import Dict

import torch

from next3d.networks.layers import FullyConnectedLayer
from torch_utils import compute_policy
from torch_utils.misc import assert_shape

FEATURE_PAD = 0.001


class TriPlaneDecoder(torch.nn.Module):
    """Plane features (B, 3, N, C) -> dict(sigma (B, N, 1) raw, features (B, N, F))."""

    def __init__(self,
                 in_channels: int = 32,  # Channels per plane (C).
                 hidden_channels: int = 64,  # Width of the hidden layer.
                 out_channels: int = 32,  # Rendering features F (the first 3 are raw RGB).
                 lr_multiplier: float = 1.0):  # Learning-rate multiplier of both layers.
        super().__init__()
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.out_channels = out_channels
        self.net = torch.nn.Sequential(
            FullyConnectedLayer(in_channels, hidden_channels, lr_multiplier=lr_multiplier),
            torch.nn.Softplus(),
            FullyConnectedLayer(hidden_channels, 1 + out_channels, lr_multiplier=lr_multiplier),
        )

    def forward(self, plane_features: torch.Tensor) -> Dict[str, torch.Tensor]:
        assert_shape(plane_features, [None, 3, None, self.in_channels], "plane features")
        batch, _, points, channels = plane_features.shape
        if plane_features.stride(2) == 1 and compute_policy.current().planes_mean_as_sampled:
            # grid_sample's (B, 3, C, N) seen as (B, 3, N, C): average over contiguous rows; the FC
            # layer's matmul reads the transposed result without a copy (at batch 1).
            x = plane_features.transpose(2, 3).mean(dim=1).transpose(1, 2)
        else:
            x = plane_features.contiguous().mean(dim=1)
        x = x.reshape(batch * points, channels)
        x = self.net(x).reshape(batch, points, 1 + self.out_channels)
        features = torch.sigmoid(x[..., 1:]) * (1.0 + 2.0 * FEATURE_PAD) - FEATURE_PAD
        return {"sigma": x[..., :1], "features": features}

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, hidden_channels={self.hidden_channels}, "
                f"out_channels={self.out_channels}")
