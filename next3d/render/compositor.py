"""Stateless ray marcher: per-sample densities and features -> per-ray feature, depth, weights.

EG3D's compositing (its "MipRayMarcher2"): samples are composited on the S - 1
intervals between consecutive depths. Each interval takes the mean of its two end
samples' features and raw densities and has length delta = depth[k+1] - depth[k].
With `density_activation='softplus'` the averaged raw density σ becomes
softplus(σ - 1) (EG3D's 'softplus' clamp mode, shifted by -1); with 'none' the given
densities are used as they are (they must already be >= 0).

    alpha_k = 1 - exp(-density_k * delta_k)
    T_k     = prod_{m<k} (1 - alpha_m + 1e-10)      (transmittance)
    w_k     = alpha_k * T_k
    feature = sum_k w_k * feature_mid_k   (+ 1 - sum_k w_k with white_back)
    depth   = sum_k w_k * depth_mid_k / sum_k w_k, clamped to [min, max] of ALL depths

As EG3D's `MipRayMarcher2.run_forward`: the depth clamp uses the smallest and largest
sample depth of the whole `depths` tensor (every ray of every batch item), and a ray that
absorbs nothing (0 / 0) gets that largest depth.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from torch_utils.misc import assert_shape

DENSITY_ACTIVATIONS = ("softplus", "none")
DEFAULT_DENSITY_SHIFT = -1.0


class Composite(NamedTuple):
    """Compositing result for B batch items, N rays, S samples, C channels."""

    features: torch.Tensor  # (B, N, C) composited features
    depth: torch.Tensor  # (B, N, 1) expected termination depth, inside [min, max] of all sample depths
    weights: torch.Tensor  # (B, N, S - 1, 1) weight of each interval between consecutive samples


def activate_density(raw: torch.Tensor, density_activation: str = "softplus",
                     density_shift: float = DEFAULT_DENSITY_SHIFT) -> torch.Tensor:
    """Raw densities -> non-negative densities, as the compositor applies them."""
    if density_activation == "softplus":
        return F.softplus(raw + density_shift)
    if density_activation == "none":
        return raw
    raise ValueError(f"density_activation: expected one of {DENSITY_ACTIVATIONS}, got {density_activation!r}")


def composite(features: torch.Tensor, densities: torch.Tensor, depths: torch.Tensor,
              density_activation: str = "softplus", white_back: bool = False,
              density_shift: float = DEFAULT_DENSITY_SHIFT) -> Composite:
    """Alpha-composite samples along rays.

    features (B, N, S, C), densities (B, N, S, 1) (raw σ for 'softplus', σ >= 0 for
    'none'), depths (B, N, S, 1) sorted along S. Returns `Composite`.
    """
    assert_shape(features, [None, None, None, None], "features")
    batch, rays, samples, _ = features.shape
    assert_shape(densities, [batch, rays, samples, 1], "densities")
    assert_shape(depths, [batch, rays, samples, 1], "depths")
    if samples < 2:
        raise ValueError(f"features: expected at least 2 samples per ray to form intervals, got {samples}")
    if density_activation not in DENSITY_ACTIVATIONS:
        raise ValueError(f"density_activation: expected one of {DENSITY_ACTIVATIONS}, got {density_activation!r}")

    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    features_mid = 0.5 * (features[:, :, :-1] + features[:, :, 1:])
    depths_mid = 0.5 * (depths[:, :, :-1] + depths[:, :, 1:])
    # EG3D averages the raw σ of the two ends before the activation: keep that order.
    sigma_mid = activate_density(0.5 * (densities[:, :, :-1] + densities[:, :, 1:]), density_activation,
                                 density_shift)

    alpha = 1.0 - torch.exp(-sigma_mid * deltas)
    # The 1e-10 keeps the transmittance's gradient finite behind fully opaque samples.
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :, :1]), 1.0 - alpha + 1e-10], dim=2), dim=2)
    weights = alpha * trans[:, :, :-1]

    out = (weights * features_mid).sum(dim=2)
    total = weights.sum(dim=2)
    depth = (weights * depths_mid).sum(dim=2) / total
    depth = torch.nan_to_num(depth, nan=float("inf"), posinf=float("inf"))
    # EG3D clamps to the extremes of all samples at once, not per ray.
    depth = torch.clamp(depth, depths.min(), depths.max())
    if white_back:
        out = out + 1.0 - total
    return Composite(features=out, depth=depth, weights=weights)
