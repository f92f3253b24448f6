"""Shift-tolerant VGG-16 and AlexNet feature backbones (the ST-LPIPS trunks).

Architecture facts (ST-LPIPS, Ghildyal & Liu, ECCV 2022, variant "shift_tolerant"):

* **VGG-16** (configuration D: 2×64, 2×128, 3×256, 3×512, 3×512 3×3 convolutions, pad 1,
  each followed by ReLU). Every 2×2/2 max pool becomes a 2×2 max pool at stride 1
  followed by a `BlurPool` (3-tap binomial, reflection pad 2, stride 2). The five
  outputs are relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 (channels 64, 128, 256,
  512, 512); a pool + blur opens slices 2–5.
* **AlexNet**: the 11×11 first convolution runs at stride 1 (pad 2) and is followed by a
  blur pool, then ReLU; the two 3×3/2 max pools become 3×3/1 max pools followed by a
  blur pool. Outputs after relu1..relu5 (channels 64, 192, 384, 256, 256).

Module names follow the layer index inside the torchvision-style `features` sequence,
split into `slice1..slice5`, so that the state_dict keys are those of the shipped files
without the `net.` prefix (`slice1.0.weight`, `slice2.5.filt`, ..., `slice5.32.bias`).
Inputs are ImageNet-normalised images (see `ScalingLayer`); the networks hold no input
normalisation themselves.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import List, Sequence, Tuple

import torch

from next3d.perceptual.blurpool import BlurPool
from torch_utils.misc import assert_shape

# Channels of the five outputs.
VGG_CHANNELS = (64, 128, 256, 512, 512)
ALEX_CHANNELS = (64, 192, 384, 256, 256)


def _vgg_layers() -> List[torch.nn.Module]:
    layers: List[torch.nn.Module] = []
    cin = 3
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512):
        if item == "M":
            layers += [torch.nn.MaxPool2d(kernel_size=2, stride=1), BlurPool(cin)]
        else:
            layers += [torch.nn.Conv2d(cin, item, kernel_size=3, padding=1), torch.nn.ReLU()]
            cin = item
    return layers


def _alex_layers() -> List[torch.nn.Module]:
    conv, relu = torch.nn.Conv2d, torch.nn.ReLU
    return [
        conv(3, 64, kernel_size=11, stride=1, padding=2), BlurPool(64), relu(),                   # 0-2
        torch.nn.MaxPool2d(kernel_size=3, stride=1), BlurPool(64), conv(64, 192, 5, padding=2), relu(),  # 3-6
        torch.nn.MaxPool2d(kernel_size=3, stride=1), BlurPool(192), conv(192, 384, 3, padding=1), relu(),  # 7-10
        conv(384, 256, 3, padding=1), relu(),                                                     # 11-12
        conv(256, 256, 3, padding=1), relu(),                                                     # 13-14
    ]


# Where each slice starts in the layer list (the last ends at the list's end).
_VGG_SPLITS = (0, 4, 10, 18, 26)
_ALEX_SPLITS = (0, 3, 7, 11, 13)


class SlicedBackbone(torch.nn.Module):
    """A feature network cut into five slices; forward returns the five slice outputs."""

    def __init__(self, layers: Sequence[torch.nn.Module], splits: Sequence[int], channels: Sequence[int],
                 min_size: int, name: str):
        super().__init__()
        self.channels = tuple(channels)
        self.min_size = int(min_size)
        self.name = name
        bounds = list(splits) + [len(layers)]
        for k in range(len(splits)):
            items = OrderedDict((str(i), layers[i]) for i in range(bounds[k], bounds[k + 1]))
            self.add_module(f"slice{k + 1}", torch.nn.Sequential(items))

    @property
    def slices(self) -> Tuple[torch.nn.Module, ...]:
        return tuple(getattr(self, f"slice{k + 1}") for k in range(len(self.channels)))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """x (B, 3, H, W) ImageNet-normalised, H, W >= min_size -> five (B, C_k, H_k, W_k) maps."""
        assert_shape(x, [None, 3, None, None], f"{self.name} input")
        if min(x.shape[2:]) < self.min_size:
            raise ValueError(f"{self.name} input: expected images of at least {self.min_size}x{self.min_size} "
                             f"pixels, got {tuple(x.shape[2:])}")
        outs = []
        for s in self.slices:
            x = s(x)
            outs.append(x)
        return tuple(outs)

    def extra_repr(self) -> str:
        return f"name={self.name}, channels={self.channels}, min_size={self.min_size}"


def shift_tolerant_vgg16() -> SlicedBackbone:
    """Randomly initialised shift-tolerant VGG-16 trunk (load weights by name)."""
    return SlicedBackbone(_vgg_layers(), _VGG_SPLITS, VGG_CHANNELS, min_size=32, name="vgg16-shift-tolerant")


def shift_tolerant_alexnet() -> SlicedBackbone:
    """Randomly initialised shift-tolerant AlexNet trunk (load weights by name)."""
    return SlicedBackbone(_alex_layers(), _ALEX_SPLITS, ALEX_CHANNELS, min_size=32, name="alexnet-shift-tolerant")


BACKBONES = {"vgg": shift_tolerant_vgg16, "alex": shift_tolerant_alexnet}
