"""Depth samples along rays: stratified (coarse pass) and importance (fine pass), as EG3D.

Shapes: depths are (B, N, S, 1) for B batch items, N rays, S samples per ray, sorted
along S, measured along unit ray directions (world units). Coarse weights come from
`next3d.render.compositor.composite`: one per interval between consecutive samples,
(B, N, S - 1, 1).

Both follow EG3D's published `ImportanceRenderer` (`sample_stratified`,
`sample_importance`, `sample_pdf`), which Next3D uses unchanged:

* **Stratified**: with Δ = 1 / (S - 1), t_k = k Δ + U_k Δ for k = 0..S-1 (U_k uniform in
  [0, 1), or 0 when deterministic), and depth_k = start + (end - start) t_k. The last
  sample can therefore lie up to one step beyond `ray_end`. In disparity space the same
  t_k interpolate the inverse depth: depth_k = 1 / ((1 - t_k) / start + t_k / end).
* **Importance**: the S - 1 interval weights are smoothed (max-pool of width 2 with the
  ends padded, i.e. S values, then average-pool of width 2, back to S - 1), raised by
  0.01 and cut to their inner S - 3 values `[1:-1]`. Those are the densities of the
  S - 3 bins between consecutive interval midpoints m_j = (d_j + d_{j+1}) / 2,
  j = 0..S-3 (the last midpoint is not used): bin j = [m_j, m_{j+1}] carries smoothed
  weight j + 1. With pdf = (w + 1e-5) / sum and cdf = [0, cumsum(pdf)], a quantile u
  maps to m_lo + (u - cdf_lo) / (cdf_hi - cdf_lo) (m_hi - m_lo) inside its bin (a bin
  whose cdf step is below 1e-5 divides by 1 instead). Quantiles are uniform random, or
  linspace(0, 1, n) when deterministic. The fine depths are returned in quantile order
  (not sorted: the renderer merges and sorts both passes) and detached.
"""

from __future__ import annotations

from typing import Optional

import torch

from torch_utils.misc import assert_shape

SMOOTH_FLOOR = 0.01  # added to the smoothed weights: empty space still gets samples
PDF_EPS = 1e-5  # EG3D's sample_pdf eps: added to the weights, and the smallest cdf step divided by


def stratified_depths(batch: int, num_rays: int, num_samples: int, ray_start: float, ray_end: float,
                      perturb: bool = True, generator: Optional[torch.Generator] = None, device=None,
                      dtype=torch.float32, disparity_space: bool = False) -> torch.Tensor:
    """Stratified depths (B, N, S, 1), sorted along S (see the module docstring).

    `perturb=True` jitters each sample by U * Δ (U uniform, from `generator` when given);
    `perturb=False` returns linspace(ray_start, ray_end, S) (in disparity when
    `disparity_space`).
    """
    if num_samples < 2:
        raise ValueError(f"num_samples: expected at least 2 samples per ray, got {num_samples}")
    if not ray_end > ray_start:
        raise ValueError(f"ray range: expected ray_start < ray_end, got [{ray_start}, {ray_end}]")
    shape = (batch, num_rays, num_samples, 1)
    if perturb:
        gen_device = device if generator is None else generator.device
        jitter = torch.rand(shape, generator=generator, device=gen_device, dtype=dtype).to(device)
    else:
        jitter = torch.zeros(shape, device=device, dtype=dtype)
    if disparity_space:
        t = torch.linspace(0.0, 1.0, num_samples, device=device, dtype=dtype).reshape(1, 1, -1, 1)
        t = t + jitter * (1.0 / (num_samples - 1))
        return 1.0 / ((1.0 - t) / ray_start + t / ray_end)
    depths = torch.linspace(ray_start, ray_end, num_samples, device=device, dtype=dtype).reshape(1, 1, -1, 1)
    return depths + jitter * ((ray_end - ray_start) / (num_samples - 1))


def smooth_weights(weights: torch.Tensor, floor: float = SMOOTH_FLOOR) -> torch.Tensor:
    """EG3D's smoothing of interval weights (B, N, K, 1) -> (B, N, K, 1).

    max_pool1d(kernel 2, stride 1, padding 1) gives K + 1 maxima of neighbouring pairs
    (the padding never wins, so the ends keep their own value), avg_pool1d(kernel 2,
    stride 1) averages neighbouring maxima back to K values; then + `floor`.
    """
    assert_shape(weights, [None, None, None, 1], "weights")
    w = weights[..., 0]
    padded = torch.cat([w[..., :1], w, w[..., -1:]], dim=-1)
    maxed = torch.maximum(padded[..., :-1], padded[..., 1:])
    smoothed = 0.5 * (maxed[..., :-1] + maxed[..., 1:])
    return (smoothed + floor).unsqueeze(-1)


def importance_depths(depths: torch.Tensor, weights: torch.Tensor, num_samples: int, det: bool = False,
                      generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Draw `num_samples` depths per ray (B, N, num_samples, 1) from coarse interval weights.

    `depths` (B, N, S, 1) are the sorted coarse depths (S >= 4), `weights`
    (B, N, S - 1, 1) the compositing weight of each interval between them. EG3D's
    recipe (module docstring); quantiles linspace(0, 1, n) with `det`, else uniform
    random (from `generator`). Returned in quantile order, detached.
    """
    assert_shape(depths, [None, None, None, 1], "depths")
    batch, rays, samples, _ = depths.shape
    assert_shape(weights, [batch, rays, samples - 1, 1], "weights")
    if samples < 4:
        raise ValueError(f"depths: importance sampling needs at least 4 coarse samples per ray, got {samples}")
    if num_samples < 1:
        raise ValueError(f"num_samples: expected at least 1, got {num_samples}")
    with torch.no_grad():
        w = smooth_weights(weights.float())[..., 1:-1, 0] + PDF_EPS  # (B, N, S - 3)
        pdf = w / w.sum(dim=-1, keepdim=True)
        cdf = torch.cat([torch.zeros_like(pdf[..., :1]), torch.cumsum(pdf, dim=-1)], dim=-1)  # (B, N, S - 2)
        edges = 0.5 * (depths[..., :-1, 0] + depths[..., 1:, 0])  # midpoints (B, N, S - 1)
        if det:
            u = torch.linspace(0.0, 1.0, num_samples, device=depths.device, dtype=cdf.dtype)
            u = u.expand(batch, rays, num_samples).contiguous()
        else:
            gen_device = depths.device if generator is None else generator.device
            u = torch.rand((batch, rays, num_samples), generator=generator, device=gen_device,
                           dtype=cdf.dtype).to(depths.device)
        # Bin below/above the quantile; a quantile at or past the last cdf value stays on the
        # last used midpoint (below == above there).
        above_idx = torch.searchsorted(cdf.contiguous(), u, right=True)
        below = (above_idx - 1).clamp_min(0)
        above = above_idx.clamp_max(samples - 3)
        cdf_lo, cdf_hi = cdf.gather(-1, below), cdf.gather(-1, above)
        z_lo, z_hi = edges.gather(-1, below).float(), edges.gather(-1, above).float()
        denom = cdf_hi - cdf_lo
        denom = torch.where(denom < PDF_EPS, torch.ones_like(denom), denom)
        fine = z_lo + (u - cdf_lo) / denom * (z_hi - z_lo)
    return fine.to(depths.dtype).unsqueeze(-1)
