import pytest
import torch

from helpers import assert_close
from next3d.render.samplers import importance_depths, smooth_weights, stratified_depths
from torch_utils.misc import ShapeError, seeded_generator


def test_stratified_inside_range_sorted_and_one_per_bin():
    d = stratified_depths(2, 5, 8, 2.25, 3.3)
    assert d.shape == (2, 5, 8, 1)
    assert float(d.min()) >= 2.25 and float(d.max()) <= 3.3
    assert bool((d[:, :, 1:] >= d[:, :, :-1]).all())
    step = (3.3 - 2.25) / 8
    bins = torch.floor((d[..., 0] - 2.25) / step).clamp(max=7)
    assert_close(bins, torch.arange(8.0).expand(2, 5, 8), name="one sample per bin")
    # Jittered: not all at the bin centres.
    assert float((d[..., 0] - (2.25 + step * (bins + 0.5))).abs().max()) > 1e-3


def test_stratified_deterministic_modes():
    a = stratified_depths(1, 3, 4, 2.0, 3.0, generator=seeded_generator(7))
    b = stratified_depths(1, 3, 4, 2.0, 3.0, generator=seeded_generator(7))
    assert torch.equal(a, b)
    centres = stratified_depths(1, 1, 4, 2.0, 3.0, perturb=False)
    assert_close(centres[0, 0, :, 0], torch.tensor([2.125, 2.375, 2.625, 2.875]), name="bin centres")
    with pytest.raises(ValueError, match="ray_start < ray_end"):
        stratified_depths(1, 1, 4, 3.0, 2.0)


def test_smooth_weights_widens_a_peak():
    w = torch.zeros(1, 1, 7, 1)
    w[0, 0, 3] = 1.0
    s = smooth_weights(w, floor=0.0)[0, 0, :, 0]
    assert_close(s, torch.tensor([0, 0, 0.5, 1.0, 0.5, 0, 0]), name="max-pool 2 + avg-pool 2")
    assert_close(smooth_weights(w)[0, 0, 0, 0], torch.tensor(0.01), name="floor")


@pytest.mark.parametrize("det", [False, True])
def test_importance_concentrates_on_a_delta_weight(det):
    depths = stratified_depths(2, 3, 16, 2.25, 3.3, perturb=False)
    weights = torch.zeros(2, 3, 15, 1)
    weights[:, :, 6] = 1.0
    fine = importance_depths(depths, weights, 64, smooth=False, floor=0.0, det=det, generator=seeded_generator(1))
    assert fine.shape == (2, 3, 64, 1)
    lo, hi = depths[:, :, 6:7], depths[:, :, 7:8]
    inside = ((fine >= lo) & (fine <= hi)).float().mean()
    assert float(inside) >= 0.9
    assert bool((fine[:, :, 1:] >= fine[:, :, :-1]).all())


def test_importance_with_smoothing_stays_near_the_peak():
    depths = stratified_depths(1, 4, 24, 2.25, 3.3, perturb=False)
    weights = torch.zeros(1, 4, 23, 1)
    weights[:, :, 10] = 1.0
    fine = importance_depths(depths, weights, 200, generator=seeded_generator(3))
    # Smoothed mass: 2 on intervals 9..11 against 0.01 * 23 elsewhere -> about 89.7 %.
    lo, hi = depths[:, :, 9:10], depths[:, :, 12:13]
    inside = float(((fine >= lo) & (fine <= hi)).float().mean())
    assert 0.8 <= inside <= 0.97
    assert float(fine.min()) >= 2.25 and float(fine.max()) <= 3.3


def test_importance_uniform_weights_are_spread_and_detached():
    depths = stratified_depths(1, 1, 5, 2.0, 3.0, perturb=False).requires_grad_(True)
    weights = torch.ones(1, 1, 4, 1, requires_grad=True)
    fine = importance_depths(depths, weights, 4, smooth=False, floor=0.0, det=True)
    assert not fine.requires_grad
    # Quantiles 1/8, 3/8, 5/8, 7/8 of a uniform density over [2.1, 2.9].
    assert_close(fine[0, 0, :, 0], torch.tensor([2.2, 2.4, 2.6, 2.8]), atol=1e-4, name="uniform quantiles")
    with pytest.raises(ShapeError, match="weights"):
        importance_depths(depths, torch.ones(1, 1, 5, 1), 4)


def test_disparity_space_stratification():
    d = stratified_depths(1, 2, 6, 2.0, 4.0, disparity_space=True)
    assert float(d.min()) >= 2.0 and float(d.max()) <= 4.0
    assert bool((d[:, :, 1:] >= d[:, :, :-1]).all())
    centres = stratified_depths(1, 1, 2, 2.0, 4.0, perturb=False, disparity_space=True)[0, 0, :, 0]
    # Bin centres at t = 1/4, 3/4 of the disparity range 1/2 -> 1/4.
    assert_close(centres, 1.0 / torch.tensor([0.5 - 0.0625, 0.5 - 0.1875]), name="disparity centres")
    # Denser near the camera: the first gap is smaller than the last.
    c = stratified_depths(1, 1, 8, 2.0, 4.0, perturb=False, disparity_space=True)[0, 0, :, 0]
    assert float(c[1] - c[0]) < float(c[-1] - c[-2])
