"""Upsample, FIR-filter and downsample 2-D images in one op (StyleGAN2's `upfirdn2d`).

`x` (N, C, H, W) is, per channel:
  1. upsampled by inserting ``up - 1`` zeros after every pixel (along x and y),
  2. padded by `padding` = (x0, x1, y0, y1) pixels (negative values crop),
  3. convolved with the 2-D filter `f` (fh, fw), or with a 1-D filter `f` (fw,) along x
     then along y (a separable filter); the filter is flipped first unless
     `flip_filter`, i.e. this is a true convolution; the filter is scaled by `gain`,
  4. downsampled by keeping every `down`-th pixel.
Output size: ``(H * up_y + y0 + y1 - fh + down_y) // down_y`` rows (same for columns).

Filters come from `setup_filter` (float32, normalised to sum 1 by default; 1-D filters of
8 taps or more stay separable, shorter ones become their outer product), matching
StyleGAN2-ADA / StyleGAN3 so published weights behave identically. Gradients are taken
w.r.t. `x` only (never `f`); the gradient is itself upfirdn2d with the filter flipped,
so derivatives of any order work.

Implementations (`impl`): 'ref' plain PyTorch (`_upfirdn2d_ref`), 'cpp' a C++ kernel
(float32/64 CPU tensors), 'cuda' a CUDA kernel (float16/32/64), 'auto' the compiled
one for the tensor's device when available and `custom_ops.auto_choice` prefers it
there, else the reference (always for channels-last inputs, which the reference's
depthwise convolution runs without a layout copy).
"""

from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from torch_utils import compute_policy, custom_ops
from torch_utils.misc import ShapeError, is_nhwc

_IMPLS = ("auto", "ref", "cpp", "cuda")
_COMPILED_DTYPES = {
    "cpu": (torch.float32, torch.float64),
    "cuda": (torch.float16, torch.float32, torch.float64),
}


_LOADERS = custom_ops.declare_op(
    "upfirdn2d",
    cpu_sources=["upfirdn2d/upfirdn2d_cpu.cpp"],
    cuda_sources=["upfirdn2d/upfirdn2d_cuda.cpp", "upfirdn2d/upfirdn2d_cuda.cu"],
    headers=["upfirdn2d/upfirdn2d.h"],
)
_load_cpu, _load_cuda = _LOADERS["cpu"], _LOADERS["cuda"]


# ----------------------------------------------------------------------------- argument parsing


def _parse_scaling(scaling, name: str = "up/down") -> Tuple[int, int]:
    if isinstance(scaling, int) and not isinstance(scaling, bool):
        scaling = [scaling, scaling]
    if not isinstance(scaling, (list, tuple)) or len(scaling) != 2 or not all(isinstance(s, int) for s in scaling):
        raise ValueError(f"upfirdn2d: {name} must be an int or a pair of ints (x, y), got {scaling!r}")
    sx, sy = scaling
    if sx < 1 or sy < 1:
        raise ValueError(f"upfirdn2d: {name} factors must be >= 1, got {scaling!r}")
    return sx, sy


def _parse_padding(padding) -> Tuple[int, int, int, int]:
    if isinstance(padding, int) and not isinstance(padding, bool):
        padding = [padding, padding]
    if not isinstance(padding, (list, tuple)) or len(padding) not in (2, 4):
        raise ValueError(f"upfirdn2d: padding must be an int, (x, y) or (x0, x1, y0, y1), got {padding!r}")
    if not all(isinstance(p, (int, np.integer)) for p in padding):
        raise ValueError(f"upfirdn2d: padding values must be ints, got {padding!r}")
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        px, py = padding
        padding = [px, px, py, py]
    px0, px1, py0, py1 = padding
    return px0, px1, py0, py1


def _get_filter_size(f: Optional[torch.Tensor]) -> Tuple[int, int]:
    """(fw, fh) of a filter from `setup_filter`; (1, 1) for None."""
    if f is None:
        return 1, 1
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ShapeError(f"upfirdn2d: filter must be a 1-D (fw,) or 2-D (fh, fw) tensor, got {_describe(f)}")
    fw = f.shape[-1]
    fh = f.shape[0]
    return int(fw), int(fh)


def _describe(t) -> str:
    if isinstance(t, torch.Tensor):
        return f"shape {tuple(t.shape)}"
    return type(t).__name__


# ----------------------------------------------------------------------------- filters


