"""Ray samplers, pinned to EG3D's published sample_stratified / sample_importance / sample_pdf."""

import pytest
import torch

from helpers import assert_close
from next3d.render.samplers import importance_depths, smooth_weights, stratified_depths
from torch_utils.misc import ShapeError, seeded_generator


def test_stratified_deterministic_is_linspace_including_both_ends():
    d = stratified_depths(1, 2, 5, 2.0, 3.0, perturb=False)
    assert d.shape == (1, 2, 5, 1)
    assert_close(d[0, 1, :, 0], torch.tensor([2.0, 2.25, 2.5, 2.75, 3.0]), name="linspace(start, end, S)")
    with pytest.raises(ValueError, match="ray_start < ray_end"):
        stratified_depths(1, 1, 4, 3.0, 2.0)
    with pytest.raises(ValueError, match="at least 2"):
        stratified_depths(1, 1, 1, 2.0, 3.0)


def test_stratified_jitter_is_one_step_after_each_linspace_sample():
    start, end, s = 2.25, 3.3, 8
    step = (end - start) / (s - 1)  # EG3D: delta = (end - start) / (S - 1), not / S
    d = stratified_depths(4, 500, s, start, end, generator=seeded_generator(3))[..., 0]
    u = (d - (start + step * torch.arange(s))) / step  # the uniform draw of each sample
    assert float(u.min()) >= -1e-5 and float(u.max()) < 1 + 1e-5
    assert 0.45 < float(u.mean()) < 0.55 and float(u.std()) > 0.25  # uniform, mean 1/2, std 0.289
    assert bool((d[..., 1:] >= d[..., :-1]).all())
    # So the last sample passes ray_end (by up to one step) about always.
    assert float(d[..., -1].min()) >= end - 1e-5 and float(d.max()) > end + 0.9 * step
    a = stratified_depths(1, 3, 4, 2.0, 3.0, generator=seeded_generator(7))
    assert torch.equal(a, stratified_depths(1, 3, 4, 2.0, 3.0, generator=seeded_generator(7)))


def test_disparity_space_stratification():
    det = stratified_depths(1, 1, 4, 2.0, 4.0, perturb=False, disparity_space=True)[0, 0, :, 0]
    # t = 0, 1/3, 2/3, 1 interpolate 1/depth from 1/2 to 1/4: 1 / (1/3 + 1/12) = 2.4, 1 / (1/6 + 1/6) = 3.
    assert_close(det, torch.tensor([2.0, 2.4, 3.0, 4.0]), name="disparity linspace")
    d = stratified_depths(2, 300, 4, 2.0, 4.0, disparity_space=True, generator=seeded_generator(5))[..., 0]
    t = (0.5 - 1.0 / d) / (0.5 - 0.25)  # invert the disparity interpolation
    u = t * 3 - torch.arange(4.0)  # t_k = (k + U_k) / (S - 1)
    assert float(u.min()) >= -1e-4 and float(u.max()) < 1 + 1e-4 and 0.4 < float(u.mean()) < 0.6
    # The last sample lies beyond ray_end: t up to 4/3 -> 1 / (-1/6 + 1/3) = 6.
    assert float(d.max()) > 4.0 and float(d.max()) <= 6.0 + 1e-4


def test_smooth_weights_by_hand():
    w = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.5]).reshape(1, 1, 5, 1)
    # max_pool1d(2, 1, padding=1): [0, 1, 1, 0, .5, .5]; avg_pool1d(2, 1): [.5, 1, .5, .25, .5].
    s = smooth_weights(w, floor=0.0)[0, 0, :, 0]
    assert_close(s, torch.tensor([0.5, 1.0, 0.5, 0.25, 0.5]), name="max-pool 2 + avg-pool 2")
    assert_close(smooth_weights(w)[0, 0, :, 0], s + 0.01, name="+ 0.01")


def _eg3d_by_hand(depths, smoothed_inner, quantiles, eps=1e-5):
    """EG3D's sample_pdf written out in Python floats for one ray."""
    mids = [(a + b) / 2 for a, b in zip(depths[:-1], depths[1:])]
    w = [x + eps for x in smoothed_inner]
    total = sum(w)
    cdf = [0.0]
    for x in w:
        cdf.append(cdf[-1] + x / total)
    out = []
    for u in quantiles:
        k = sum(1 for c in cdf if c <= u)  # searchsorted(right=True)
        lo, hi = max(k - 1, 0), min(k, len(w))
        denom = cdf[hi] - cdf[lo]
        denom = 1.0 if denom < eps else denom
        out.append(mids[lo] + (u - cdf[lo]) / denom * (mids[hi] - mids[lo]))
    return out


