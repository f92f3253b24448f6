"""Bilinear `grid_sample` whose backward is differentiable w.r.t. input and grid.

`grid_sample(input, grid)` equals ``torch.nn.functional.grid_sample(input, grid,
mode='bilinear', padding_mode='zeros', align_corners=False)``: input (N, C, H, W),
grid (N, Ho, Wo, 2) holding (x, y) in [-1, 1] (x along W, y along H; -1 and 1 are the
outer edges of the corner pixels), output (N, C, Ho, Wo); samples outside are zero.

torch's own backward (`grid_sampler_2d_backward`) has no derivative, so R1 and the
density regulariser, whose gradients reach tri-plane sampling, could not take a second
derivative through it. Here the first backward uses torch's fast kernel when no graph
is being built, and otherwise re-expresses bilinear sampling as gathers and products
(`_grid_sample_ref`) and differentiates that, so derivatives of any order exist.
The second derivative of bilinear interpolation w.r.t. the grid is piecewise (zero
along each axis inside a cell, non-zero across x and y), exactly as the formula says.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from torch_utils.misc import ShapeError


def _check(input, grid):
    if not isinstance(input, torch.Tensor) or input.ndim != 4:
        raise ShapeError(f"grid_sample: input must be a 4-D tensor (N, C, H, W), got {getattr(input, 'shape', type(input))}")
    if not isinstance(grid, torch.Tensor) or grid.ndim != 4 or grid.shape[-1] != 2:
        raise ShapeError(f"grid_sample: grid must have shape (N, Ho, Wo, 2), got {getattr(grid, 'shape', type(grid))}")
    if grid.shape[0] != input.shape[0]:
        raise ShapeError(
            f"grid_sample: grid batch {grid.shape[0]} must equal input batch {input.shape[0]} "
            f"(input {tuple(input.shape)}, grid {tuple(grid.shape)})"
        )
    if not input.is_floating_point() or input.dtype != grid.dtype:
        raise ShapeError(f"grid_sample: input and grid must share a floating dtype, got {input.dtype} and {grid.dtype}")
    if input.device != grid.device:
        raise ShapeError(f"grid_sample: input is on {input.device} but grid is on {grid.device}")


def grid_sample(input: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear, zero-padded, align_corners=False sampling of `input` at `grid` (see module docstring)."""
    _check(input, grid)
    return _GridSample2d.apply(input, grid)


def _grid_sample_ref(input: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling written with gathers, differentiable to any order by autograd."""
    _check(input, grid)
    n, c, h, w = input.shape
    _, ho, wo, _ = grid.shape
    # align_corners=False: -1 -> -0.5 (outer edge of pixel 0), 1 -> size - 0.5.
    px = ((grid[..., 0] + 1) * w - 1) / 2
    py = ((grid[..., 1] + 1) * h - 1) / 2
    x0 = torch.floor(px.detach())
    y0 = torch.floor(py.detach())
    tx = px - x0
    ty = py - y0
    flat = input.reshape(n, c, h * w)
    out = input.new_zeros(n, c, ho * wo)
    for dy_, wy in ((0, 1 - ty), (1, ty)):
        for dx_, wx in ((0, 1 - tx), (1, tx)):
            xi = x0 + dx_
            yi = y0 + dy_
            valid = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
            idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long().reshape(n, 1, ho * wo)
            vals = flat.gather(2, idx.expand(n, c, ho * wo))
            weight = (wx * wy * valid.to(input.dtype)).reshape(n, 1, ho * wo)
            out = out + vals * weight
    return out.reshape(n, c, ho, wo)


class _GridSample2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, grid):
        ctx.save_for_backward(input, grid)
        return F.grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    @staticmethod
    def backward(ctx, grad_output):
        input, grid = ctx.saved_tensors
        need_input, need_grid = ctx.needs_input_grad[:2]
        if not torch.is_grad_enabled():
            # Plain first-order backward: torch's kernel (interpolation 0 = bilinear, padding 0 = zeros).
            grad_input, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
                grad_output, input, grid, 0, 0, False, [need_input, need_grid]
            )
            return (grad_input if need_input else None), (grad_grid if need_grid else None)
        # create_graph=True: differentiate the gather formulation so the result has a graph.
        with torch.enable_grad():
            inp = input if input.requires_grad else input.detach().requires_grad_(need_input)
            grd = grid if grid.requires_grad else grid.detach().requires_grad_(need_grid)
            out = _grid_sample_ref(inp, grd)
            wanted = [t for t, need in ((inp, need_input), (grd, need_grid)) if need]
            grads = list(torch.autograd.grad(out, wanted, grad_output, create_graph=True, allow_unused=True))
        grad_input = grads.pop(0) if need_input else None
        grad_grid = grads.pop(0) if need_grid else None
        if grad_input is None and need_input:
            grad_input = torch.zeros_like(input)
        if grad_grid is None and need_grid:
            grad_grid = torch.zeros_like(grid)
        return grad_input, grad_grid
