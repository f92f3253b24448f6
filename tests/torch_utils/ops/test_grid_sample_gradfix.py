"""grid_sample_gradfix: equals torch's grid_sample (values, gradients) and has a correct double backward."""

import pytest
import torch
import torch.nn.functional as F

from helpers import DEVICES, assert_close
from torch_utils.misc import ShapeError
from torch_utils.ops import grid_sample_gradfix


def _inputs(device, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=dtype).to(device).requires_grad_()
    # Some samples fall outside [-1, 1] to exercise the zero padding.
    grid = (torch.rand(2, 4, 3, 2, generator=g, dtype=dtype) * 2.4 - 1.2).to(device).requires_grad_()
    return x, grid


def _torch(x, grid):
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@pytest.mark.parametrize("device", DEVICES)
def test_forward_and_first_derivatives_match_torch(device):
    x, grid = _inputs(device)
    u = torch.randn(2, 3, 4, 3, dtype=torch.float64).to(device)
    ref = _torch(x, grid)
    got = grid_sample_gradfix.grid_sample(x, grid)
    assert_close(got, ref, rtol=1e-12, atol=1e-12, name="y")
    assert_close(grid_sample_gradfix._grid_sample_ref(x, grid), ref, rtol=1e-12, atol=1e-12, name="gather form")
    r = torch.autograd.grad((ref * u).sum(), [x, grid])
    c = torch.autograd.grad((got * u).sum(), [x, grid])
    assert_close(c[0], r[0], rtol=1e-10, atol=1e-10, name="dx")
    assert_close(c[1], r[1], rtol=1e-10, atol=1e-10, name="dgrid")
    # With create_graph the differentiable path must give the same first derivatives.
    c2 = torch.autograd.grad((grid_sample_gradfix.grid_sample(x, grid) * u).sum(), [x, grid], create_graph=True)
    assert_close(c2[0], r[0], rtol=1e-10, atol=1e-10, name="dx (graph)")
    assert_close(c2[1], r[1], rtol=1e-10, atol=1e-10, name="dgrid (graph)")


def test_double_backward_gradgradcheck():
    x, grid = _inputs("cpu", seed=2)
    # Keep grid points away from pixel-cell borders, where bilinear sampling has kinks
    # that finite differences would straddle.
    with torch.no_grad():
        px = ((grid[..., 0] + 1) * 6 - 1) / 2
        py = ((grid[..., 1] + 1) * 5 - 1) / 2
        px = torch.floor(px) + 0.25 + 0.5 * torch.frac(px)
        py = torch.floor(py) + 0.25 + 0.5 * torch.frac(py)
        grid[..., 0] = (2 * px + 1) / 6 - 1
        grid[..., 1] = (2 * py + 1) / 5 - 1
    assert torch.autograd.gradgradcheck(grid_sample_gradfix.grid_sample, (x, grid), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_r1_style_penalty_reaches_input_and_grid(device):
    x, grid = _inputs(device, seed=3)
    y = grid_sample_gradfix.grid_sample(x, grid)
    (gx,) = torch.autograd.grad(y.square().sum(), [x], create_graph=True)
    d_x, d_grid = torch.autograd.grad(gx.square().sum(), [x, grid])
    assert float(d_x.abs().sum()) > 0 and float(d_grid.abs().sum()) > 0
    # torch's own op cannot do this (its backward has no derivative w.r.t. grid).
    (gx_t,) = torch.autograd.grad(_torch(x, grid).square().sum(), [x], create_graph=True)
    assert_close(gx, gx_t, rtol=1e-10, atol=1e-10, name="first derivative")


def test_bad_inputs():
    x = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ShapeError, match=r"grid must have shape \(N, Ho, Wo, 2\)"):
        grid_sample_gradfix.grid_sample(x, torch.zeros(2, 4, 4, 3))
    with pytest.raises(ShapeError, match="grid batch 1 must equal input batch 2"):
        grid_sample_gradfix.grid_sample(x, torch.zeros(1, 4, 4, 2))
    with pytest.raises(ShapeError, match="input must be a 4-D tensor"):
        grid_sample_gradfix.grid_sample(x[0], torch.zeros(2, 4, 4, 2))
    with pytest.raises(ShapeError, match="share a floating dtype"):
        grid_sample_gradfix.grid_sample(x, torch.zeros(2, 4, 4, 2, dtype=torch.float64))
