"""StyleGAN2 mapping network: (z, camera label c) -> intermediate latents ws.

z (B, z_dim) and the label embedding `embed(c)` (B, embed_features) are each normalised
by their second moment, concatenated and passed through `num_layers` fully connected
layers (`fc0`, `fc1`, ...; lrelu, lr multiplier 0.01). The result w (B, w_dim) is
broadcast to ws (B, num_ws, w_dim). `w_avg` (w_dim,) tracks the running mean of w with
decay `w_avg_beta` when `update_emas=True`; truncation pulls ws towards it:
ws[:, :cutoff] = w_avg + psi * (ws[:, :cutoff] - w_avg).

The discriminator reuses this module for its label projection with z_dim=0,
num_ws=None (output (B, w_dim)) and w_avg_beta=None (no `w_avg` buffer).
"""

from __future__ import annotations

from typing import Optional

import torch

from torch_utils.misc import assert_shape

from .layers import FullyConnectedLayer, normalize_2nd_moment


class MappingNetwork(torch.nn.Module):
    def __init__(
        self,
        z_dim: int,                     # Latent z dimensionality, 0 = no latent.
        c_dim: int,                     # Conditioning label dimensionality, 0 = no label.
        w_dim: int,                     # Output w dimensionality.
        num_ws: Optional[int],          # Number of ws to broadcast to, None = return (B, w_dim).
        num_layers: int = 8,            # Number of fully connected layers.
        embed_features: Optional[int] = None,  # Label embedding size, None = w_dim.
        layer_features: Optional[int] = None,  # Hidden layer size, None = w_dim.
        activation: str = "lrelu",      # Activation of the fc layers.
        lr_multiplier: float = 0.01,    # Learning-rate multiplier of the fc layers.
        w_avg_beta: Optional[float] = 0.998,  # Decay of the running mean of w, None = do not track.
    ):
        super().__init__()
        if z_dim < 0 or c_dim < 0 or z_dim + c_dim == 0:
            raise ValueError(f"MappingNetwork: z_dim={z_dim}, c_dim={c_dim}; expected non-negative, not both 0")
        if num_layers < 1:
            raise ValueError(f"MappingNetwork: num_layers={num_layers}, expected >= 1")
        self.z_dim = int(z_dim)
        self.c_dim = int(c_dim)
        self.w_dim = int(w_dim)
        self.num_ws = None if num_ws is None else int(num_ws)
        self.num_layers = int(num_layers)
        self.w_avg_beta = w_avg_beta

        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if self.num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: Optional[torch.Tensor],      # (B, z_dim) or None when z_dim == 0.
        c: Optional[torch.Tensor],      # (B, c_dim) or None when c_dim == 0.
        truncation_psi: float = 1.0,    # 1 = no truncation, 0 = every truncated w equals w_avg.
        truncation_cutoff: Optional[int] = None,  # Truncate only ws[:, :cutoff]; None = all.
        update_emas: bool = False,      # Update w_avg from this batch (training only)?
        num_ws: Optional[int] = None,   # Override the number of broadcast ws.
    ) -> torch.Tensor:
        """Returns ws (B, num_ws, w_dim), or (B, w_dim) when num_ws is None."""
        x = None
        if self.z_dim > 0:
            assert_shape(z, [None, self.z_dim], "z")
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            assert_shape(c, [None, self.c_dim], "c")
            if x is not None and c.shape[0] != x.shape[0]:
                raise ValueError(f"MappingNetwork: z has batch {x.shape[0]} but c has batch {c.shape[0]}")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y

        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if update_emas and self.w_avg_beta is not None and hasattr(self, "w_avg"):
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        out_ws = self.num_ws if num_ws is None else int(num_ws)
        if out_ws is not None:
            x = x.unsqueeze(1).repeat([1, out_ws, 1])

        if truncation_psi != 1:
            if not hasattr(self, "w_avg"):
                raise ValueError("MappingNetwork: truncation needs w_avg; built with num_ws=None or w_avg_beta=None")
            if out_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                head = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
                x = torch.cat([head, x[:, truncation_cutoff:]], dim=1)
        return x

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
            f"num_layers={self.num_layers}, w_avg_beta={self.w_avg_beta}"
        )
