"""Depth samples along rays: stratified (coarse pass) and importance (fine pass).

Shapes: depths are (B, N, S, 1) for B batch items, N rays, S samples per ray, sorted
along S, measured along unit ray directions (world units). Coarse weights come from
`next3d.render.compositor.composite`: one per interval between consecutive samples,
(B, N, S - 1, 1).

Importance sampling follows EG3D's published recipe: the coarse interval weights are
smoothed (max-pool of width 2, then average-pool of width 2, both length-preserving),
raised by a floor of 0.01 so empty space is still visited, and inverted through the
piecewise-linear CDF over the coarse intervals. The fine depths are detached: gradients
never flow through sample positions.
"""

from __future__ import annotations

from typing import Optional

import torch

from torch_utils.misc import assert_shape


def stratified_depths(batch: int, num_rays: int, num_samples: int, ray_start: float, ray_end: float,
                      perturb: bool = True, generator: Optional[torch.Generator] = None, device=None,
                      dtype=torch.float32, disparity_space: bool = False) -> torch.Tensor:
    """Stratified depths (B, N, S, 1) in [ray_start, ray_end], sorted along S.

    [ray_start, ray_end] is cut into S equal bins and one depth drawn uniformly in each
    (`perturb=True`, from `generator` when given) or placed at each bin's centre
    (`perturb=False`, deterministic). With `disparity_space` the bins are equal in
    disparity 1 / depth instead (denser near the camera).
    """
    if num_samples < 2:
        raise ValueError(f"num_samples: expected at least 2 samples per ray, got {num_samples}")
    if not ray_end > ray_start:
        raise ValueError(f"ray range: expected ray_start < ray_end, got [{ray_start}, {ray_end}]")
    shape = (batch, num_rays, num_samples, 1)
    if perturb:
        offset = torch.rand(shape, generator=generator, device=device if generator is None else generator.device,
                            dtype=dtype).to(device)
    else:
        offset = torch.full(shape, 0.5, device=device, dtype=dtype)
    # t in [0, 1]: one sample per equal bin, in ascending order.
    t = (torch.arange(num_samples, device=device, dtype=dtype).reshape(1, 1, -1, 1) + offset) / num_samples
    if disparity_space:
        return 1.0 / ((1.0 - t) / ray_start + t / ray_end)
    return ray_start + (ray_end - ray_start) * t


def smooth_weights(weights: torch.Tensor, floor: float = 0.01) -> torch.Tensor:
    """EG3D's smoothing of interval weights (B, N, K, 1): max-pool 2, average-pool 2, + floor."""
    assert_shape(weights, [None, None, None, 1], "weights")
    w = weights[..., 0]
    # Max over each pair of neighbours (K + 1 values, edges replicated), then average
    # neighbouring maxima (back to K): a peak widens to its two neighbours at half height.
    padded = torch.cat([w[..., :1], w, w[..., -1:]], dim=-1)
    maxed = torch.maximum(padded[..., :-1], padded[..., 1:])
    smoothed = 0.5 * (maxed[..., :-1] + maxed[..., 1:])
    return (smoothed + floor).unsqueeze(-1)


def importance_depths(depths: torch.Tensor, weights: torch.Tensor, num_samples: int, smooth: bool = True,
                      floor: float = 0.01, det: bool = False,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Draw `num_samples` depths per ray (B, N, num_samples, 1) from coarse interval weights.

    `depths` (B, N, S, 1) are sorted coarse depths (the interval edges), `weights`
    (B, N, S - 1, 1) the compositing weight of each interval. With `smooth`, weights go
    through `smooth_weights(.., floor)`; without, only `floor` is added. The samples
    invert the CDF of the resulting piecewise-constant density: at quantiles
    (k + 0.5) / num_samples with `det`, else uniform random (from `generator`). The
    result is sorted and detached.
    """
    assert_shape(depths, [None, None, None, 1], "depths")
    batch, rays, samples, _ = depths.shape
    assert_shape(weights, [batch, rays, samples - 1, 1], "weights")
    if num_samples < 1:
        raise ValueError(f"num_samples: expected at least 1, got {num_samples}")
    with torch.no_grad():
        w = smooth_weights(weights, floor) if smooth else weights + floor
        w = w[..., 0].clamp_min(0) + 1e-5  # a ray of all-zero weights samples uniformly
        pdf = w / w.sum(dim=-1, keepdim=True)
        cdf = torch.cat([torch.zeros_like(pdf[..., :1]), torch.cumsum(pdf, dim=-1)], dim=-1)  # (B, N, S)
        cdf[..., -1] = 1.0
        if det:
            u = (torch.arange(num_samples, device=depths.device, dtype=depths.dtype) + 0.5) / num_samples
            u = u.expand(batch, rays, num_samples).contiguous()
        else:
            gen_device = depths.device if generator is None else generator.device
            u = torch.rand((batch, rays, num_samples), generator=generator, device=gen_device,
                           dtype=depths.dtype).to(depths.device)
        edges = depths[..., 0]
        # Interval index k with cdf[k] <= u < cdf[k+1].
        above = torch.searchsorted(cdf.contiguous(), u, right=True).clamp(1, samples - 1)
        below = above - 1
        cdf_lo, cdf_hi = cdf.gather(-1, below), cdf.gather(-1, above)
        z_lo, z_hi = edges.gather(-1, below), edges.gather(-1, above)
        span = cdf_hi - cdf_lo
        t = torch.where(span > 1e-12, (u - cdf_lo) / span.clamp_min(1e-12), torch.zeros_like(u))
        fine = z_lo + t.clamp(0, 1) * (z_hi - z_lo)
        fine, _ = torch.sort(fine, dim=-1)
    return fine.unsqueeze(-1)
