"""Fused multiply-add ``a * b + c`` with broadcasting, as one autograd node.

`a`, `b`, `c` are tensors that broadcast together (e.g. modulated-conv weights
(N, O, I, k, k) * styles (N, 1, I, 1, 1) + ...). The forward uses `torch.addcmul`
(one kernel, no temporary for ``a * b``); the backward sums each gradient back down to
its input's shape, and is written in differentiable torch ops, so double backward works.
"""

from __future__ import annotations

import torch

from torch_utils.misc import ShapeError


def fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Return ``a * b + c`` (broadcast shape of a, b, c) with gradients summed to each input's shape."""
    for name, t in (("a", a), ("b", b), ("c", c)):
        if not isinstance(t, torch.Tensor):
            raise ShapeError(f"fma: {name} must be a torch.Tensor, got {type(t).__name__}")
    try:
        torch.broadcast_shapes(a.shape, b.shape, c.shape)
    except RuntimeError:
        raise ShapeError(
            f"fma: shapes do not broadcast: a {tuple(a.shape)}, b {tuple(b.shape)}, c {tuple(c.shape)}"
        ) from None
    return _FusedMultiplyAdd.apply(a, b, c)


def _unbroadcast(x: torch.Tensor, shape) -> torch.Tensor:
    """Sum `x` over the dimensions that broadcasting expanded, giving `shape`."""
    extra = x.ndim - len(shape)
    if extra < 0:
        raise AssertionError(f"cannot unbroadcast {tuple(x.shape)} to {tuple(shape)}")
    dims = [i for i in range(x.ndim) if i < extra or (shape[i - extra] == 1 and x.shape[i] > 1)]
    if dims:
        x = x.sum(dim=dims, keepdim=True)
    return x.reshape(shape)


class _FusedMultiplyAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, c):
        out = torch.addcmul(c, a, b)
        ctx.save_for_backward(a, b)
        ctx.c_shape = c.shape
        return out

    @staticmethod
    def backward(ctx, dout):
        a, b = ctx.saved_tensors
        da = db = dc = None
        if ctx.needs_input_grad[0]:
            da = _unbroadcast(dout * b, a.shape)
        if ctx.needs_input_grad[1]:
            db = _unbroadcast(dout * a, b.shape)
        if ctx.needs_input_grad[2]:
            dc = _unbroadcast(dout, ctx.c_shape)
        return da, db, dc
