"""conv2d_gradfix: values, gradients and double backward equal plain torch's; no_weight_gradients."""

import pytest
import torch
import torch.nn.functional as F

from helpers import DEVICES, assert_close
from torch_utils.misc import ShapeError
from torch_utils.ops import conv2d_gradfix

SETTINGS = [
    # transpose, in shape, weight shape, stride, padding, output_padding, dilation, groups
    (False, (2, 4, 7, 6), (5, 4, 3, 3), 1, 1, 0, 1, 1),
    (False, (2, 4, 9, 8), (6, 2, 3, 2), 2, (1, 0), 0, 1, 2),
    (False, (1, 3, 9, 9), (2, 3, 3, 3), 1, 2, 0, 2, 1),
    (True, (2, 4, 5, 6), (4, 3, 3, 3), 2, 0, 1, 1, 1),
    (True, (2, 4, 5, 5), (4, 2, 4, 4), 2, 1, 0, 1, 2),
]


def _run(fn_conv, fn_convt, setting, x, w, b):
    transpose, _, _, stride, padding, output_padding, dilation, groups = setting
    if transpose:
        return fn_convt(x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                        dilation=dilation)
    return fn_conv(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("idx", range(len(SETTINGS)))
def test_matches_torch_to_second_order(device, idx):
    setting = SETTINGS[idx]
    g = torch.Generator().manual_seed(idx)
    x = torch.randn(setting[1], generator=g, dtype=torch.float64).to(device).requires_grad_()
    w = torch.randn(setting[2], generator=g, dtype=torch.float64).to(device).requires_grad_()
    out_ch = setting[2][1] * setting[7] if setting[0] else setting[2][0]
    b = torch.randn(out_ch, generator=g, dtype=torch.float64).to(device).requires_grad_()
    results = []
    for conv, convt in ((F.conv2d, F.conv_transpose2d), (conv2d_gradfix.conv2d, conv2d_gradfix.conv_transpose2d)):
        y = _run(conv, convt, setting, x, w, b)
        u = torch.randn(y.shape, generator=torch.Generator().manual_seed(3), dtype=y.dtype).to(device)
        gx, gw, gb = torch.autograd.grad((y * u).sum() + (y ** 2).sum(), [x, w, b], create_graph=True)
        # An R1-like penalty: differentiate the gradient's norm w.r.t. the weight and input.
        g2 = torch.autograd.grad((gx ** 2).sum() + (gw ** 2).sum() + (gb ** 2).sum(), [x, w, b])
        results.append((y, gx, gw, gb, *g2))
    for name, r, c in zip(("y", "dx", "dw", "db", "d2x", "d2w", "d2b"), *results):
        assert_close(c, r, rtol=1e-9, atol=1e-9, name=name)
    assert float(results[0][4].abs().sum()) > 0  # the second derivative is really non-zero


def test_gradcheck_double_backward():
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, b: conv2d_gradfix.conv2d(a, b, padding=1, stride=2), (x, w))
    wt = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(
        lambda a, b: conv2d_gradfix.conv_transpose2d(a, b, stride=2, output_padding=1), (x, wt))


def test_no_weight_gradients():
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    y = conv2d_gradfix.conv2d(x, w, padding=1)
    with conv2d_gradfix.no_weight_gradients():
        gx, gw = torch.autograd.grad(y.sum(), [x, w], allow_unused=True, retain_graph=True)
    assert gw is None
    assert_close(gx, torch.autograd.grad(F.conv2d(x, w, padding=1).sum(), [x])[0], name="dx")
    with conv2d_gradfix.no_weight_gradients(disable=False):
        gw = torch.autograd.grad(y.sum(), [w], retain_graph=True)[0]
    assert gw is not None and gw.shape == w.shape
    # Outside the block, weight gradients are back (the switch is scoped, not global).
    assert torch.autograd.grad(y.sum(), [w])[0] is not None


def test_bad_inputs():
    with pytest.raises(ShapeError, match="input must be a 4-D tensor"):
        conv2d_gradfix.conv2d(torch.zeros(2, 3, 4), torch.zeros(1, 2, 1, 1))
    with pytest.raises(ShapeError, match="weight must be a 4-D tensor"):
        conv2d_gradfix.conv2d(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 1))
    with pytest.raises(ValueError, match="string padding"):
        conv2d_gradfix.conv2d(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 1, 1), padding="same")