def setup_filter(f, device=torch.device("cpu"), normalize=True, flip_filter=False, gain=1, separable=None):
    """Turn filter taps into a float32 tensor for `upfirdn2d`.

    Args:
        f: None (identity), a scalar, 1-D taps (e.g. [1, 3, 3, 1]) or a 2-D (fh, fw) array.
        device: where the filter tensor lives.
        normalize: scale so the taps sum to 1.
        flip_filter: flip the taps (so convolution becomes correlation).
        gain: overall gain; a separable filter carries sqrt(gain) per pass.
        separable: keep a 1-D filter separable; default: only when it has 8 or more taps.

    Returns a 1-D (fw,) tensor (separable) or a 2-D (fh, fw) tensor.
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim not in (0, 1, 2):
        raise ShapeError(f"setup_filter: expected a scalar, 1-D or 2-D filter, got shape {tuple(f.shape)}")
    if f.numel() == 0:
        raise ShapeError("setup_filter: the filter is empty")
    if f.ndim == 0:
        f = f[None]
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ShapeError(f"setup_filter: a 2-D filter of shape {tuple(f.shape)} cannot be separable")
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


# ----------------------------------------------------------------------------- validation


def _check(x, f, up, down, padding, impl):
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ShapeError(f"upfirdn2d: x must be a 4-D tensor (N, C, H, W), got {_describe(x)}")
    if not x.is_floating_point():
        raise ShapeError(f"upfirdn2d: x must be floating point, got dtype {str(x.dtype).replace('torch.', '')}")
    if impl not in _IMPLS:
        raise ValueError(f"upfirdn2d: impl={impl!r} is not understood: expected one of {', '.join(_IMPLS)}")
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    if not isinstance(f, torch.Tensor) or f.ndim not in (1, 2):
        raise ShapeError(f"upfirdn2d: filter must be a 1-D (fw,) or 2-D (fh, fw) tensor, got {_describe(f)}")
    if f.numel() == 0:
        raise ShapeError("upfirdn2d: the filter is empty")
    if f.dtype != torch.float32:
        raise ShapeError(f"upfirdn2d: filter must be float32 (see setup_filter), got {str(f.dtype).replace('torch.', '')}")
    if f.device != x.device:
        raise ShapeError(f"upfirdn2d: filter is on {f.device} but x is on {x.device}")
    upx, upy = _parse_scaling(up, "up")
    downx, downy = _parse_scaling(down, "down")
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = int(f.shape[-1]), int(f.shape[0])
    _, _, h, w = x.shape
    out_w = (w * upx + px0 + px1 - fw + downx) // downx
    out_h = (h * upy + py0 + py1 - fh + downy) // downy
    if out_w < 1 or out_h < 1:
        raise ShapeError(
            f"upfirdn2d: x of shape {tuple(x.shape)} with up=({upx}, {upy}), down=({downx}, {downy}), "
            f"padding=({px0}, {px1}, {py0}, {py1}) and a {fh}x{fw} filter gives an empty output ({out_h}x{out_w})"
        )
    return f, (upx, upy), (downx, downy), (px0, px1, py0, py1)


# ----------------------------------------------------------------------------- reference


def _upfirdn2d_ref(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="ref"):
    """Pure-PyTorch twin of `upfirdn2d` (same arguments; `impl` is ignored)."""
    f, (upx, upy), (downx, downy), (px0, px1, py0, py1) = _check(x, f, up, down, padding, "ref")
    n, c, h, w = x.shape

    # Zero insertion (none when not upsampling: keeps x's memory layout, e.g. channels-last).
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    # Pad (positive) then crop (negative). Equal non-negative padding on both sides of each axis
    # (the filter after StyleGAN's transposed up-convolution: 1 px all round) is left to the
    # convolution's own zero padding instead: the same sums, without a padded copy of x
    # (1.34-1.38x faster NCHW, 1.7-1.8x NHWC at the generator's 257-513 px shapes, 2 cores;
    # `ComputePolicy.fold_filter_padding`, off in PUBLISHED, which pads first as published).
    conv_pad = (0, 0)
    if px0 == px1 >= 0 and py0 == py1 >= 0 and compute_policy.current().fold_filter_padding:
        conv_pad = (py0, px0)
    else:
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]

    # Depthwise true convolution (conv2d correlates, hence the flip).
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c, padding=conv_pad)
    else:
        x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c, padding=(0, conv_pad[1]))
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c, padding=(conv_pad[0], 0))

    return x[:, :, ::downy, ::downx]


# ----------------------------------------------------------------------------- public API


def _compiled_module(impl: str, x: torch.Tensor):
    dev = x.device.type
    if impl == "ref":
        return None
    if impl == "auto":
        if dev not in _LOADERS or x.dtype not in _COMPILED_DTYPES[dev]:
            return None
        if custom_ops.auto_choice("upfirdn2d", dev) != "compiled":
            return None
        if is_nhwc(x):
            return None  # the kernels read NCHW; the reference's depthwise conv runs NHWC as it is
        return _LOADERS[dev]()
    want = "cpu" if impl == "cpp" else "cuda"
    if dev != want:
        raise ValueError(f"upfirdn2d: impl={impl!r} needs a {want} tensor, got one on {x.device}")
    if x.dtype not in _COMPILED_DTYPES[want]:
        ok = ", ".join(str(d).replace("torch.", "") for d in _COMPILED_DTYPES[want])
        raise ValueError(f"upfirdn2d: impl={impl!r} supports dtypes {ok}, got {str(x.dtype).replace('torch.', '')}")
    module = _LOADERS[want]()
    if module is None:
        status = custom_ops.statuses().get(f"upfirdn2d_{want}")
        raise RuntimeError(f"upfirdn2d: impl={impl!r} is unavailable: {status.reason if status else 'not built'}")
    return module


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Upsample, filter and downsample `x` (N, C, H, W) with filter `f` (see the module docstring).

    Args:
        x: (N, C, H, W) floating tensor.
        f: filter from `setup_filter` (float32, 1-D or 2-D, on x's device) or None (identity).
        up, down: int or (x, y) integer factors >= 1.
        padding: int, (x, y) or (x0, x1, y0, y1); negative values crop.
        flip_filter: correlate instead of convolve.
        gain: overall gain of the filter.
        impl: 'auto' | 'ref' | 'cpp' | 'cuda'.

    Returns (N, C, H_out, W_out) in x's dtype.
    """
    f, upv, downv, pad = _check(x, f, up, down, padding, impl)
    module = _compiled_module(impl, x)
    if module is None:
        return _upfirdn2d_ref(x, f, up=upv, down=downv, padding=pad, flip_filter=flip_filter, gain=gain)
    return _compiled_function(upv, downv, pad, bool(flip_filter), float(gain), x.device.type).apply(x, f)


