"""StyleGAN2 synthesis network: ws (B, num_ws, w_dim) -> image (B, img_channels, R, R).

Blocks `b4, b8, ..., bR` double the resolution; each holds two modulated 3x3 convs
(`conv0` upsamples, absent in `b4` which starts from a learned `const`) and, in the
'skip' architecture, a `torgb` 1x1 modulated conv whose outputs are upsampled and summed
into the image. Channels per resolution: min(channel_base // res, channel_max).
`img_channels` is arbitrary (96 for EG3D tri-planes = 3 x 32, 32 for neural textures).

ws split: block b_r uses ws[:, i : i + num_conv + num_torgb] where i counts the convs of
the previous blocks, so a block's torgb shares its w with the next block's conv0.
num_ws = 2 * log2(R) - 2 (14 at 256^2).

Noise: noise_mode 'random' draws fresh N(0,1) noise each call, 'const' uses the
`noise_const` buffer (res, res), 'none' adds nothing; scaled by the `noise_strength`
parameter. fp16: blocks at the `num_fp16_res` highest resolutions run in float16 only on
CUDA (activations are clamped to +-conv_clamp); on any other device they run in float32.
The output image is always float32.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import torch

from torch_utils import compute_policy
from torch_utils.misc import assert_shape, is_nhwc
from torch_utils.ops import bias_act, conv2d_resample, upfirdn2d

from .layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    activation_gain,
    check_noise_mode,
    make_filter,
    modulated_conv2d,
)


def block_dtype(use_fp16: bool, device: torch.device, force_fp32: bool = False) -> torch.dtype:
    """float16 only when requested, on CUDA, and not forced off; float32 otherwise."""
    return torch.float16 if (use_fp16 and not force_fp32 and device.type == "cuda") else torch.float32


class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 conv + noise + bias + activation; x (B, I, r/up, r/up) -> (B, O, r, r)."""

    def __init__(
        self,
        in_channels: int,               # Number of input channels I.
        out_channels: int,              # Number of output channels O.
        w_dim: int,                     # Dimensionality of w.
        resolution: int,                # Output resolution r.
        kernel_size: int = 3,           # Kernel size.
        up: int = 1,                    # Integer upsampling factor.
        use_noise: bool = True,         # Add per-pixel noise?
        activation: str = "lrelu",      # Activation function.
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # Low-pass filter for upsampling.
        conv_clamp: Optional[float] = None,  # Clamp outputs to +-conv_clamp, None = off.
        channels_last: bool = False,    # Store the weight channels_last?
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.w_dim = int(w_dim)
        self.resolution = int(resolution)
        self.up = int(up)
        self.use_noise = bool(use_noise)
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = activation_gain(activation)

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        )
        if use_noise:
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.register_buffer("resample_filter", make_filter(resample_filter))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))

    def forward(
        self,
        x: torch.Tensor,                # (B, I, r/up, r/up).
        w: torch.Tensor,                # (B, w_dim).
        noise_mode: str = "random",     # 'random', 'const' or 'none'.
        fused_modconv: bool = True,     # Grouped-conv modulation (see modulated_conv2d).
        gain: float = 1.0,              # Extra output gain.
    ) -> torch.Tensor:
        check_noise_mode(noise_mode)
        in_res = self.resolution // self.up
        assert_shape(x, [None, self.in_channels, in_res, in_res], "SynthesisLayer input")
        assert_shape(w, [x.shape[0], self.w_dim], "SynthesisLayer w")
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength

        x = modulated_conv2d(
            x=x, weight=self.weight, styles=styles, noise=noise, up=self.up, padding=self.padding,
            resample_filter=self.resample_filter, flip_weight=(self.up == 1), fused_modconv=fused_modconv,
        )
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=act_gain, clamp=act_clamp,
                                 inplace=True)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}, "
            f"resolution={self.resolution}, up={self.up}, activation={self.activation}, use_noise={self.use_noise}"
        )


