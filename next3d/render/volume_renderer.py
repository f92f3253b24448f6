"""Two-pass (coarse + importance) volume rendering of tri-planes: the composition of
`ray_sampler` -> `samplers` -> `triplane_coords.sample_planes` -> decoder -> `compositor`.

Shapes: planes (B, 3, C, P, P) in the renderer's slot order (XY, XZ, ZY; see
`next3d.render.triplane_coords`), camera labels c (B, 25), neural rendering resolution
R. Outputs, as EG3D's generator returns them before super-resolution:

* `features` (B, F, R, R): composited decoder features rescaled from (-0.001, 1.001) to
  about (-1, 1) (x * 2 - 1), the first 3 channels being the raw RGB image;
* `depth` (B, 1, R, R): expected ray termination depth along the (unit) ray, inside the
  range of all sample depths (EG3D's stratified samples reach up to one step past
  `ray_end`: [ray_start, ray_end + (ray_end - ray_start) / (num_coarse - 1))];
* `weight_sum` (B, 1, R, R): accumulated opacity, in [0, 1].

The decoder is passed in, not owned, so that it stays the generator's top-level
`decoder` module (the published state-dict names).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch

from next3d.render.compositor import DEFAULT_DENSITY_SHIFT, DENSITY_ACTIVATIONS, composite
from next3d.render.ray_sampler import make_rays, rays_to_image
from next3d.render.samplers import importance_depths, stratified_depths
from next3d.render.triplane_coords import DEFAULT_BOX_WARP, sample_planes
from torch_utils.misc import assert_shape

Decoder = Callable[[torch.Tensor], Dict[str, torch.Tensor]]


@dataclass(frozen=True)
class RenderOptions:
    """Volume-rendering settings (EG3D/Next3D published values as defaults)."""

    ray_start: float = 2.25  # Near bound of every ray (world units along the unit direction).
    ray_end: float = 3.3  # Far bound of every ray.
    num_coarse: int = 48  # Stratified samples per ray (first pass).
    num_fine: int = 48  # Importance samples per ray (second pass); 0 = single pass.
    box_warp: float = DEFAULT_BOX_WARP  # Side of the world cube that the planes span.
    density_activation: str = "softplus"  # 'softplus' = softplus(σ + density_shift) (EG3D); 'none'.
    density_shift: float = DEFAULT_DENSITY_SHIFT  # Added to raw σ before the softplus.
    disparity_space: bool = False  # Stratify the coarse samples in disparity instead of depth.
    white_back: bool = False  # Composite over a white background.
    perturb: bool = True  # Jitter the stratified samples by U * step (False: linspace).
    det: bool = False  # Importance quantiles linspace(0, 1) instead of uniform random ones.

    def __post_init__(self):
        if not self.ray_end > self.ray_start > 0:
            raise ValueError(f"ray range: expected 0 < ray_start < ray_end, got [{self.ray_start}, {self.ray_end}]")
        if self.num_coarse < 2 or self.num_fine < 0:
            raise ValueError(f"samples: expected num_coarse >= 2 and num_fine >= 0, got {self.num_coarse}, "
                             f"{self.num_fine}")
        if self.num_fine > 0 and self.num_coarse < 4:
            raise ValueError(f"samples: importance sampling (num_fine > 0) needs num_coarse >= 4, "
                             f"got {self.num_coarse}")
        if self.density_activation not in DENSITY_ACTIVATIONS:
            raise ValueError(f"density_activation: expected one of {DENSITY_ACTIVATIONS}, "
                             f"got {self.density_activation!r}")


class VolumeRenderer(torch.nn.Module):
    """Renders tri-planes through a decoder; holds settings only (no parameters, no state)."""

    def __init__(self, options: Optional[RenderOptions] = None):
        super().__init__()
        self.options = options if options is not None else RenderOptions()

    def query(self, planes: torch.Tensor, decoder: Decoder, points: torch.Tensor,
              box_warp: Optional[float] = None, grid_sample=None) -> Dict[str, torch.Tensor]:
        """Decode world points (B, M, 3): dict(sigma (B, M, 1) raw, features (B, M, F)).

        This is exactly the per-sample decoding the renderer uses (for density
        regularisation and mesh export).
        """
        assert_shape(planes, [None, 3, None, None, None], "planes")
        assert_shape(points, [planes.shape[0], None, 3], "points")
        warp = self.options.box_warp if box_warp is None else box_warp
        out = decoder(sample_planes(planes, points, warp, grid_sample=grid_sample))
        assert_shape(out["sigma"], [points.shape[0], points.shape[1], 1], "decoder sigma")
        return out

    def _decode_along(self, planes, decoder, origins, dirs, depths, grid_sample):
        """Decode samples at depths (B, N, S, 1) along rays -> (features (B,N,S,F), sigma (B,N,S,1))."""
        batch, rays, samples, _ = depths.shape
        points = (origins.unsqueeze(-2) + depths * dirs.unsqueeze(-2)).reshape(batch, rays * samples, 3)
        out = self.query(planes, decoder, points, grid_sample=grid_sample)
        return (out["features"].reshape(batch, rays, samples, -1), out["sigma"].reshape(batch, rays, samples, 1))

    def render_rays(self, planes: torch.Tensor, decoder: Decoder, origins: torch.Tensor, dirs: torch.Tensor,
                    grid_sample=None, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Render rays (origins, unit dirs: (B, N, 3)) -> dict(features (B, N, F) in ~(-1, 1),
        depth (B, N, 1), weight_sum (B, N, 1), weights (B, N, S_total - 1, 1))."""
        opt = self.options
        assert_shape(planes, [None, 3, None, None, None], "planes")
        batch = planes.shape[0]
        assert_shape(origins, [batch, None, 3], "ray origins")
        assert_shape(dirs, [batch, origins.shape[1], 3], "ray directions")
        rays = origins.shape[1]

        depths = stratified_depths(batch, rays, opt.num_coarse, opt.ray_start, opt.ray_end, perturb=opt.perturb,
                                   generator=generator, device=planes.device, dtype=origins.dtype,
                                   disparity_space=opt.disparity_space)
        feats, sigma = self._decode_along(planes, decoder, origins, dirs, depths, grid_sample)
        if opt.num_fine > 0:
            coarse = composite(feats, sigma, depths, opt.density_activation, opt.white_back, opt.density_shift)
            fine_depths = importance_depths(depths, coarse.weights, opt.num_fine, det=opt.det, generator=generator)
            fine_feats, fine_sigma = self._decode_along(planes, decoder, origins, dirs, fine_depths, grid_sample)
            # Merge both passes in depth order (EG3D's unify_samples); composite over all samples.
            depths = torch.cat([depths, fine_depths], dim=2)
            depths, order = torch.sort(depths, dim=2)
            feats = torch.cat([feats, fine_feats], dim=2).gather(2, order.expand(-1, -1, -1, feats.shape[-1]))
            sigma = torch.cat([sigma, fine_sigma], dim=2).gather(2, order)
        result = composite(feats, sigma, depths, opt.density_activation, opt.white_back, opt.density_shift)
        return {
            # EG3D hands the super-resolution network features scaled to about (-1, 1).
            "features": result.features * 2.0 - 1.0,
            "depth": result.depth,
            "weight_sum": result.weights.sum(dim=2),
            "weights": result.weights,
        }

    def forward(self, planes: torch.Tensor, decoder: Decoder, c: torch.Tensor, resolution: int,
                grid_sample=None, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Render R x R images for labels c (B, 25): dict(features (B, F, R, R), depth (B, 1, R, R),
        weight_sum (B, 1, R, R))."""
        assert_shape(c, [planes.shape[0], 25], "camera label")
        origins, dirs = make_rays(c.to(planes.dtype), resolution)
        out = self.render_rays(planes, decoder, origins, dirs, grid_sample=grid_sample, generator=generator)
        return {
            "features": rays_to_image(out["features"], resolution),
            "depth": rays_to_image(out["depth"], resolution),
            "weight_sum": rays_to_image(out["weight_sum"], resolution),
        }

    def extra_repr(self) -> str:
        return repr(self.options)
