"""conv2d_resample: the fast paths equal the plain definition (upsample, pad, convolve, downsample)."""

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close
from torch_utils.misc import ShapeError
from torch_utils.ops import conv2d_resample, upfirdn2d


def _definition(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    """Upsample with zero insertion + filter (gain up^2), pad, convolve, downsample with the filter."""
    fw, fh = upfirdn2d._get_filter_size(f)
    px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    x = upfirdn2d._upfirdn2d_ref(x, f if up > 1 else None, up=up, padding=[px0, px1, py0, py1], gain=up ** 2,
                                 flip_filter=flip_filter)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
    if down > 1:
        x = upfirdn2d._upfirdn2d_ref(x, f, down=down, flip_filter=flip_filter)
    return x


CASES = [
    # kernel, up, down, padding, groups, flip_weight
    (3, 1, 1, 1, 1, True),
    (3, 2, 1, 1, 1, False),  # StyleGAN2 upsampling conv: transposed convolution path
    (3, 1, 2, 1, 1, True),  # strided downsampling conv
    (1, 2, 1, 0, 1, True),  # 1x1 then upsample
    (1, 1, 2, 0, 1, True),  # downsample then 1x1
    (3, 2, 1, 1, 2, False),  # grouped transposed (modulated conv with fused batch)
    (3, 2, 2, 1, 1, True),  # up and down
    (3, 1, 1, [2, 0, 1, 1], 1, True),  # asymmetric padding: generic path
]


@pytest.mark.parametrize("idx", range(len(CASES)))
def test_matches_definition(idx):
    k, up, down, padding, groups, flip_weight = CASES[idx]
    g = torch.Generator().manual_seed(idx)
    x = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 4 // groups, k, k, generator=g, dtype=torch.float64, requires_grad=True)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    kw = dict(up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=False)
    ref = _definition(x, w, f, **kw)
    got = conv2d_resample.conv2d_resample(x, w, f, **kw)
    assert got.shape == ref.shape
    expect_hw = 8 * up // down
    if padding == 1 and k == 3 or padding == 0 and k == 1:
        assert got.shape[2:] == (expect_hw, expect_hw)
    assert_close(got, ref, rtol=1e-10, atol=1e-10, name="y")
    u = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    r = torch.autograd.grad((ref * u).sum(), [x, w])
    c = torch.autograd.grad((got * u).sum(), [x, w])
    assert_close(c[0], r[0], rtol=1e-10, atol=1e-10, name="dx")
    assert_close(c[1], r[1], rtol=1e-10, atol=1e-10, name="dw")


def test_double_backward_r1():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    results = []
    for fn in (_definition, conv2d_resample.conv2d_resample):
        y = fn(x, w, f, up=2, down=1, padding=1, groups=1, flip_weight=False, flip_filter=False)
        (gx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
        results.append(torch.autograd.grad(gx.square().sum(), [w])[0])
    assert_close(results[1], results[0], rtol=1e-9, atol=1e-9, name="d2w")


def test_bad_inputs():
    x = torch.zeros(1, 4, 8, 8)
    with pytest.raises(ShapeError, match="x has 4 channels but w"):
        conv2d_resample.conv2d_resample(x, torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="up must be an int >= 1"):
        conv2d_resample.conv2d_resample(x, torch.zeros(2, 4, 3, 3), up=0)
    with pytest.raises(ShapeError, match="w must be a 4-D tensor"):
        conv2d_resample.conv2d_resample(x, torch.zeros(2, 4, 3))
