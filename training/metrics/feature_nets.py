"""Feature networks for the distribution metrics; the network is part of the metric's name.

* `vgg` (offline default): the shift-tolerant VGG-16 of ST-LPIPS (`next3d.perceptual`,
  weights shipped in `stlpips-pytorch`). Images (uint8 RGB, any size) are mapped to
  [-1, 1], resized to 224×224 (bilinear, antialiased), and each of the five layers
  relu1_2 .. relu5_3 is unit-normalised over channels at every pixel (as LPIPS does) and
  averaged over the image; the five means are concatenated: a 1472-D vector
  (64 + 128 + 256 + 512 + 512). Numbers on it are NOT comparable with Inception FIDs.
* `inception`: the standard FID Inception-v3 pool3 features (2048-D,
  `next3d.perceptual.inception`) from a user-given state_dict file (pt_inception layout):
  `inception_weights=` or $NEXT3D_INCEPTION_WEIGHTS. Nothing is downloaded.

Every network has a `fingerprint` (definition version + a hash of its weights), which
keys the data-set statistics cache so that statistics of different networks never mix.
"""

from __future__ import annotations

import hashlib
import os
from typing import Optional

import torch
import torch.nn.functional as F

from torch_utils.misc import assert_shape

FEATURE_NETS = ("vgg", "inception")
INCEPTION_ENV = "NEXT3D_INCEPTION_WEIGHTS"
VGG_SIZE = 224


class MetricError(ValueError):
    """A metric cannot be computed with the given inputs (one line naming what is wrong)."""


def _weights_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) in [0, 255] -> float32 in [-1, 1]; float input must already be in [-1, 1]."""
    assert_shape(images, [None, 3, None, None], "images")
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1.0
    return images.float().clamp(-1.0, 1.0)


class FeatureNet(torch.nn.Module):
    """name, dim, fingerprint; forward(images (B, 3, H, W) uint8 or float [-1, 1]) -> (B, dim) float32."""

    name: str = ""
    dim: int = 0
    fingerprint: str = ""


class VGGEmbedding(FeatureNet):
    """The `vgg` feature vector (module docstring)."""

    VERSION = "vgg-lpips-unitmean-v1"

    def __init__(self, size: int = VGG_SIZE, pretrained: bool = True):
        super().__init__()
        from next3d.perceptual import VGGFeatures

        self.net = VGGFeatures(pretrained=pretrained)
        self.size = int(size)
        self.name = "vgg"
        self.dim = sum(self.net.channels)
        self.fingerprint = f"{self.VERSION}-{self.size}-{_weights_hash(self.net)}"

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = to_unit_range(images).to(next(self.net.parameters()).device)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        parts = []
        for f in self.net(x):
            f = f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            parts.append(f.mean(dim=(2, 3)))
        return torch.cat(parts, dim=1).float()


class InceptionEmbedding(FeatureNet):
    """The `inception` feature vector: pool3 (2048-D) of the FID Inception-v3."""

    VERSION = "inception-pool3-v1"

    def __init__(self, weights: str):
        super().__init__()
        from next3d.perceptual.inception import FEATURE_DIM, InceptionV3

        self.net = InceptionV3.from_file(weights)
        self.name = "inception"
        self.dim = FEATURE_DIM
        self.fingerprint = f"{self.VERSION}-{_weights_hash(self.net)}"

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = to_unit_range(images).to(next(self.net.parameters()).device)
        return self.net(x).float()


def get_feature_net(name: str, device: str = "cpu", inception_weights: Optional[str] = None,
                    vgg_size: int = VGG_SIZE) -> FeatureNet:
    """Build feature network `name` ('vgg' or 'inception') on `device`, frozen, eval mode."""
    if name == "vgg":
        return VGGEmbedding(size=vgg_size).to(device).eval()
    if name == "inception":
        path = inception_weights or os.environ.get(INCEPTION_ENV)
        if not path:
            raise MetricError(f"the inception metrics need the FID Inception-v3 weights as a state_dict file "
                              f"(pt_inception layout): pass inception_weights or set ${INCEPTION_ENV}; "
                              f"nothing is downloaded (use the *_vgg metrics offline)")
        return InceptionEmbedding(path).to(device).eval()
    raise MetricError(f"feature network {name!r}: expected one of {', '.join(FEATURE_NETS)}")
