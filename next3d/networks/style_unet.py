"""StyleUNet: an image-conditioned StyleGAN2 generator (Next3D's mouth module and neural blending).

synthesis(cond (B, cond_channels, in_size, in_size), ws (B, num_ws, w_dim))
    -> img (B, img_channels, img_resolution, img_resolution), float32.

Encoder: blocks `encoder.{i}` for resolutions in_size, in_size/2, ..., 2*final_size.
Block i downsamples the conditioning image (except the first), maps it with a 1x1
`fromrgb` (no bias), adds the previous block's features, then `conv1` (3x3) and `conv2`
(3x3, downsampling) produce features at half the resolution with channels
min(channel_base // (res/2), channel_max). The encoder thus yields features at
final_size, 2*final_size, ..., in_size/2.

Decoder: StyleGAN2 blocks `b4 ... bR` exactly as in SynthesisNetwork, but the decoding
starts at the block after `final_size`: its input is `fusion.0(features at final_size)`;
each following block's input is `fusion.k(concat(previous block output, features at
final_size * 2^k))` (3x3 linear conv, 2C -> C) while that resolution is below
`num_cond_res` and features exist. ws are split as in SynthesisNetwork (num_ws = 14 at
256^2) so the same eg3d ws drive it.

Published configurations (Next3D, 32-channel front plane, 256^2 output):
  mouth:    in_size=64,  final_size=4,  num_cond_res=64   (encoder 64 -> 4, 4 blocks)
  blending: in_size=256, final_size=32, num_cond_res=256  (encoder 256 -> 32, 3 blocks)

Checkpoint compatibility keeps modules that the published forward never uses: the
decoder blocks at resolutions <= final_size and `fusion.k` for k >= number of encoder
blocks. `unused_prefixes()` lists them (their gradients are always None).
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch

from torch_utils.misc import assert_shape
from torch_utils.ops import upfirdn2d

from .layers import Conv2dLayer, make_filter
from .mapping import MappingNetwork
from .synthesis import SynthesisBlock, channels_per_resolution, check_resolution


class EncoderBlock(torch.nn.Module):
    """(cond (B, Ci, 2r or r, ...), skip (B, C, r, r) or None) -> (cond at r, features (B, C', r/2, r/2))."""

    def __init__(
        self,
        img_channels: int,              # Channels of the conditioning image.
        in_channels: int,               # Feature channels at this resolution.
        out_channels: int,              # Feature channels after downsampling.
        downsample: bool = True,        # Downsample the conditioning image first (all but the first block)?
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # Low-pass filter for downsampling.
    ):
        super().__init__()
        self.img_channels = int(img_channels)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.downsample = bool(downsample)
        self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation="linear", bias=False)
        self.conv1 = Conv2dLayer(in_channels, in_channels, kernel_size=3, activation="lrelu")
        self.conv2 = Conv2dLayer(in_channels, out_channels, kernel_size=3, down=2, activation="lrelu",
                                 resample_filter=resample_filter)
        self.register_buffer("resample_filter", make_filter(resample_filter))

    def forward(self, cond: torch.Tensor, skip: Optional[torch.Tensor] = None):
        assert_shape(cond, [None, self.img_channels, None, None], "EncoderBlock cond")
        if self.downsample:
            cond = upfirdn2d.downsample2d(cond, self.resample_filter)
        x = self.fromrgb(cond)
        if skip is not None:
            assert_shape(skip, [cond.shape[0], self.in_channels, cond.shape[2], cond.shape[3]], "EncoderBlock skip")
            x = x + skip
        x = self.conv2(self.conv1(x))
        return cond, x

    def extra_repr(self) -> str:
        return (
            f"img_channels={self.img_channels}, in_channels={self.in_channels}, "
            f"out_channels={self.out_channels}, downsample={self.downsample}"
        )


class StyleUNetSynthesis(torch.nn.Module):
    def __init__(
        self,
        w_dim: int,                     # Dimensionality of w.
        img_resolution: int,            # Output resolution.
        img_channels: int,              # Output channels.
        cond_channels: int = 3,         # Channels of the conditioning image.
        in_size: int = 64,              # Resolution of the conditioning image.
        final_size: int = 4,            # Lowest encoder resolution.
        num_cond_res: int = 64,         # Inject encoder features only below this resolution.
        channel_base: int = 32768,      # Channels at r: min(channel_base // r, channel_max).
        channel_max: int = 512,         # Maximum channels.
        num_fp16_res: int = 4,          # fp16 (CUDA only) for the decoder's N highest resolutions.
        **block_kwargs,                 # Passed to SynthesisBlock.
    ):
        super().__init__()
        log2 = check_resolution(img_resolution)
        check_resolution(in_size, "in_size")
        check_resolution(final_size, "final_size")
        if not final_size < in_size:
            raise ValueError(f"StyleUNet: final_size={final_size} must be below in_size={in_size}")
        if not final_size < img_resolution:
            raise ValueError(f"StyleUNet: final_size={final_size} must be below img_resolution={img_resolution}")
        self.w_dim = int(w_dim)
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        self.cond_channels = int(cond_channels)
        self.in_size = int(in_size)
        self.final_size = int(final_size)
        self.num_cond_res = int(num_cond_res)
        self.num_fp16_res = int(num_fp16_res)
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        # Encoder resolutions from in_size down to final_size.
        self.encoder_res = [in_size >> i for i in range((in_size // final_size).bit_length())]
        channels = channels_per_resolution(sorted(set(self.block_resolutions + self.encoder_res)), channel_base,
                                           channel_max)
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            is_last = res == self.img_resolution
            block = SynthesisBlock(
                in_channels, channels[res], w_dim=w_dim, resolution=res, img_channels=img_channels, is_last=is_last,
                use_fp16=(num_fp16_res > 0 and res >= fp16_resolution), **block_kwargs,
            )
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f"b{res}", block)

        self.encoder = torch.nn.ModuleList(
            EncoderBlock(cond_channels, channels[res], channels[res // 2], downsample=(res < in_size))
            for res in self.encoder_res[:-1]
        )
        self.fusion = torch.nn.ModuleList(
            Conv2dLayer(channels[res] * (2 if res > final_size else 1), channels[res], kernel_size=3,
                        activation="linear")
            for res in self.encoder_res[::-1]
        )
        # Decoder blocks that run: those above final_size; fusion k feeds the k-th of them.
        self.decoder_resolutions = [r for r in self.block_resolutions if r > final_size]
        feature_res = self.encoder_res[1:][::-1]  # final_size ... in_size/2
        self.num_fused = sum(1 for k, r in enumerate(feature_res) if r < num_cond_res and k < len(self.decoder_resolutions))

    def unused_prefixes(self) -> List[str]:
        """Names of submodules kept only for checkpoint compatibility (never used in forward)."""
        out = [f"b{r}." for r in self.block_resolutions if r <= self.final_size]
        out += [f"fusion.{k}." for k in range(self.num_fused, len(self.fusion))]
        return out

    def forward(self, cond: torch.Tensor, ws: torch.Tensor, **block_kwargs) -> torch.Tensor:
        """cond (B, cond_channels, in_size, in_size), ws (B, num_ws, w_dim) -> (B, img_channels, R, R)."""
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        assert_shape(cond, [ws.shape[0], self.cond_channels, self.in_size, self.in_size], "cond")
        ws = ws.to(torch.float32)
        block_ws, w_idx = {}, 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws[res] = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            w_idx += block.num_conv

        feats, feat = [], None
        for enc in self.encoder:
            cond, feat = enc(cond, feat)
            feats.append(feat)
        feats = feats[::-1]  # lowest resolution (final_size) first

        x = img = None
        for k, res in enumerate(self.decoder_resolutions):
            if k < self.num_fused:
                x = self.fusion[k](feats[k] if k == 0 else torch.cat([x.to(feats[k].dtype), feats[k]], dim=1))
            x, img = getattr(self, f"b{res}")(x, img, block_ws[res], **block_kwargs)
        return img

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, cond_channels={self.cond_channels}, in_size={self.in_size}, "
            f"final_size={self.final_size}, num_cond_res={self.num_cond_res}"
        )


class StyleUNet(torch.nn.Module):
    """`mapping` + `synthesis` (StyleUNetSynthesis); Next3D drives `synthesis` with eg3d ws only."""

    def __init__(
        self,
        z_dim: int,                     # Latent z dimensionality.
        c_dim: int,                     # Label dimensionality.
        w_dim: int,                     # Dimensionality of w.
        img_resolution: int,            # Output resolution.
        img_channels: int,              # Output channels.
        mapping_kwargs: Optional[dict] = None,  # Passed to MappingNetwork.
        **synthesis_kwargs,             # Passed to StyleUNetSynthesis (cond_channels, in_size, ...).
    ):
        super().__init__()
        self.synthesis = StyleUNetSynthesis(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                                            **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **(mapping_kwargs or {}))

    def forward(self, cond: torch.Tensor, z: torch.Tensor, c: torch.Tensor, truncation_psi: float = 1.0,
                truncation_cutoff: Optional[int] = None, update_emas: bool = False, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_emas=update_emas)
        return self.synthesis(cond, ws, update_emas=update_emas, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return f"num_ws={self.num_ws}"


def mouth_style_unet(z_dim: int = 512, c_dim: int = 25, w_dim: int = 512, **kwargs) -> StyleUNet:
    """Next3D's mouth module: 32-channel 64^2 crop -> 32-channel 256^2."""
    cfg = dict(img_resolution=256, img_channels=32, cond_channels=32, in_size=64, final_size=4, num_cond_res=64)
    cfg.update(kwargs)
    return StyleUNet(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, **cfg)


def blending_style_unet(z_dim: int = 512, c_dim: int = 25, w_dim: int = 512, **kwargs) -> StyleUNet:
    """Next3D's neural blending: 32-channel 256^2 front plane -> 32-channel 256^2."""
    cfg = dict(img_resolution=256, img_channels=32, cond_channels=32, in_size=256, final_size=32, num_cond_res=256)
    cfg.update(kwargs)
    return StyleUNet(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, **cfg)
