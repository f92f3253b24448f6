import math

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close
from next3d.networks.layers import Conv2dLayer, FullyConnectedLayer, modulated_conv2d, normalize_2nd_moment
from torch_utils.misc import ShapeError


def test_fully_connected_equalised_lr():
    fc = FullyConnectedLayer(6, 4, lr_multiplier=0.01, bias_init=1.0)
    x = torch.randn(3, 6)
    w = fc.weight * 0.01 / math.sqrt(6)
    assert_close(fc(x), x @ w.t() + fc.bias * 0.01, name="linear")
    # Stored weights are scaled by 1/lr_mul so the effective weights have unit-variance init / sqrt(I).
    assert 50 < fc.weight.std().item() < 200
    fc2 = FullyConnectedLayer(6, 4, activation="lrelu")
    y = x @ (fc2.weight / math.sqrt(6)).t()
    assert_close(fc2(x), F.leaky_relu(y, 0.2) * math.sqrt(2), name="lrelu")
    assert "in_features=6, out_features=4, activation=lrelu" in repr(fc2)


def test_fully_connected_rejects_bad_input():
    with pytest.raises(ShapeError, match=r"expected shape \(\*, 6\)"):
        FullyConnectedLayer(6, 4)(torch.randn(3, 5))
    with pytest.raises(ValueError, match="unknown 'gelu2'"):
        FullyConnectedLayer(6, 4, activation="gelu2")


def test_conv2d_layer_matches_torch_conv_and_resamples():
    conv = Conv2dLayer(3, 5, 3, activation="linear")
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 3, 8, 8)
    ref = F.conv2d(x, conv.weight / math.sqrt(3 * 9), conv.bias, padding=1)
    assert_close(conv(x), ref, rtol=1e-4, atol=1e-5, name="conv")
    assert Conv2dLayer(3, 5, 3, down=2)(x).shape == (2, 5, 4, 4)
    assert Conv2dLayer(3, 5, 3, up=2)(x).shape == (2, 5, 16, 16)
    clamped = Conv2dLayer(3, 5, 3, conv_clamp=0.1)(x * 100)
    assert clamped.abs().max() <= 0.1 + 1e-6
    assert "down=1" in repr(conv) and conv.resample_filter.shape == (4, 4)
    with pytest.raises(ValueError, match="at most one"):
        Conv2dLayer(3, 5, 3, up=2, down=2)


def test_modulated_conv_fused_equals_unfused_and_demodulates():
    torch.manual_seed(1)
    x, weight = torch.randn(3, 4, 8, 8), torch.randn(6, 4, 3, 3)
    styles, noise = torch.randn(3, 4), torch.randn(3, 1, 8, 8)
    for up in (1, 2):
        f = torch.tensor([[1.0, 3, 3, 1]]).t() @ torch.tensor([[1.0, 3, 3, 1]]) / 64
        kw = dict(up=up, padding=1, resample_filter=f, flip_weight=(up == 1))
        fused = modulated_conv2d(x, weight, styles, fused_modconv=True, **kw)
        unfused = modulated_conv2d(x, weight, styles, fused_modconv=False, **kw)
        assert fused.shape == (3, 6, 8 * up, 8 * up)
        assert_close(fused, unfused, rtol=1e-4, atol=1e-4, name=f"up={up}")
    # With demodulation the output is invariant to the scale of the styles (per sample).
    a = modulated_conv2d(x, weight, styles, padding=1)
    b = modulated_conv2d(x, weight, styles * torch.tensor([[2.0], [5.0], [0.3]]), padding=1)
    assert_close(a, b, rtol=1e-4, atol=1e-4, name="scale invariance")
    # Noise is added after demodulation in both paths.
    assert_close(modulated_conv2d(x, weight, styles, noise=noise, padding=1, fused_modconv=False), a + noise,
                 rtol=1e-4, atol=1e-4, name="noise")
    with pytest.raises(ShapeError, match="styles"):
        modulated_conv2d(x, weight, torch.randn(3, 5))


def test_normalize_2nd_moment():
    x = torch.randn(4, 7) * 5
    assert_close(normalize_2nd_moment(x).square().mean(dim=1), torch.ones(4), rtol=1e-4, atol=1e-4, name="rms")
