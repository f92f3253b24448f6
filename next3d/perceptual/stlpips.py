"""ST-LPIPS: the shift-tolerant learned perceptual distance, and its feature network.

Definition (LPIPS, Zhang et al. CVPR 2018; ST-LPIPS weights, Ghildyal & Liu ECCV 2022):
for images a, b in [-1, 1], both are ImageNet-normalised by the fixed `ScalingLayer`
((x - shift) / scale, shift = (-0.030, -0.088, -0.188), scale = (0.458, 0.448, 0.450)),
run through the shift-tolerant backbone (`backbones`), and at each of the five outputs
the features are unit-normalised along channels (f / (‖f‖₂ + 1e-10)); the squared
difference is weighted per channel by the non-negative linear head `linK` (a 1×1
convolution without bias), averaged over the spatial positions, and summed over the
five layers:

    d(a, b) = Σ_k mean_hw( Σ_c w_kc (â_kchw − b̂_kchw)² )      → (B,), ≥ 0, d(a, a) = 0.

Images are not resized here (PTI resizes to 256² before its LPIPS term); both images must
have the same size, at least 32×32.

The module layout (`scaling_layer`, `net.sliceK.I`, `linK.model.1`) is that of the shipped
weight files, which load strictly by name (`weights.load_into`).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch

from next3d.perceptual.backbones import BACKBONES
from next3d.perceptual.weights import NETS, PerceptualError, load_into, load_state_dict, sub_state_dict, weights_path
from torch_utils.misc import assert_shape

EPS = 1e-10


class ScalingLayer(torch.nn.Module):
    """[-1, 1] RGB -> ImageNet-normalised RGB: (x - shift) / scale (buffers `shift`, `scale`)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)


class LinearHead(torch.nn.Module):
    """Per-channel weights of one layer's squared feature difference: `model.1` is a 1x1
    convolution C -> 1 without bias (`model.0` is the training-time dropout, identity here)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def unit_normalize(f: torch.Tensor) -> torch.Tensor:
    """Features (B, C, H, W) divided by their channel-wise L2 norm (+ 1e-10)."""
    return f / (f.square().sum(dim=1, keepdim=True).sqrt() + EPS)


def _check_images(x: torch.Tensor, name: str) -> None:
    assert_shape(x, [None, 3, None, None], name)
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a float tensor in [-1, 1], got {x.dtype}")


def _add_trunk(module: torch.nn.Module, net: str) -> None:
    """Give `module` the input scaling and the shift-tolerant backbone `net` (random weights),
    under the weight files' names (`scaling_layer`, `net.*`)."""
    if net not in NETS:
        raise PerceptualError(f"net: expected one of {', '.join(NETS)}, got {net!r}")
    module.net_name = net
    module.scaling_layer = ScalingLayer()
    module.net = BACKBONES[net]()


class PerceptualFeatures(torch.nn.Module):
    """The ST-LPIPS trunk as a feature network (no linear heads), frozen, eval mode.

    forward(x (B, 3, H, W) float in [-1, 1], H, W >= 32) -> five feature maps
    (B, C_k, H_k, W_k), C = (64, 128, 256, 512, 512) for VGG, (64, 192, 384, 256, 256) for
    AlexNet. `pretrained=False` keeps the random initialisation (tests).
    """

    def __init__(self, net: str = "vgg", pretrained: bool = True):
        super().__init__()
        _add_trunk(self, net)
        self.channels = self.net.channels
        if pretrained:
            path = weights_path(net)
            sd = load_state_dict(path)
            load_into(self.net, sub_state_dict(sd, "net."), f"{path} (net.*)")
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        _check_images(x, "image")
        return self.net(self.scaling_layer(x))

    def extra_repr(self) -> str:
        return f"net={self.net_name}"


class VGGFeatures(PerceptualFeatures):
    """`PerceptualFeatures` with the shift-tolerant VGG-16 (relu1_2 .. relu5_3)."""

    def __init__(self, pretrained: bool = True):
        super().__init__("vgg", pretrained=pretrained)


class STLPIPS(torch.nn.Module):
    """Shift-tolerant LPIPS distance (module docstring). Frozen, eval mode; gradients flow
    to the inputs (use it as a loss).

    STLPIPS(net="vgg" | "alex")(a, b) with a, b (B, 3, H, W) float in [-1, 1], same shape,
    H, W >= 32 -> (B,) distances (float, >= 0). `return_layers=True` also returns the five
    per-layer terms (B,) each. `pretrained=False` keeps random weights (tests only).
    """

    def __init__(self, net: str = "vgg", pretrained: bool = True, weights_file: Optional[Union[str, Path]] = None):
        super().__init__()
        _add_trunk(self, net)
        for k, ch in enumerate(self.net.channels):
            self.add_module(f"lin{k}", LinearHead(ch))
        if pretrained or weights_file is not None:
            path = weights_file if weights_file is not None else weights_path(net)
            load_into(self, load_state_dict(path), str(path))
        self.requires_grad_(False)
        self.eval()

    @property
    def lins(self) -> List[LinearHead]:
        return [getattr(self, f"lin{k}") for k in range(len(self.net.channels))]

    def forward(self, a: torch.Tensor, b: torch.Tensor, return_layers: bool = False):
        _check_images(a, "a")
        assert_shape(b, list(a.shape), "b")
        feats_a = self.net(self.scaling_layer(a))
        feats_b = self.net(self.scaling_layer(b))
        terms = []
        for lin, fa, fb in zip(self.lins, feats_a, feats_b):
            diff = (unit_normalize(fa) - unit_normalize(fb)).square()
            terms.append(lin(diff).mean(dim=(1, 2, 3)))
        dist = torch.stack(terms, dim=0).sum(dim=0)
        return (dist, terms) if return_layers else dist

    def extra_repr(self) -> str:
        return f"net={self.net_name}"
