"""2-D convolution with optional up/downsampling by a FIR filter (StyleGAN2's `conv2d_resample`).

Mathematically: upsample `x` by `up` with filter `f` (gain up**2, as `upsample2d`),
pad by `padding`, convolve with `w`, then downsample by `down` with `f`. The order of
the work is chosen for speed (a transposed stride-`up` convolution for upsampling, a
strided convolution for downsampling, 1x1 kernels moved to the cheaper resolution),
exactly as StyleGAN2-ADA / StyleGAN3 do, so published weights give the same results.

Shapes: x (N, C_in, H, W); w (C_out, C_in/groups, kh, kw); f from
`upfirdn2d.setup_filter` or None; output (N, C_out, H*up/down + pad terms, ...).
Convolutions go through `conv2d_gradfix`, so R1 double backward works.
"""

from __future__ import annotations

import torch

from torch_utils.misc import ShapeError
from torch_utils.ops import conv2d_gradfix, upfirdn2d


def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    """conv2d / conv_transpose2d; `flip_weight=False` flips the kernel (true convolution)."""
    _, _, kh, kw = w.shape
    if not flip_weight and (kh > 1 or kw > 1):
        w = w.flip([2, 3])
    if transpose:
        return conv2d_gradfix.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return conv2d_gradfix.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def _polyphase_enabled(x: torch.Tensor) -> bool:
    from torch_utils import compute_policy

    return x.device.type == "cpu" and compute_policy.current().polyphase_up


def upconv_nhwc(x: torch.Tensor) -> bool:
    """Whether an up-convolution of `x` runs NHWC (`ComputePolicy.upconv_channels_last`)."""
    from torch_utils import compute_policy

    # Forward passes only: with autograd on, the NHWC backward made training steps slower
    # (demo G_main 0.935x, small 0.90x; measured 2026-12-02).
    return (x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
            and compute_policy.current().upconv_channels_last)


def upconv_phase_weights(w: torch.Tensor, f: torch.Tensor, flip_weight: bool) -> torch.Tensor:
    """The four 3x3 phase kernels of a 2x up-convolution: w (O, I, 3, 3), f (4, 4) ->
    (4 O, I, 3, 3), output channel 4 o + 2 py + px.

    The transposed stride-2 convolution with w followed by the gain-4 filter f is one
    transposed convolution with the 6x6 kernel K = w (*) f (full 2-D convolution), whose
    output pixel (2m + py, 2n + px) sees only the taps K[py + 2j, px + 2k]: a 3x3
    correlation of the input, padding 1, per phase. Exact up to float summation order.
    """
    out_c, in_c = w.shape[0], w.shape[1]
    weff = w if not flip_weight else w.flip([2, 3])  # the transposed conv's own (unflipped) taps
    # K[d] = 4 * sum_{t - s + 1 = d} weff[t] f[3 - s], d = -2..3 (index d + 2): a full
    # convolution of weff with f, as a correlation of the zero-padded weff with f flipped.
    k = torch.nn.functional.conv2d(weff.reshape(out_c * in_c, 1, 3, 3), (f.flip([0, 1]) * 4).to(w.dtype)[None, None],
                                   padding=3)  # (O*I, 1, 6, 6), index d' = t + (3 - s) = d + 2
    k = k.reshape(out_c, in_c, 6, 6)
    # Phase p, tap u = -1..1 (kernel index u + 1) reads K at d = p - 2u, i.e. index p - 2u + 2.
    phases = []
    for py in (0, 1):
        rows = k[:, :, [py + 4, py + 2, py]]
        for px in (0, 1):
            phases.append(rows[:, :, :, [px + 4, px + 2, px]])
    return torch.stack(phases, dim=1).reshape(out_c * 4, in_c, 3, 3)


