"""`next3d bench ops`: compiled ops against their pure-PyTorch references, per device.

Sizes are those of a StyleGAN2 synthesis layer at 64² with 512 channels, batch 8
(`--quick`: batch 2, 128 channels, 32²). For every op and device the result holds
`ref_s` and `compiled_s` (median seconds) and `ratio` = ref_s / compiled_s (> 1: the
compiled op is faster), or the reason the compiled path is unavailable. A one-line summary per entry goes to
stderr (stdout carries the JSON).
"""

from __future__ import annotations

import sys
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

from next3d.bench import time_fn
from torch_utils import custom_ops
from torch_utils.ops import bias_act, conv2d_resample, upfirdn2d

_IMPL = {"cpu": "cpp", "cuda": "cuda"}


def _compare(ref: Callable[[], object], compiled: Callable[[], object], device: str, repeat: int, shape) -> dict:
    ref_s = time_fn(ref, device, repeat=repeat)
    comp_s = time_fn(compiled, device, repeat=repeat)
    return {"shape": list(shape), "ref_s": ref_s, "compiled_s": comp_s, "ratio": ref_s / comp_s}


def _unavailable(module_name: str) -> dict:
    status = custom_ops.statuses().get(module_name)
    return {"compiled_s": None, "reason": status.reason if status else "not built"}


def _bias_act(device: str, dev_type: str, size, repeat: int) -> Dict[str, dict]:
    out = {}
    n, c, r = size
    x = torch.randn(n, c, r, r, device=device)
    b = torch.randn(c, device=device)
    impl = _IMPL[dev_type]
    if bias_act._LOADERS[dev_type]() is None:
        return {"bias_act lrelu": _unavailable(f"bias_act_{dev_type}")}
    out["bias_act lrelu forward"] = _compare(
        lambda: bias_act.bias_act(x, b, act="lrelu", clamp=256, impl="ref"),
        lambda: bias_act.bias_act(x, b, act="lrelu", clamp=256, impl=impl),
        device, repeat, x.shape,
    )
    xg = x.clone().requires_grad_()
    bg = b.clone().requires_grad_()

    def fwd_bwd(which):
        def fn():
            y = bias_act.bias_act(xg, bg, act="lrelu", clamp=256, impl=which)
            torch.autograd.grad(y.sum(), [xg, bg])
        return fn

    out["bias_act lrelu forward+backward"] = _compare(fwd_bwd("ref"), fwd_bwd(impl), device, repeat, x.shape)
    return out


def _upfirdn(device: str, dev_type: str, size, repeat: int) -> Dict[str, dict]:
    n, c, r = size
    x = torch.randn(n, c, r // 2, r // 2, device=device)
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    impl = _IMPL[dev_type]
    if upfirdn2d._LOADERS[dev_type]() is None:
        return {"upsample2d": _unavailable(f"upfirdn2d_{dev_type}")}
    xd = torch.randn(n, c, r, r, device=device)
    return {
        "upsample2d x2": _compare(
            lambda: upfirdn2d.upsample2d(x, f, impl="ref"), lambda: upfirdn2d.upsample2d(x, f, impl=impl),
            device, repeat, x.shape,
        ),
        "downsample2d x2": _compare(
            lambda: upfirdn2d.downsample2d(xd, f, impl="ref"), lambda: upfirdn2d.downsample2d(xd, f, impl=impl),
            device, repeat, xd.shape,
        ),
    }


def _conv_resample(device: str, size, repeat: int) -> Dict[str, dict]:
    """conv2d_resample(up=2) (transposed conv + filter, compiled upfirdn2d when present)
    against its definition (zero insertion + filter with the reference, then a 3x3 conv)."""
    n, c, r = size
    x = torch.randn(n, c, r // 2, r // 2, device=device)
    w = torch.randn(c, c, 3, 3, device=device) / (3 * c ** 0.5)
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)

    def definition():
        y = upfirdn2d.upfirdn2d(x, f, up=2, padding=[3, 2, 3, 2], gain=4, impl="ref")
        return F.conv2d(y, w.flip([2, 3]))

    def fused():
        return conv2d_resample.conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False)

    return {"conv2d_resample up=2 3x3": _compare(definition, fused, device, repeat, x.shape)}


