"""A simple distribution metric for watching a run learn: the Fréchet distance between
Gaussian fits of real and generated images' features from a fixed random-weight conv net.

Not FID (no Inception weights are available offline); numbers are comparable only between
runs at the same resolution with the same `seed` of the feature net. The net: four 3x3
stride-2 convolutions (3 -> 32 -> 64 -> 128 -> 128, leaky ReLU) with weights drawn from
`seed`, on images resized to 64²; features = per-channel mean and std of the last two layers
(512 values). The metrics package (`training.metrics`) supersedes this when present.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F


class RandomFeatures(torch.nn.Module):
    """(B, 3, H, W) images in [-1, 1] -> (B, 512) features; weights fixed by `seed`."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        chans = [3, 32, 64, 128, 128]
        self.weights = [torch.randn(o, i, 3, 3, generator=g) * (2.0 / (9 * i)) ** 0.5 for i, o in zip(chans, chans[1:])]

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(img.float(), size=(64, 64), mode="bilinear", align_corners=False, antialias=True)
        feats = []
        for k, w in enumerate(self.weights):
            x = F.leaky_relu(F.conv2d(x, w.to(x.device), stride=2, padding=1), 0.2)
            if k >= 2:
                feats += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
        return torch.cat(feats, dim=1)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2)) of two Gaussians."""
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    covmean = np.real(covmean)
    return float(np.square(mu1 - mu2).sum() + np.trace(sigma1 + sigma2 - 2 * covmean))


def feature_stats(batches: Iterable[torch.Tensor], net: RandomFeatures):
    feats = torch.cat([net(b).double() for b in batches]).cpu().numpy()
    return feats.mean(0), np.cov(feats, rowvar=False)


def random_fd(real_batches: Callable[[], Iterable[torch.Tensor]], fake_batches: Callable[[], Iterable[torch.Tensor]],
              seed: int = 0, real_stats=None):
    """(distance, real_stats): FD of the feature Gaussians; pass `real_stats` back in to reuse them."""
    net = RandomFeatures(seed)
    if real_stats is None:
        real_stats = feature_stats(real_batches(), net)
    mu, sigma = feature_stats(fake_batches(), net)
    return frechet_distance(real_stats[0], real_stats[1], mu, sigma), real_stats