def test_importance_matches_eg3d_formula_by_hand():
    depths = torch.tensor([2.0, 2.2, 2.4, 2.6, 2.8, 3.0]).reshape(1, 1, 6, 1)
    weights = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0]).reshape(1, 1, 5, 1)  # the interval [2.4, 2.6]
    # Smoothed: max-pool [0, 0, 1, 1, 0, 0] -> avg [0, .5, 1, .5, 0] -> + .01; EG3D keeps [1:-1].
    inner = [0.51, 1.01, 0.51]
    # Those weight the bins between midpoints 2.1 | 2.3 | 2.5 | 2.7: half a step nearer the
    # camera than the intervals they came from (the published code's bins).
    total = 0.51001 + 1.01001 + 0.51001
    c1, c2 = 0.51001 / total, 1.52002 / total
    expect = [2.1, 2.1 + 0.25 / c1 * 0.2, 2.3 + (0.5 - c1) / (c2 - c1) * 0.2, 2.5 + (0.75 - c2) / (1 - c2) * 0.2, 2.7]
    assert_close(torch.tensor(_eg3d_by_hand([2.0, 2.2, 2.4, 2.6, 2.8, 3.0], inner, [0, .25, .5, .75, 1])),
                 torch.tensor(expect), atol=1e-9, name="hand-written helper agrees with the closed form")
    fine = importance_depths(depths, weights, 5, det=True)  # quantiles linspace(0, 1, 5)
    assert fine.shape == (1, 1, 5, 1)
    assert_close(fine[0, 0, :, 0], torch.tensor(expect), atol=1e-5, name="EG3D importance depths")
    assert abs(expect[2] - 2.4) < 1e-9  # symmetric weights: the median sits at the middle midpoint


def test_importance_random_quantiles_follow_the_pdf_and_are_unsorted():
    depths = torch.linspace(2.0, 3.0, 12).reshape(1, 1, 12, 1).expand(2, 3, 12, 1)
    weights = torch.rand(2, 3, 11, 1, generator=seeded_generator(0))
    fine = importance_depths(depths, weights, 4000, generator=seeded_generator(1))
    mids = (0.5 * (depths[0, 0, 1:, 0] + depths[0, 0, :-1, 0]))[:10]  # bins: the first S - 2 midpoints
    assert float(fine.min()) >= float(mids[0]) - 1e-6 and float(fine.max()) <= float(mids[-1]) + 1e-6
    inner = smooth_weights(weights)[..., 1:-1, 0] + 1e-5  # (2, 3, 9)
    pdf = inner / inner.sum(-1, keepdim=True)
    counts = torch.stack([((fine[..., 0] >= a) & (fine[..., 0] < b)).float().mean(-1)
                          for a, b in zip(mids[:-1], mids[1:])], -1)
    assert_close(counts, pdf, atol=0.03, name="bin frequencies = pdf")
    assert not bool((fine[..., 1:, 0] >= fine[..., :-1, 0]).all()), "quantile order, sorted later by the renderer"


def test_importance_detached_and_errors():
    depths = torch.linspace(2.0, 3.0, 6).reshape(1, 1, 6, 1).requires_grad_(True)
    weights = torch.ones(1, 1, 5, 1, requires_grad=True)
    fine = importance_depths(depths, weights, 4, det=True)
    assert not fine.requires_grad
    # Uniform weights: the quantiles spread evenly over the used midpoints [2.1, 2.7].
    assert_close(fine[0, 0, :, 0], torch.tensor([2.1, 2.3, 2.5, 2.7]), atol=1e-5, name="uniform")
    with pytest.raises(ShapeError, match="weights"):
        importance_depths(depths, torch.ones(1, 1, 6, 1), 4)
    with pytest.raises(ValueError, match="at least 4 coarse samples"):
        importance_depths(depths[:, :, :3], torch.ones(1, 1, 2, 1), 4)