def _upconv_polyphase(x, w, f, groups, flip_weight):
    """conv2d_resample(x, w, f, up=2, padding=1) for 3x3 w and a 4x4 f, as one 3x3 conv with
    4x the output channels on the input grid and a pixel shuffle (no zero insertion, no
    separate filter pass); `upconv_phase_weights` has the maths."""
    out_c = w.shape[0]
    g = upconv_phase_weights(w, f, flip_weight)
    # Channels 4 o + phase stay inside o's group, so grouped convolutions (the fused
    # modulated conv) shuffle the same way.
    y = conv2d_gradfix.conv2d(x, g, padding=1, groups=groups)
    assert y.shape[1] == out_c * 4
    return torch.nn.functional.pixel_shuffle(y, 2)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """Convolve `x` with `w`, upsampling by `up` and/or downsampling by `down` with filter `f`.

    Args:
        x: (N, C_in, H, W).
        w: (C_out, C_in // groups, kh, kw), same dtype as x.
        f: low-pass filter from `setup_filter` (or None: box of size 1).
        up, down: integer factors >= 1 (same along x and y).
        padding: int, (x, y) or (x0, x1, y0, y1) padding of the upsampled input.
        groups: convolution groups.
        flip_weight: False flips `w` (true convolution); StyleGAN passes ``flip_weight=(up == 1)``.
        flip_filter: flip `f`.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ShapeError(f"conv2d_resample: x must be a 4-D tensor (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if not isinstance(w, torch.Tensor) or w.ndim != 4:
        raise ShapeError(f"conv2d_resample: w must be a 4-D tensor (C_out, C_in/groups, kh, kw), got {getattr(w, 'shape', type(w))}")
    if w.dtype != x.dtype:
        raise ShapeError(f"conv2d_resample: w dtype {w.dtype} must equal x dtype {x.dtype}")
    for name, v in (("up", up), ("down", down), ("groups", groups)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"conv2d_resample: {name} must be an int >= 1, got {v!r}")
    out_channels, in_per_group, kh, kw = (int(s) for s in w.shape)
    if x.shape[1] != in_per_group * groups or out_channels % groups != 0:
        raise ShapeError(
            f"conv2d_resample: x has {x.shape[1]} channels but w {tuple(w.shape)} with groups={groups} "
            f"expects {in_per_group * groups} (and C_out divisible by groups)"
        )
    if f is not None and (not isinstance(f, torch.Tensor) or f.ndim not in (1, 2)):
        raise ShapeError(f"conv2d_resample: f must be None or a 1-D/2-D filter tensor, got {getattr(f, 'shape', type(f))}")
    fw, fh = upfirdn2d._get_filter_size(f)
    px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)

    # Padding that centres the filter for the resampling.
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
    pad = [px0, px1, py0, py1]

    # 1x1 kernel, downsampling only: downsample first (fewer pixels to convolve).
    if kw == 1 and kh == 1 and down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, groups=groups, flip_weight=flip_weight)

    # 1x1 kernel, upsampling only: convolve first, then upsample.
    if kw == 1 and kh == 1 and up > 1 and down == 1:
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x, f, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)

    # Downsampling only: filter, then a strided convolution.
    if down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x, f, padding=pad, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # 2x upsampling of a 3x3 kernel with a 4x4 filter (StyleGAN's up-conv): four 3x3
    # convolutions on the input grid, one per output phase (see `_upconv_polyphase`).
    if (up == 2 and down == 1 and kh == 3 and kw == 3 and f is not None and f.ndim == 2 and tuple(f.shape) == (4, 4)
            and not flip_filter and tuple(pad) == (3, 2, 3, 2) and _polyphase_enabled(x)):
        return _upconv_polyphase(x, w, f, groups, flip_weight)

    # Upsampling (optionally followed by downsampling): a transposed strided convolution
    # does the zero insertion and the convolution in one go; the filter follows.
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw)
            w = w.transpose(1, 2)
            w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        # Part of the padding the transposed convolution can absorb itself.
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        # NHWC from here on (`ComputePolicy.upconv_channels_last`): oneDNN's NCHW transposed
        # convolution computes blocked and then copies its 4x larger output back to NCHW; NHWC
        # skips that copy, and the filter and the convolutions after it are faster NHWC too.
        nhwc = upconv_nhwc(x)
        if nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        x = _conv(x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d.upfirdn2d(
            x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up ** 2, flip_filter=flip_filter
        )
        if down > 1:
            x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x

    # No resampling and symmetric non-negative padding: one plain convolution.
    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # General case: pad/crop with upfirdn2d, convolve, downsample.
    x = upfirdn2d.upfirdn2d(x, f if up > 1 else None, up=up, padding=pad, gain=up ** 2, flip_filter=flip_filter)
    x = _conv(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x, f, down=down, flip_filter=flip_filter)
    return x