@functools.lru_cache(maxsize=None)
def _compiled_function(up, down, padding, flip_filter, gain, device_type):
    """Autograd Function for one setting; its backward is the same op transposed."""
    upx, upy = up
    downx, downy = down
    px0, px1, py0, py1 = padding

    class Upfirdn2dCompiled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, f):
            module = _LOADERS[device_type]()
            y = x.contiguous()
            if f.ndim == 2:
                y = module.upfirdn2d(y, f.contiguous(), upx, upy, downx, downy, px0, px1, py0, py1, flip_filter, gain)
            else:
                # Separable: x pass with sqrt(gain), then y pass with sqrt(gain).
                g = gain ** 0.5
                y = module.upfirdn2d(y, f[None, :].contiguous(), upx, 1, downx, 1, px0, px1, 0, 0, flip_filter, g)
                y = module.upfirdn2d(y, f[:, None].contiguous(), 1, upy, 1, downy, 0, 0, py0, py1, flip_filter, g)
            ctx.save_for_backward(f)
            ctx.x_shape = x.shape
            return y

        @staticmethod
        def backward(ctx, dy):
            (f,) = ctx.saved_tensors
            _, _, ih, iw = ctx.x_shape
            _, _, oh, ow = dy.shape
            fw, fh = _get_filter_size(f)
            p = [
                fw - px0 - 1,
                iw * upx - ow * downx + px0 - upx + 1,
                fh - py0 - 1,
                ih * upy - oh * downy + py0 - upy + 1,
            ]
            dx = None
            if ctx.needs_input_grad[0]:
                dx = _compiled_function(down, up, tuple(p), not flip_filter, gain, device_type).apply(dy, f)
                if dx.shape != ctx.x_shape:  # a rounding case the padding formula cannot express
                    raise AssertionError(f"upfirdn2d gradient shape {tuple(dx.shape)} != {tuple(ctx.x_shape)}")
            return dx, None

    return Upfirdn2dCompiled


def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Filter `x` (N, C, H, W) with `f`, padded so the output keeps the input size (+ padding)."""
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [px0 + fw // 2, px1 + (fw - 1) // 2, py0 + fh // 2, py1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Upsample `x` (N, C, H, W) by `up` with filter `f`: output (N, C, H*up, W*up) (+ padding).

    The filter gain is multiplied by up_x * up_y to keep the mean brightness.
    """
    upx, upy = _parse_scaling(up, "up")
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [
        px0 + (fw + upx - 1) // 2,
        px1 + (fw - upx) // 2,
        py0 + (fh + upy - 1) // 2,
        py1 + (fh - upy) // 2,
    ]
    return upfirdn2d(x, f, up=(upx, upy), padding=p, flip_filter=flip_filter, gain=gain * upx * upy, impl=impl)


def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl="auto"):
    """Downsample `x` (N, C, H, W) by `down` with filter `f`: output (N, C, H//down, W//down) (+ padding)."""
    downx, downy = _parse_scaling(down, "down")
    px0, px1, py0, py1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [
        px0 + (fw - downx + 1) // 2,
        px1 + (fw - downx) // 2,
        py0 + (fh - downy + 1) // 2,
        py1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=(downx, downy), padding=p, flip_filter=flip_filter, gain=gain, impl=impl)
