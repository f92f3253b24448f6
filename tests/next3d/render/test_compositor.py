import math

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close
from next3d.render.compositor import composite
from torch_utils.misc import ShapeError


def _depths(samples, start=2.0, end=3.0, batch=1, rays=1):
    return torch.linspace(start, end, samples).reshape(1, 1, samples, 1).expand(batch, rays, samples, 1)


def test_constant_density_slab_matches_analytic_transmittance():
    s, sigma = 11, 2.0
    depths = _depths(s)
    dens = torch.full((1, 1, s, 1), sigma)
    feats = torch.ones(1, 1, s, 3)
    out = composite(feats, dens, depths, density_activation="none")
    assert out.weights.shape == (1, 1, s - 1, 1)
    total = float(out.weights.sum())
    assert abs(total - (1 - math.exp(-sigma * 1.0))) < 1e-6
    # Transmittance before interval k is exp(-sigma * 0.1 * k).
    trans = torch.exp(-sigma * 0.1 * torch.arange(s - 1.0))
    assert_close(out.weights[0, 0, :, 0], trans * (1 - math.exp(-sigma * 0.1)), name="weights")
    assert_close(out.features[0, 0], torch.full((3,), total), name="colour = opacity for white samples")
    # Expected depth of the truncated exponential, on interval midpoints.
    mids = 2.05 + 0.1 * torch.arange(s - 1.0)
    expect = float((out.weights[0, 0, :, 0] * mids).sum()) / total
    assert abs(float(out.depth) - expect) < 1e-6 and 2.05 < expect < 2.5


def test_zero_density_gives_zero_weights_and_far_depth():
    out = composite(torch.rand(2, 3, 6, 4), torch.zeros(2, 3, 6, 1), _depths(6, batch=2, rays=3), "none")
    assert float(out.weights.abs().max()) == 0.0
    assert float(out.features.abs().max()) == 0.0
    assert_close(out.depth, torch.full((2, 3, 1), 3.0), name="empty rays end at the far bound")
    white = composite(torch.rand(2, 3, 6, 4), torch.zeros(2, 3, 6, 1), _depths(6, batch=2, rays=3), "none",
                      white_back=True)
    assert_close(white.features, torch.ones(2, 3, 4), name="white background")


def test_opaque_first_sample():
    s = 8
    depths = _depths(s)
    dens = torch.zeros(1, 1, s, 1)
    dens[0, 0, 0] = 1e4  # the first interval's mean density is 5e3: opaque
    feats = torch.rand(1, 1, s, 3)
    out = composite(feats, dens, depths, "none")
    one_hot = torch.zeros(s - 1)
    one_hot[0] = 1.0
    assert_close(out.weights[0, 0, :, 0], one_hot, atol=1e-6, name="one-hot weights")
    assert abs(float(out.depth) - float(depths[0, 0, :2].mean())) < 1e-5
    assert_close(out.features[0, 0], 0.5 * (feats[0, 0, 0] + feats[0, 0, 1]), name="first interval colour")


def test_softplus_activation_shifts_raw_sigma():
    s = 5
    raw = torch.randn(1, 2, s, 1)
    depths, feats = _depths(s, rays=2), torch.rand(1, 2, s, 2)
    a = composite(feats, raw, depths)  # default: softplus(sigma - 1) of the averaged raw sigma
    mid = 0.5 * (raw[:, :, 1:] + raw[:, :, :-1])
    alpha = 1 - torch.exp(-F.softplus(mid - 1) * 0.25)
    assert_close(a.weights[0, 0, 0], alpha[0, 0, 0], name="first weight = first alpha")
    assert bool((a.weights >= 0).all()) and float(a.weights.sum(2).max()) <= 1.0


def test_gradients_and_errors():
    feats = torch.rand(1, 2, 4, 3, requires_grad=True)
    dens = torch.randn(1, 2, 4, 1, requires_grad=True)
    out = composite(feats, dens, _depths(4, rays=2))
    (out.features.sum() + out.depth.sum()).backward()
    assert float(feats.grad.abs().sum()) > 0 and float(dens.grad.abs().sum()) > 0
    with pytest.raises(ShapeError, match="densities"):
        composite(torch.rand(1, 2, 4, 3), torch.rand(1, 2, 4, 2), _depths(4, rays=2))
    with pytest.raises(ValueError, match="density_activation"):
        composite(torch.rand(1, 2, 4, 3), torch.rand(1, 2, 4, 1), _depths(4, rays=2), "relu")


def test_density_shift():
    raw = torch.zeros(1, 1, 3, 1)
    depths, feats = _depths(3), torch.ones(1, 1, 3, 1)
    w0 = composite(feats, raw, depths, density_shift=0.0).weights[0, 0, 0, 0]
    w1 = composite(feats, raw, depths).weights[0, 0, 0, 0]
    assert abs(float(w0) - (1 - math.exp(-math.log(2.0) * 0.5))) < 1e-6  # softplus(0) = ln 2
    assert abs(float(w1) - (1 - math.exp(-math.log1p(math.exp(-1.0)) * 0.5))) < 1e-6


def test_depth_clamp_uses_all_rays_like_eg3d():
    """EG3D clamps the composite depth to min/max of the whole depths tensor, not per ray."""
    depths = torch.stack([torch.linspace(2.0, 2.5, 4), torch.linspace(2.6, 3.2, 4)]).reshape(1, 2, 4, 1)
    empty = composite(torch.zeros(1, 2, 4, 1), torch.zeros(1, 2, 4, 1), depths, "none")
    # Both empty rays take the largest depth of ALL samples (3.2), also the ray ending at 2.5.
    assert_close(empty.depth, torch.full((1, 2, 1), 3.2), name="empty rays -> global max")
    dens = torch.zeros(1, 2, 4, 1)
    dens[0, 1, :2] = 1e4  # ray 1 opaque in its first interval: depth 2.7, inside the global range
    out = composite(torch.zeros(1, 2, 4, 1), dens, depths, "none")
    assert abs(float(out.depth[0, 1, 0]) - 2.7) < 1e-5
    assert abs(float(out.depth[0, 0, 0]) - 3.2) < 1e-6