# Shapes the ffhq512 generator gives the ops (batch 1): bias_act after the 3x3 convs, the
# filter after a transposed up-convolution (padding 1, output 2r from 2r+1), the image
# upsampling of the skip connections.
GENERATOR_SHAPES = {
    "bias_act lrelu": [(1, 512, 64, 64), (1, 256, 128, 128), (1, 128, 256, 256), (1, 128, 512, 512)],
    "filter after up-conv": [(1, 512, 65, 65), (1, 256, 129, 129), (1, 128, 257, 257)],
    "upsample2d image": [(1, 96, 128, 128), (1, 32, 128, 128)],
}
QUICK_SHAPES = {
    "bias_act lrelu": [(1, 64, 32, 32)],
    "filter after up-conv": [(1, 32, 33, 33)],
    "upsample2d image": [(1, 8, 32, 32)],
}


def _generator_shapes(device: str, dev_type: str, quick: bool, repeat: int) -> Dict[str, dict]:
    """Compiled kernel vs reference at the generator's own shapes, NCHW (inference, no grad),
    and what impl='auto' picks; `auto_s` is the time of impl='auto'."""
    out: Dict[str, dict] = {}
    impl = _IMPL[dev_type]
    shapes = QUICK_SHAPES if quick else GENERATOR_SHAPES
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    have_ba = bias_act._LOADERS[dev_type]() is not None
    have_up = upfirdn2d._LOADERS[dev_type]() is not None
    for shape in shapes["bias_act lrelu"]:
        if not have_ba:
            break
        x = torch.randn(*shape, device=device)
        b = torch.randn(shape[1], device=device)
        entry = _compare(lambda: bias_act.bias_act(x, b, act="lrelu", gain=2 ** 0.5, clamp=256, impl="ref"),
                         lambda: bias_act.bias_act(x, b, act="lrelu", gain=2 ** 0.5, clamp=256, impl=impl),
                         device, repeat, shape)
        entry["auto_uses"] = custom_ops.auto_choice("bias_act", dev_type)
        out[f"bias_act lrelu {tuple(shape)}"] = entry
    for shape in shapes["filter after up-conv"]:
        if not have_up:
            break
        x = torch.randn(*shape, device=device)
        entry = _compare(lambda: upfirdn2d.upfirdn2d(x, f, padding=1, gain=4, impl="ref"),
                         lambda: upfirdn2d.upfirdn2d(x, f, padding=1, gain=4, impl=impl), device, repeat, shape)
        entry["auto_uses"] = custom_ops.auto_choice("upfirdn2d", dev_type)
        out[f"upfirdn2d filter {tuple(shape)}"] = entry
    for shape in shapes["upsample2d image"]:
        if not have_up:
            break
        x = torch.randn(*shape, device=device)
        entry = _compare(lambda: upfirdn2d.upsample2d(x, f, impl="ref"), lambda: upfirdn2d.upsample2d(x, f, impl=impl),
                         device, repeat, shape)
        entry["auto_uses"] = custom_ops.auto_choice("upfirdn2d", dev_type)
        out[f"upsample2d {tuple(shape)}"] = entry
    return out


def run(devices: List[str], quick: bool) -> dict:
    size = (2, 128, 32) if quick else (8, 512, 64)
    repeat = 3 if quick else 5
    result: Dict[str, dict] = {}
    for device in devices:
        dev_type = torch.device(device).type
        per: Dict[str, dict] = {}
        per.update(_bias_act(device, dev_type, size, repeat))
        with torch.no_grad():
            per.update(_upfirdn(device, dev_type, size, repeat))
            per.update(_conv_resample(device, size, repeat))
            per.update(_generator_shapes(device, dev_type, quick, repeat))
        result[device] = per
        for name, entry in per.items():
            if entry.get("compiled_s") is None:
                print(f"[ops] {device:<5} {name:<34} compiled unavailable: {entry.get('reason')}", file=sys.stderr, flush=True)
            else:
                print(f"[ops] {device:<5} {name:<34} ref_s={entry['ref_s']:.4f} compiled_s={entry['compiled_s']:.4f} "
                      f"ratio={entry['ratio']:.2f}", file=sys.stderr, flush=True)
    return result
