"""Fused bias + activation + gain + clamp: ``y = clamp(act(x + b) * gain, -clamp, clamp)``.

Shapes: `x` is any floating tensor (typically (N, C, H, W) or (N, C)); `b` is a 1-D
tensor of length ``x.shape[dim]`` broadcast along every other dimension. The output has
the shape and dtype of `x`.

Semantics follow StyleGAN2-ADA / StyleGAN3 exactly, so published weights behave the
same. Activations and their default `alpha` / `gain`:

    linear 0 / 1      relu 0 / sqrt(2)    lrelu 0.2 / sqrt(2)   tanh 0 / 1
    sigmoid 0 / 1     elu 0 / 1           selu 0 / 1            softplus 0 / 1
    swish 0 / sqrt(2)

`alpha` only affects lrelu (its negative slope). `clamp=None` means no clamping.

Implementations (`impl`): 'ref' is plain PyTorch (`_bias_act_ref`); 'cpp' a C++ kernel
for float32/float64 CPU tensors; 'cuda' a CUDA kernel for float16/32/64 CUDA tensors;
'auto' takes the compiled one for the tensor's device and dtype when it is available
(built on first use through `torch_utils.custom_ops.load_op`) and
`custom_ops.auto_choice` prefers it on that device, else the reference. `inplace=True`
lets the forward write into `x` when autograd records nothing (inference); on the CPU
'auto' then runs the reference's in-place ATen ops, measured faster than the in-place kernel
(`custom_ops.AUTO_PREFERENCE`, entry 'bias_act_inplace'). Channels-last inputs stay
channels-last (the compiled kernel reads them as NHWC without a copy).
The compiled gradient is itself an autograd Function built from the same
kernel, so second derivatives (R1 penalties) work for tanh, sigmoid, elu, selu,
softplus and swish; for linear, relu and lrelu the second derivative is zero almost
everywhere and is returned as such.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import torch

from torch_utils import custom_ops
from torch_utils.misc import ShapeError, is_nhwc

_IMPLS = ("auto", "ref", "cpp", "cuda")


@dataclasses.dataclass(frozen=True)
class _Act:
    index: int  # the kernels' activation code (csrc/bias_act/bias_act.h)
    def_alpha: float
    def_gain: float
    needs_x: bool  # the compiled gradient reads the pre-activation input
    needs_y: bool  # the compiled gradient reads the output (relu-like: sign of y)
    has_2nd_grad: bool


ACTIVATIONS = {
    "linear": _Act(0, 0.0, 1.0, False, False, False),
    "relu": _Act(1, 0.0, math.sqrt(2), False, True, False),
    "lrelu": _Act(2, 0.2, math.sqrt(2), False, True, False),
    "tanh": _Act(3, 0.0, 1.0, True, False, True),
    "sigmoid": _Act(4, 0.0, 1.0, True, False, True),
    "elu": _Act(5, 0.0, 1.0, True, False, True),
    "selu": _Act(6, 0.0, 1.0, True, False, True),
    "softplus": _Act(7, 0.0, 1.0, True, False, True),
    "swish": _Act(8, 0.0, math.sqrt(2), True, False, True),
}

_COMPILED_DTYPES = {
    "cpu": (torch.float32, torch.float64),
    "cuda": (torch.float16, torch.float32, torch.float64),
}


_LOADERS = custom_ops.declare_op(
    "bias_act",
    cpu_sources=["bias_act/bias_act_cpu.cpp"],
    cuda_sources=["bias_act/bias_act_cuda.cpp", "bias_act/bias_act_cuda.cu"],
    headers=["bias_act/bias_act.h"],
)
_load_cpu, _load_cuda = _LOADERS["cpu"], _LOADERS["cuda"]


def _resolve(x, b, dim, act, alpha, gain, clamp, impl):
    """Validate the arguments; return (dim, spec, alpha, gain, clamp) with defaults filled in."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"bias_act: x must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ShapeError(f"bias_act: x must be a floating-point tensor, got dtype {str(x.dtype).replace('torch.', '')}")
    if act not in ACTIVATIONS:
        raise ValueError(f"bias_act: unknown activation {act!r}: expected one of {', '.join(ACTIVATIONS)}")
    if impl not in _IMPLS:
        raise ValueError(f"bias_act: impl={impl!r} is not understood: expected one of {', '.join(_IMPLS)}")
    if x.ndim == 0:
        raise ShapeError("bias_act: x must have at least one dimension, got a scalar")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"bias_act: dim={dim} is out of range for x of shape {tuple(x.shape)}")
    dim = dim % x.ndim
    if b is not None:
        if not isinstance(b, torch.Tensor):
            raise ShapeError(f"bias_act: b must be a torch.Tensor or None, got {type(b).__name__}")
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ShapeError(
                f"bias_act: b must have shape ({x.shape[dim]},) = x.shape[{dim}] for x of shape {tuple(x.shape)}, "
                f"got {tuple(b.shape)}"
            )
        if b.dtype != x.dtype or b.device != x.device:
            raise ShapeError(
                f"bias_act: b must match x in dtype and device ({x.dtype}, {x.device}), got ({b.dtype}, {b.device})"
            )
    spec = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else spec.def_alpha)
    gain = float(gain if gain is not None else spec.def_gain)
    if clamp is not None and not clamp >= 0:
        raise ValueError(f"bias_act: clamp must be None or >= 0, got {clamp}")
    clamp = float(clamp if clamp is not None else -1)
    return dim, spec, alpha, gain, clamp


