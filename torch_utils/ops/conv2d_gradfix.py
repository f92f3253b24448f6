"""`conv2d` / `conv_transpose2d` whose backward is itself differentiable, for R1 penalties.

Same signatures and results as `torch.nn.functional.conv2d` / `conv_transpose2d`
(input (N, C_in, H, W), weight (C_out, C_in/groups, kh, kw) for conv2d and
(C_in, C_out/groups, kh, kw) for conv_transpose2d). The gradient w.r.t. the input is the
transposed op built from the same autograd Function, and the gradient w.r.t. the weight
is a Function whose own backward is expressed with these ops, so gradients of any order
flow through both.

`no_weight_gradients()` skips weight gradients inside its block: the R1 pass
(``autograd.grad(D(x).sum(), x, create_graph=True)``) needs only input gradients, which
saves a weight-gradient convolution per layer. The switch is a counter private to this
module, changed only by the context manager (not thread-local: on CUDA the autograd
engine runs backward on its own worker threads, which must see the switch).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Tuple

import torch
import torch.nn.functional as F

from torch_utils.misc import ShapeError

_skip_lock = threading.Lock()
_skip_weight_grads = 0  # > 0 while inside no_weight_gradients(); only the context manager changes it


@contextlib.contextmanager
def no_weight_gradients(disable: bool = True):
    """Within this block, backward passes through these convolutions skip weight gradients.

    `disable=False` makes the block a no-op (handy for ``with no_weight_gradients(do_r1):``).
    """
    global _skip_weight_grads
    if not disable:
        yield
        return
    with _skip_lock:
        _skip_weight_grads += 1
    try:
        yield
    finally:
        with _skip_lock:
            _skip_weight_grads -= 1


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Like `torch.nn.functional.conv2d`, with a differentiable backward."""
    return _conv(False, input, weight, bias, stride, padding, 0, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Like `torch.nn.functional.conv_transpose2d`, with a differentiable backward."""
    return _conv(True, input, weight, bias, stride, padding, output_padding, dilation, groups)


def _pair(v, name: str) -> Tuple[int, int]:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(e, int) for e in v):
        return (int(v[0]), int(v[1]))
    raise ValueError(f"conv2d_gradfix: {name} must be an int or a pair of ints, got {v!r}")


def _conv(transpose, input, weight, bias, stride, padding, output_padding, dilation, groups):
    op = "conv_transpose2d" if transpose else "conv2d"
    if not isinstance(input, torch.Tensor) or input.ndim != 4:
        raise ShapeError(f"{op}: input must be a 4-D tensor (N, C, H, W), got {getattr(input, 'shape', type(input))}")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise ShapeError(f"{op}: weight must be a 4-D tensor, got {getattr(weight, 'shape', type(weight))}")
    if isinstance(padding, str):
        raise ValueError(f"{op}: string padding ({padding!r}) is not supported; give the pixels")
    key = (
        transpose,
        tuple(int(s) for s in weight.shape),
        _pair(stride, "stride"),
        _pair(padding, "padding"),
        _pair(output_padding, "output_padding"),
        _pair(dilation, "dilation"),
        int(groups),
    )
    return _conv_function(*key).apply(input, weight, bias)


@functools.lru_cache(maxsize=None)
def _conv_function(transpose, weight_shape, stride, padding, output_padding, dilation, groups):
    """The autograd Function for one convolution setting (built once, cached)."""
    common = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    kh, kw = weight_shape[2], weight_shape[3]

    def run(x, w, b=None):
        if transpose:
            return F.conv_transpose2d(x, w, b, output_padding=output_padding, **common)
        return F.conv2d(x, w, b, **common)

    def input_grad_op(input_shape, grad_shape):
        """The Function mapping an output gradient back to the input space (the transposed op)."""
        if transpose:
            return _conv_function(False, weight_shape, stride, padding, (0, 0), dilation, groups)
        # conv_transpose2d needs output_padding to reach the input size exactly.
        op = tuple(
            input_shape[i + 2]
            - ((grad_shape[i + 2] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (k - 1) + 1)
            for i, k in enumerate((kh, kw))
        )
        return _conv_function(True, weight_shape, stride, padding, op, dilation, groups)

    class Conv(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, w, b):
            ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, w if ctx.needs_input_grad[0] else None)
            ctx.x_shape = tuple(x.shape)
            return run(x, w, b)

        @staticmethod
        def backward(ctx, dy):
            x, w = ctx.saved_tensors
            dx = dw = db = None
            if ctx.needs_input_grad[0]:
                dx = input_grad_op(ctx.x_shape, dy.shape).apply(dy, w, None)
            if ctx.needs_input_grad[1] and _skip_weight_grads == 0:
                dw = ConvWeightGrad.apply(dy, x)
            if ctx.needs_input_grad[2]:
                db = dy.sum([0, 2, 3])
            return dx, dw, db

    class ConvWeightGrad(torch.autograd.Function):
        """dw = the weight gradient of `run` for output gradient dy and input x (bilinear in both)."""

        @staticmethod
        def forward(ctx, dy, x):
            w_dummy = torch.empty(weight_shape, dtype=x.dtype, device=x.device)
            dw = torch.ops.aten.convolution_backward(
                dy, x, w_dummy, None, list(stride), list(padding), list(dilation), transpose,
                list(output_padding), groups, [False, True, False],
            )[1]
            ctx.save_for_backward(dy, x)
            return dw

        @staticmethod
        def backward(ctx, d_dw):
            dy, x = ctx.saved_tensors
            d_dy = d_x = None
            if ctx.needs_input_grad[0]:
                d_dy = Conv.apply(x, d_dw, None)  # linear in the weight
            if ctx.needs_input_grad[1]:
                d_x = input_grad_op(tuple(x.shape), dy.shape).apply(dy, d_dw, None)
            return d_dy, d_x

    return Conv