class ToRGBLayer(torch.nn.Module):
    """Modulated (not demodulated) 1x1 conv to the output channels; (B, I, r, r) -> (B, C, r, r)."""

    def __init__(
        self,
        in_channels: int,               # Number of input channels I.
        out_channels: int,              # Number of image channels C.
        w_dim: int,                     # Dimensionality of w.
        kernel_size: int = 1,           # Kernel size.
        conv_clamp: Optional[float] = None,  # Clamp outputs to +-conv_clamp, None = off.
        channels_last: bool = False,    # Store the weight channels_last?
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.w_dim = int(w_dim)
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(
            torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        )
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, None, None], "ToRGBLayer input")
        assert_shape(w, [x.shape[0], self.w_dim], "ToRGBLayer w")
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp, inplace=True)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}"


class SynthesisBlock(torch.nn.Module):
    """One resolution of the synthesis network.

    forward(x (B, I, r/2, r/2) or None for the first block, img (B, C, r/2, r/2) or None,
    ws (B, num_conv + num_torgb, w_dim)) -> (x (B, O, r, r), img (B, C, r, r) or None).
    """

    def __init__(
        self,
        in_channels: int,               # Input channels, 0 = first block (starts from `const`).
        out_channels: int,              # Output channels.
        w_dim: int,                     # Dimensionality of w.
        resolution: int,                # Resolution r of this block.
        img_channels: int,              # Number of output image channels C.
        is_last: bool,                  # Last block (always has torgb)?
        architecture: str = "skip",     # 'orig', 'skip' or 'resnet'.
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # Low-pass filter for upsampling.
        conv_clamp: Optional[float] = 256,  # Clamp conv outputs to +-conv_clamp, None = off.
        use_fp16: bool = False,         # Run in float16 (CUDA only; ignored on other devices)?
        fp16_channels_last: bool = False,  # channels_last weights/activations with fp16?
        fused_modconv_default: object = "inference_only",  # forward default: True, False, or fuse only in eval.
        **layer_kwargs,                 # Passed to SynthesisLayer (use_noise, activation, ...).
    ):
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"SynthesisBlock: architecture={architecture!r}, expected 'orig', 'skip' or 'resnet'")
        super().__init__()
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.w_dim = int(w_dim)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.is_last = bool(is_last)
        self.architecture = architecture
        self.use_fp16 = bool(use_fp16)
        self.channels_last = self.use_fp16 and fp16_channels_last
        self.fused_modconv_default = fused_modconv_default
        self.register_buffer("resample_filter", make_filter(resample_filter))
        self.num_conv = 0
        self.num_torgb = 0

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(
                in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last,
                **layer_kwargs,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim=w_dim, resolution=resolution,
            conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs,
        )
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(
                out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, channels_last=self.channels_last
            )
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, kernel_size=1, bias=False, up=2, resample_filter=resample_filter,
                channels_last=self.channels_last,
            )

    def forward(
        self,
        x: Optional[torch.Tensor],      # (B, I, r/2, r/2), None for the first block.
        img: Optional[torch.Tensor],    # (B, C, r/2, r/2) running image, or None.
        ws: torch.Tensor,               # (B, num_conv + num_torgb, w_dim).
        force_fp32: bool = False,       # Run in float32 even if use_fp16.
        fused_modconv: Optional[bool] = None,  # None = the block default.
        update_emas: bool = False,      # Unused here; accepted so callers can pass it through.
        noise_mode: str = "random",     # 'random', 'const' or 'none'.
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        del update_emas
        assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim], "SynthesisBlock ws")
        w_iter = iter(ws.unbind(dim=1))
        dtype = block_dtype(self.use_fp16, ws.device, force_fp32)
        memory_format = torch.channels_last if (self.channels_last and dtype == torch.float16) else torch.contiguous_format
        if dtype == torch.float32 and ws.device.type == "cpu" and compute_policy.current().channels_last:
            memory_format = torch.channels_last  # oneDNN's fast layout; same values (compute_policy)
        if fused_modconv is None:
            fused_modconv = self.fused_modconv_default
        if fused_modconv == "inference_only":
            fused_modconv = not self.training

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = x.contiguous(memory_format=memory_format)
        else:
            if x is None:
                raise ValueError(f"SynthesisBlock b{self.resolution}: x is None but the block expects features")
            assert_shape(x, [ws.shape[0], self.in_channels, self.resolution // 2, self.resolution // 2], "x")
            if (memory_format == torch.contiguous_format and x.dtype == dtype and is_nhwc(x)
                    and conv2d_resample.upconv_nhwc(x)):
                memory_format = torch.channels_last  # conv0 would switch an NCHW copy back to NHWC
            x = x.to(dtype=dtype, memory_format=memory_format)

        layer_kwargs = dict(noise_mode=noise_mode, fused_modconv=fused_modconv)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), **layer_kwargs)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer_kwargs)
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), **layer_kwargs)

        if img is not None:
            assert_shape(img, [None, self.img_channels, self.resolution // 2, self.resolution // 2], "img")
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, resolution={self.resolution}, "
            f"img_channels={self.img_channels}, architecture={self.architecture}, use_fp16={self.use_fp16}"
        )



def channels_per_resolution(resolutions: Sequence[int], channel_base: int, channel_max: int) -> dict:
    """{res: min(channel_base // res, channel_max)}."""
    return {res: min(channel_base // res, channel_max) for res in resolutions}


def check_resolution(img_resolution: int, name: str = "img_resolution") -> int:
    """img_resolution must be a power of two >= 4; returns log2 of it."""
    if img_resolution < 4 or img_resolution & (img_resolution - 1) != 0:
        raise ValueError(f"{name}={img_resolution}: expected a power of two >= 4")
    return int(round(math.log2(img_resolution)))


class SynthesisNetwork(torch.nn.Module):
    """ws (B, num_ws, w_dim) -> img (B, img_channels, img_resolution, img_resolution), float32."""

    def __init__(
        self,
        w_dim: int,                     # Dimensionality of w.
        img_resolution: int,            # Output resolution (power of two >= 4).
        img_channels: int,              # Number of output channels (3, 32, 96, ...).
        channel_base: int = 32768,      # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max: int = 512,         # Maximum number of channels.
        num_fp16_res: int = 4,          # Use fp16 (CUDA only) for the N highest resolutions.
        **block_kwargs,                 # Passed to SynthesisBlock (architecture, conv_clamp, ...).
    ):
        super().__init__()
        log2 = check_resolution(img_resolution)
        self.w_dim = int(w_dim)
        self.img_resolution = int(img_resolution)
        self.img_resolution_log2 = log2
        self.img_channels = int(img_channels)
        self.num_fp16_res = int(num_fp16_res)
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = channels_per_resolution(self.block_resolutions, channel_base, channel_max)
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels[res // 2] if res > 4 else 0
            is_last = res == self.img_resolution
            block = SynthesisBlock(
                in_channels, channels[res], w_dim=w_dim, resolution=res, img_channels=img_channels,
                is_last=is_last, use_fp16=(num_fp16_res > 0 and res >= fp16_resolution), **block_kwargs,
            )
            self.num_ws += block.num_conv
            if is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def split_ws(self, ws: torch.Tensor) -> list:
        """Per-block slices of ws (B, num_ws, w_dim), in block order."""
        assert_shape(ws, [None, self.num_ws, self.w_dim], "ws")
        ws = ws.to(torch.float32)
        out, w_idx = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            out.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv
        return out

    def forward(self, ws: torch.Tensor, **block_kwargs) -> torch.Tensor:
        """block_kwargs: noise_mode, force_fp32, fused_modconv, update_emas (see SynthesisBlock)."""
        x = img = None
        for res, cur_ws in zip(self.block_resolutions, self.split_ws(ws)):
            x, img = getattr(self, f"b{res}")(x, img, cur_ws, **block_kwargs)
        return img

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, num_fp16_res={self.num_fp16_res}"
        )