def _apply_act(x: torch.Tensor, act: str, alpha: float) -> torch.Tensor:
    if act == "linear":
        return x
    if act == "relu":
        return torch.nn.functional.relu(x)
    if act == "lrelu":
        return torch.nn.functional.leaky_relu(x, alpha)
    if act == "tanh":
        return torch.tanh(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    if act == "elu":
        return torch.nn.functional.elu(x)
    if act == "selu":
        return torch.nn.functional.selu(x)
    if act == "softplus":
        return torch.nn.functional.softplus(x)
    if act == "swish":
        return torch.sigmoid(x) * x
    raise AssertionError(act)


def _bias_act_ref(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="ref"):
    """Pure-PyTorch twin of `bias_act` (same arguments; `impl` is ignored)."""
    dim, _spec, alpha, gain, clamp = _resolve(x, b, dim, act, alpha, gain, clamp, "ref")
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = _apply_act(x, act, alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def _compiled_module(impl: str, x: torch.Tensor, inplace: bool = False):
    """The compiled module to use for `x`, or None for the reference. 'auto' written in place
    has its own table entry, 'bias_act_inplace' (`custom_ops.AUTO_PREFERENCE`)."""
    dev = x.device.type
    if impl == "ref":
        return None
    if impl == "auto":
        if dev not in _LOADERS or x.dtype not in _COMPILED_DTYPES[dev]:
            return None
        if custom_ops.auto_choice("bias_act_inplace" if inplace else "bias_act", dev) != "compiled":
            return None
        return _LOADERS[dev]()
    want = "cpu" if impl == "cpp" else "cuda"
    if dev != want:
        raise ValueError(f"bias_act: impl={impl!r} needs a {want} tensor, got one on {x.device}")
    if x.dtype not in _COMPILED_DTYPES[want]:
        ok = ", ".join(str(d).replace("torch.", "") for d in _COMPILED_DTYPES[want])
        raise ValueError(f"bias_act: impl={impl!r} supports dtypes {ok}, got {str(x.dtype).replace('torch.', '')}")
    module = _LOADERS[want]()
    if module is None:
        status = custom_ops.statuses().get(f"bias_act_{want}")
        raise RuntimeError(f"bias_act: impl={impl!r} is unavailable: {status.reason if status else 'not built'}")
    return module


def _records_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _bias_act_inplace_ref(x, b, dim, act, alpha, gain, clamp):
    """`_bias_act_ref` written into `x` (no autograd); any memory layout."""
    if b is not None:
        x.add_(b.reshape([-1 if i == dim else 1 for i in range(x.ndim)]))
    if act == "lrelu":
        torch.nn.functional.leaky_relu_(x, alpha)
    elif act == "relu":
        x.relu_()
    elif act != "linear":
        x.copy_(_apply_act(x, act, alpha))
    if gain != 1:
        x.mul_(gain)
    if clamp >= 0:
        x.clamp_(-clamp, clamp)
    return x


def _nhwc(x: torch.Tensor, dim: int) -> bool:
    """x is a 4-D channels-last tensor with the bias along channels (not plain contiguous)."""
    return dim == 1 and is_nhwc(x)


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None, impl="auto", inplace=False):
    """Add bias `b` along `dim` of `x`, apply `act`, scale by `gain`, clamp to [-clamp, clamp].

    Args:
        x: floating tensor of any shape.
        b: None or 1-D tensor of length ``x.shape[dim]`` (same dtype and device as x).
        dim: the dimension of `x` that `b` runs along.
        act: one of `ACTIVATIONS`.
        alpha: lrelu negative slope (None: the activation's default).
        gain: output scale (None: the activation's default).
        clamp: None, or clamp the output to [-clamp, clamp].
        impl: 'auto' | 'ref' | 'cpp' | 'cuda' (see the module docstring).
        inplace: the caller allows `x` to be overwritten (its own temporary); honoured only
            when autograd records nothing and the compute policy allows it.

    Returns a tensor shaped like `x`, in x's memory layout (a channels-last `x` gives a
    channels-last result without a layout copy).
    """
    from torch_utils import compute_policy

    dim, spec, alpha, gain, clamp = _resolve(x, b, dim, act, alpha, gain, clamp, impl)
    inplace = bool(inplace) and compute_policy.current().inplace and not _records_grad(x, b)
    module = _compiled_module(impl, x, inplace)
    if module is None:
        if inplace:
            return _bias_act_inplace_ref(x, b, dim, act, alpha, gain, clamp)
        return _bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp if clamp >= 0 else None)
    if _nhwc(x, dim):
        # Channels-last: the same memory is a contiguous NHWC tensor whose last dim is C.
        y = bias_act(x.permute(0, 2, 3, 1), b, dim=3, act=act, alpha=alpha, gain=gain,
                     clamp=clamp if clamp >= 0 else None, impl=impl, inplace=inplace)
        return y.permute(0, 3, 1, 2)
    if inplace and x.is_contiguous() and x.device.type == "cpu" and hasattr(module, "bias_act_"):
        empty = x.new_empty([0])
        module.bias_act_(x, empty if b is None else b.contiguous(), dim, spec.index, alpha, gain, clamp)
        return x
    return _compiled_function(dim, act, alpha, gain, clamp, x.device.type).apply(x, b)


