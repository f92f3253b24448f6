"""StyleGAN2 residual discriminator with projection conditioning, and EG3D's dual variant.

Discriminator: img (B, C, R, R), c (B, c_dim) -> logits (B, 1).
Blocks `bR, ..., b8` (resnet: two 3x3 convs, the second downsampling, plus a 1x1
downsampling `skip`, summed with gain sqrt(1/2)); the first block has `fromrgb`. The
epilogue `b4` appends minibatch-stddev features, then conv (C+1 -> C), `fc`
(C*16 -> C), `out` (C -> cmap_dim). With a label, `mapping` (a MappingNetwork with no z,
8 layers) embeds c to cmap (B, cmap_dim) and the logit is the projection
sum(out * cmap) / sqrt(cmap_dim).

DualDiscriminator (EG3D): the input is `image` (B, 3, R, R) concatenated with `image_raw`
(B, 3, r, r) resized to R (bilinear, antialiased) = 6 channels; this project optionally
appends `mesh_channels` of a rendering of the FLAME mesh under the same camera (the
paper's deformation-aware discriminator). Label noise (`c_noise` x per-batch label std)
is added in training mode only.

fp16 runs only on CUDA (the `num_fp16_res` highest resolutions); elsewhere float32.
Names follow the published checkpoints (`b512.fromrgb.weight`, `b4.fc.weight`, ...).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from torch_utils.misc import ShapeError, assert_shape
from torch_utils.ops import upfirdn2d

from .layers import Conv2dLayer, FullyConnectedLayer, make_filter
from .mapping import MappingNetwork
from .synthesis import block_dtype, channels_per_resolution, check_resolution


class DiscriminatorBlock(torch.nn.Module):
    """(x (B, tmp, r, r) or None, img (B, C, r, r)) -> (x (B, out, r/2, r/2), img or None)."""

    def __init__(
        self,
        in_channels: int,               # Input channels, 0 = first block (uses fromrgb).
        tmp_channels: int,              # Channels inside the block.
        out_channels: int,              # Output channels.
        resolution: int,                # Input resolution r.
        img_channels: int,              # Image channels C.
        first_layer_idx: int = 0,       # Index of this block's first layer (for freeze_layers).
        architecture: str = "resnet",   # 'orig', 'skip' or 'resnet'.
        activation: str = "lrelu",      # Activation function.
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # Low-pass filter for downsampling.
        conv_clamp: Optional[float] = None,  # Clamp conv outputs, None = off.
        use_fp16: bool = False,         # float16 (CUDA only).
        fp16_channels_last: bool = False,  # channels_last with fp16?
        freeze_layers: int = 0,         # Freeze-D: layers with index < this are buffers.
    ):
        if in_channels not in (0, tmp_channels):
            raise ValueError(f"DiscriminatorBlock: in_channels={in_channels}, expected 0 or tmp_channels={tmp_channels}")
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"DiscriminatorBlock: architecture={architecture!r}, expected 'orig', 'skip' or 'resnet'")
        super().__init__()
        self.in_channels = int(in_channels)
        self.tmp_channels = int(tmp_channels)
        self.out_channels = int(out_channels)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.architecture = architecture
        self.use_fp16 = bool(use_fp16)
        self.channels_last = self.use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", make_filter(resample_filter))

        self.num_layers = 0

        def trainable() -> bool:
            idx = first_layer_idx + self.num_layers
            self.num_layers += 1
            return idx >= freeze_layers

        common = dict(conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, activation=activation,
                                       trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, activation=activation,
                                 trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, activation=activation, down=2,
                                 resample_filter=resample_filter, trainable=trainable(), **common)
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                                    resample_filter=resample_filter, trainable=trainable(),
                                    channels_last=self.channels_last)

    def forward(self, x: Optional[torch.Tensor], img: Optional[torch.Tensor], force_fp32: bool = False):
        device = (x if x is not None else img).device
        dtype = block_dtype(self.use_fp16, device, force_fp32)
        memory_format = torch.channels_last if (self.channels_last and dtype == torch.float16) else torch.contiguous_format

        if x is not None:
            assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], f"b{self.resolution} x")
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == "skip":
            assert_shape(img, [None, self.img_channels, self.resolution, self.resolution], f"b{self.resolution} img")
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv0(x)
            x = self.conv1(x)
        return x, img

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, tmp_channels={self.tmp_channels}, out_channels={self.out_channels}, "
            f"resolution={self.resolution}, architecture={self.architecture}, use_fp16={self.use_fp16}"
        )


class MinibatchStdLayer(torch.nn.Module):
    """Append the stddev over groups of `group_size` samples: (B, C, H, W) -> (B, C + num_channels, H, W).

    The batch must be divisible by min(group_size, B); samples i, i + B/G, ... form a group.
    """

    def __init__(
        self,
        group_size: Optional[int],      # Samples per group, None = whole batch.
        num_channels: int = 1,          # Number of stddev features (channels split into this many groups).
    ):
        super().__init__()
        self.group_size = group_size
        self.num_channels = int(num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, None, None, None], "MinibatchStdLayer input")
        N, C, H, W = x.shape
        G = min(self.group_size, N) if self.group_size is not None else N
        Fc = self.num_channels
        if N % G != 0:
            raise ShapeError(f"MinibatchStdLayer: batch size {N} is not divisible by the group size {G}")
        if C % Fc != 0:
            raise ShapeError(f"MinibatchStdLayer: {C} channels are not divisible by num_channels={Fc}")
        y = x.reshape(G, -1, Fc, C // Fc, H, W)     # (G, n, F, c, H, W)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # (n, F, c, H, W) stddev over each group
        y = y.mean(dim=[2, 3, 4])                   # (n, F)
        y = y.reshape(-1, Fc, 1, 1).repeat(G, 1, H, W)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(torch.nn.Module):
    """x (B, C, 4, 4), cmap (B, cmap_dim) or None -> logits (B, 1)."""

    def __init__(
        self,
        in_channels: int,               # Channels C at the last resolution.
        cmap_dim: int,                  # Mapped label size, 0 = unconditional.
        resolution: int,                # Resolution (4).
        img_channels: int,              # Image channels (for architecture 'skip').
        architecture: str = "resnet",   # 'orig', 'skip' or 'resnet'.
        mbstd_group_size: Optional[int] = 4,  # Minibatch-std group size, None = whole batch.
        mbstd_num_channels: int = 1,    # Minibatch-std features, 0 = disable.
        activation: str = "lrelu",      # Activation function.
        conv_clamp: Optional[float] = None,  # Clamp conv outputs, None = off.
    ):
        super().__init__()
        self.in_channels = int(in_channels)
        self.cmap_dim = int(cmap_dim)
        self.resolution = int(resolution)
        self.img_channels = int(img_channels)
        self.architecture = architecture
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation,
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x: torch.Tensor, img: Optional[torch.Tensor], cmap: Optional[torch.Tensor]) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], "epilogue x")
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            assert_shape(img, [None, self.img_channels, self.resolution, self.resolution], "epilogue img")
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            assert_shape(cmap, [x.shape[0], self.cmap_dim], "cmap")
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / math.sqrt(self.cmap_dim))
        return x

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, cmap_dim={self.cmap_dim}, resolution={self.resolution}"


class Discriminator(torch.nn.Module):
    """img (B, img_channels, R, R), c (B, c_dim) -> logits (B, 1)."""

    def __init__(
        self,
        c_dim: int,                     # Label dimensionality, 0 = unconditional.
        img_resolution: int,            # Input resolution R (power of two >= 8).
        img_channels: int,              # Input channels.
        architecture: str = "resnet",   # 'orig', 'skip' or 'resnet'.
        channel_base: int = 32768,      # Channels at r: min(channel_base // r, channel_max).
        channel_max: int = 512,         # Maximum channels.
        num_fp16_res: int = 4,          # fp16 (CUDA only) for the N highest resolutions.
        conv_clamp: Optional[float] = 256,  # Clamp conv outputs, None = off.
        cmap_dim: Optional[int] = None, # Projection size, None = channels at 4x4.
        block_kwargs: Optional[dict] = None,    # Passed to DiscriminatorBlock.
        mapping_kwargs: Optional[dict] = None,  # Passed to the label MappingNetwork (num_layers=8, ...).
        epilogue_kwargs: Optional[dict] = None, # Passed to DiscriminatorEpilogue (mbstd_group_size, ...).
    ):
        super().__init__()
        log2 = check_resolution(img_resolution)
        if img_resolution < 8:
            raise ValueError(f"Discriminator: img_resolution={img_resolution}, expected >= 8")
        self.c_dim = int(c_dim)
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        channels = channels_per_resolution(self.block_resolutions + [4], channel_base, channel_max)
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0
        self.cmap_dim = int(cmap_dim)

        common = dict(img_channels=self.img_channels, architecture=architecture, conv_clamp=conv_clamp)
        cur_layer_idx = 0
        for res in self.block_resolutions:
            in_channels = channels[res] if res < img_resolution else 0
            block = DiscriminatorBlock(
                in_channels, channels[res], channels[res // 2], resolution=res, first_layer_idx=cur_layer_idx,
                use_fp16=(num_fp16_res > 0 and res >= fp16_resolution), **(block_kwargs or {}), **common,
            )
            setattr(self, f"b{res}", block)
            cur_layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None,
                                          **(mapping_kwargs or {}))
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **(epilogue_kwargs or {}),
                                        **common)

    def run(self, img: torch.Tensor, c: Optional[torch.Tensor], force_fp32: bool = False) -> torch.Tensor:
        """The network proper on an already assembled input img (B, img_channels, R, R)."""
        assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution], "img")
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img, force_fp32=force_fp32)
        cmap = None
        if self.c_dim > 0:
            assert_shape(c, [x.shape[0], self.c_dim], "c")
            cmap = self.mapping(None, c)
        return self.b4(x, img, cmap)

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor], update_emas: bool = False,
                force_fp32: bool = False) -> torch.Tensor:
        del update_emas
        return self.run(img, c, force_fp32=force_fp32)

    def extra_repr(self) -> str:
        return (
            f"c_dim={self.c_dim}, img_resolution={self.img_resolution}, img_channels={self.img_channels}, "
            f"cmap_dim={self.cmap_dim}"
        )


def resize_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear, antialiased resize of (B, C, h, w) to (B, C, size, size) (EG3D's filtered resizing)."""
    if image.shape[-1] == size and image.shape[-2] == size:
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class DualDiscriminator(Discriminator):
    """EG3D's dual discriminator: sees `image` and `image_raw` (resized) together.

    forward(image (B, 3, R, R), image_raw (B, 3, r, r), c (B, c_dim),
            image_mesh (B, mesh_channels, R', R') when mesh_channels > 0) -> logits (B, 1).
    """

    def __init__(
        self,
        c_dim: int,                     # Label dimensionality (25).
        img_resolution: int,            # Resolution R of `image`.
        img_channels: int = 3,          # Channels of `image` (and of `image_raw`).
        mesh_channels: int = 0,         # Channels of an extra mesh rendering, 0 = published design.
        c_noise: float = 0.0,           # Label noise std, in units of the batch's label std (training only).
        **kwargs,                       # Passed to Discriminator.
    ):
        self.rgb_channels = int(img_channels)
        self.mesh_channels = int(mesh_channels)
        super().__init__(c_dim=c_dim, img_resolution=img_resolution,
                         img_channels=2 * img_channels + mesh_channels, **kwargs)
        self.c_noise = float(c_noise)
        # Kept for checkpoint compatibility; the published code's filtered resizing holds it.
        self.register_buffer("resample_filter", make_filter([1, 3, 3, 1]))

    def assemble(self, image: torch.Tensor, image_raw: torch.Tensor,
                 image_mesh: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, 2*C [+ mesh], R, R): image, resized image_raw, resized mesh rendering."""
        R = self.img_resolution
        assert_shape(image, [None, self.rgb_channels, R, R], "image")
        assert_shape(image_raw, [image.shape[0], self.rgb_channels, None, None], "image_raw")
        parts = [image, resize_image(image_raw, R)]
        if self.mesh_channels > 0:
            if image_mesh is None:
                raise ValueError(f"DualDiscriminator: built with mesh_channels={self.mesh_channels} but image_mesh is None")
            assert_shape(image_mesh, [image.shape[0], self.mesh_channels, None, None], "image_mesh")
            parts.append(resize_image(image_mesh, R))
        elif image_mesh is not None:
            raise ValueError("DualDiscriminator: got image_mesh but built with mesh_channels=0")
        return torch.cat(parts, dim=1)

    def forward(self, image: torch.Tensor, image_raw: torch.Tensor, c: Optional[torch.Tensor],
                image_mesh: Optional[torch.Tensor] = None, update_emas: bool = False,
                force_fp32: bool = False) -> torch.Tensor:
        del update_emas
        img = self.assemble(image, image_raw, image_mesh)
        if self.c_dim > 0 and self.c_noise > 0 and self.training:
            c = c + torch.randn_like(c) * c.std(0) * self.c_noise
        return self.run(img, c, force_fp32=force_fp32)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mesh_channels={self.mesh_channels}, c_noise={self.c_noise:g}"
