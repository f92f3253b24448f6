"""Blur pooling as in the shift-tolerant (ST-LPIPS) backbones.

Facts (Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019, and the
ST-LPIPS variant of Ghildyal & Liu, ECCV 2022): every stride-2 step is split into a dense
(stride-1) operation followed by a low-pass filter evaluated at stride 2. The filter is
the normalised binomial [1, 2, 1] ⊗ [1, 2, 1] / 16, applied per channel. The ST-LPIPS
networks pad "more" before the blur: reflection padding of `filter_size - 1` pixels on
every side (2 for the 3-tap filter), so an H-pixel input gives floor((H + 1) / 2) + 1
output pixels and edge content is not lost at any shift.

The filter is a persistent buffer named `filt` of shape (C, 1, k, k), the layout in
which the shipped weight files store it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torch_utils.misc import assert_shape


def binomial_filter(size: int) -> torch.Tensor:
    """Normalised 2D binomial filter (size, size), float32, summing to 1."""
    if size < 1:
        raise ValueError(f"filter size: expected at least 1, got {size}")
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    filt = row[:, None] * row[None, :]
    return (filt / filt.sum()).float()


class BlurPool(torch.nn.Module):
    """Reflection pad (filter_size - 1 per side), per-channel binomial blur, stride 2.

    Input (B, C, H, W) with H, W > filter_size - 1; output (B, C, ⌊(H+1)/2⌋+1, ⌊(W+1)/2⌋+1)
    for the 3-tap filter.
    """

    def __init__(self,
                 channels: int,         # C: number of channels (one filter copy each).
                 filter_size: int = 3,  # Taps of the binomial filter.
                 stride: int = 2,       # Subsampling factor.
                 ):
        super().__init__()
        self.channels = int(channels)
        self.filter_size = int(filter_size)
        self.stride = int(stride)
        self.pad = self.filter_size - 1
        self.register_buffer("filt", binomial_filter(self.filter_size)[None, None].repeat(self.channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.channels, None, None], "blur-pool input")
        if min(x.shape[2:]) <= self.pad:
            raise ValueError(f"blur-pool input: spatial size {tuple(x.shape[2:])} is too small for reflection "
                             f"padding of {self.pad} (the image is too small for this network)")
        x = F.pad(x, [self.pad] * 4, mode="reflect")
        return F.conv2d(x, self.filt.to(x.dtype), stride=self.stride, groups=self.channels)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filter_size={self.filter_size}, stride={self.stride}, pad=reflect {self.pad}"
