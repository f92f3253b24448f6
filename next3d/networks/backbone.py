"""A StyleGAN2 generator as used for Next3D's backbones: `mapping` + `synthesis`.

Next3D builds its static tri-plane generator (`backbone`, 96 channels) and its neural
texture generator (`texture_backbone`, 32 channels) this way; the submodule names make
their published state_dict entries (`backbone.mapping.fc0.weight`,
`backbone.synthesis.b4.const`, ...) load by name.

forward(z (B, z_dim), c (B, c_dim)) -> img (B, img_channels, R, R).
"""

from __future__ import annotations

from typing import Optional

import torch

from .mapping import MappingNetwork
from .synthesis import SynthesisNetwork


class StyleGAN2Backbone(torch.nn.Module):
    def __init__(
        self,
        z_dim: int,                     # Latent z dimensionality.
        c_dim: int,                     # Conditioning label dimensionality (25 for cameras).
        w_dim: int,                     # Dimensionality of w.
        img_resolution: int,            # Output resolution.
        img_channels: int,              # Output channels.
        mapping_ws: Optional[int] = None,  # ws produced by the mapping, None = synthesis.num_ws.
        mapping_kwargs: Optional[dict] = None,  # Passed to MappingNetwork (num_layers, ...).
        **synthesis_kwargs,             # Passed to SynthesisNetwork (channel_base, num_fp16_res, ...).
    ):
        super().__init__()
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.w_dim = int(w_dim)
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=mapping_ws or self.num_ws, **(mapping_kwargs or {})
        )

    def forward(
        self,
        z: torch.Tensor,                # (B, z_dim).
        c: torch.Tensor,                # (B, c_dim).
        truncation_psi: float = 1.0,    # Truncation strength (1 = none).
        truncation_cutoff: Optional[int] = None,  # Truncate only the first ws.
        update_emas: bool = False,      # Update w_avg (training).
        **synthesis_kwargs,             # noise_mode, force_fp32, fused_modconv.
    ) -> torch.Tensor:
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas,
            num_ws=self.num_ws,
        )
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, img_resolution={self.img_resolution}, "
            f"img_channels={self.img_channels}, num_ws={self.num_ws}"
        )