@functools.lru_cache(maxsize=None)
def _compiled_function(dim: int, act: str, alpha: float, gain: float, clamp: float, device_type: str):
    """The autograd Function for one setting, built once and cached (as StyleGAN does)."""
    spec = ACTIVATIONS[act]
    need_x = spec.needs_x
    need_y = spec.needs_y or clamp >= 0

    def run(mode, x, b, xref, yref, dy):
        module = _LOADERS[device_type]()
        empty = x.new_empty([0])
        return module.bias_act(
            x.contiguous(),
            empty if b is None else b.contiguous(),
            empty if xref is None else xref,
            empty if yref is None else yref,
            empty if dy is None else dy.contiguous(),
            mode, dim, spec.index, alpha, gain, clamp,
        )

    def reduce_bias(t):
        return t.sum([i for i in range(t.ndim) if i != dim])

    trivial = act == "linear" and gain == 1 and clamp < 0

    class BiasActCompiled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, b):
            x = x.contiguous()
            if trivial and b is None:
                y = x.clone()
            else:
                y = run(0, x, b, None, None, None)
            ctx.save_for_backward(x if need_x else None, b, y if need_y else None)
            return y

        @staticmethod
        def backward(ctx, dy):
            x, b, y = ctx.saved_tensors
            dx = db = None
            if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
                dx = dy if trivial else BiasActCompiledGrad.apply(dy, x, b, y)
            if ctx.needs_input_grad[1]:
                db = reduce_bias(dx)
            return dx, db

    class BiasActCompiledGrad(torch.autograd.Function):
        """dx = dy * d(bias_act)/dx, evaluated by the kernel; differentiable again."""

        @staticmethod
        def forward(ctx, dy, x, b, y):
            dx = run(1, dy, b, x, y, None)
            ctx.save_for_backward(dy if spec.has_2nd_grad else None, x, b, y)
            return dx

        @staticmethod
        def backward(ctx, d_dx):
            dy, x, b, y = ctx.saved_tensors
            d_dy = d_x = d_b = None
            if ctx.needs_input_grad[0]:
                d_dy = BiasActCompiledGrad.apply(d_dx, x, b, y)
            if spec.has_2nd_grad and (ctx.needs_input_grad[1] or ctx.needs_input_grad[2]):
                d_x = run(2, d_dx, b, x, y, dy)
            if spec.has_2nd_grad and ctx.needs_input_grad[2]:
                d_b = reduce_bias(d_x)
            return d_dy, d_x, d_b, None

    return BiasActCompiled
