"""EG3D-style 4x super-resolution: feature image (B, C, r, r) -> image (B, 3, 4*S, 4*S).

The rendered feature image and its first 3 channels (raw RGB) are resized to
`input_resolution` S (128 in the published model; bilinear, antialiased), then two
StyleGAN2 synthesis blocks upsample twice: `block0` (C -> block_channels[0], S -> 2S) and
`block1` (-> block_channels[1], 2S -> 4S). The raw RGB is the running skip image that
the blocks' `torgb` outputs are added to. Every layer is styled by the last w,
ws[:, -1] (Next3D: eg3d ws[:, 13]), repeated. Published: C=32, S=128, channels
(256, 128), output 512^2, fp16 on CUDA with conv clamp 256, noise_mode 'none'.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from torch_utils.misc import assert_shape

from .synthesis import SynthesisBlock, check_resolution


class SuperresolutionHybrid4X(torch.nn.Module):
    def __init__(
        self,
        channels: int = 32,             # Channels C of the feature image.
        img_resolution: int = 512,      # Output resolution, 4 x input_resolution.
        w_dim: int = 512,               # Dimensionality of w.
        block_channels: Sequence[int] = (256, 128),  # Channels of block0 and block1.
        sr_num_fp16_res: int = 0,       # > 0 = run both blocks in fp16 (CUDA only), with conv clamp 256.
        sr_antialias: bool = True,      # Antialias when resizing the input to input_resolution.
        img_channels: int = 3,          # Channels of the skip (raw RGB) and output image.
        **block_kwargs,                 # Passed to SynthesisBlock (use_noise, ...).
    ):
        super().__init__()
        check_resolution(img_resolution)
        if img_resolution < 16:
            raise ValueError(f"SuperresolutionHybrid4X: img_resolution={img_resolution}, expected >= 16")
        if len(block_channels) != 2:
            raise ValueError(f"SuperresolutionHybrid4X: block_channels={tuple(block_channels)}, expected 2 values")
        self.channels = int(channels)
        self.img_resolution = int(img_resolution)
        self.input_resolution = self.img_resolution // 4
        self.w_dim = int(w_dim)
        self.img_channels = int(img_channels)
        self.sr_antialias = bool(sr_antialias)
        use_fp16 = sr_num_fp16_res > 0
        conv_clamp = 256 if use_fp16 else None
        self.block0 = SynthesisBlock(
            channels, block_channels[0], w_dim=w_dim, resolution=2 * self.input_resolution, img_channels=img_channels,
            is_last=False, use_fp16=use_fp16, conv_clamp=conv_clamp, **block_kwargs,
        )
        self.block1 = SynthesisBlock(
            block_channels[0], block_channels[1], w_dim=w_dim, resolution=img_resolution, img_channels=img_channels,
            is_last=True, use_fp16=use_fp16, conv_clamp=conv_clamp, **block_kwargs,
        )

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        S = self.input_resolution
        if x.shape[-1] == S and x.shape[-2] == S:
            return x
        return F.interpolate(x, size=(S, S), mode="bilinear", align_corners=False, antialias=self.sr_antialias)

    def forward(
        self,
        rgb: torch.Tensor,              # (B, img_channels, r, r) raw image.
        x: torch.Tensor,                # (B, channels, r, r) feature image.
        ws: torch.Tensor,               # (B, N, w_dim); only ws[:, -1] is used.
        **block_kwargs,                 # noise_mode, force_fp32, fused_modconv.
    ) -> torch.Tensor:
        """Returns (B, img_channels, img_resolution, img_resolution), float32."""
        assert_shape(x, [None, self.channels, None, None], "features")
        assert_shape(rgb, [x.shape[0], self.img_channels, x.shape[2], x.shape[3]], "rgb")
        assert_shape(ws, [x.shape[0], None, self.w_dim], "ws")
        ws = ws[:, -1:, :].to(torch.float32).repeat(1, 3, 1)
        x, rgb = self._resize(x), self._resize(rgb)
        x, rgb = self.block0(x, rgb, ws, **block_kwargs)
        x, rgb = self.block1(x, rgb, ws, **block_kwargs)
        return rgb

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, input_resolution={self.input_resolution}, "
            f"img_resolution={self.img_resolution}, w_dim={self.w_dim}"
        )
