"""How the networks arrange their work: memory layout, modulated-convolution form, op choice.

Every setting computes the same function (within float rounding: tests compare each fast
path with the published arrangement); they differ only in speed. The policy in force is a
context variable, set with `use(policy)` (a context manager, per thread / task), never a
module switch:

    with compute_policy.use(compute_policy.PUBLISHED):
        G(z, c, flame)          # the published computation order (benchmarks compare with it)

Fields of `ComputePolicy`:

* `ops`: 'auto' lets `impl='auto'` of the compiled ops take the faster of the compiled
  kernel and its reference per device and op (`torch_utils.custom_ops.auto_choice`);
  'ref' forces the pure-PyTorch references (the published code on a CPU: its kernels are
  CUDA-only).
* `channels_last`: CPU float32 synthesis blocks keep activations NHWC; bias_act and
  upfirdn2d accept that layout without copies. Off by default: on the 2-core AVX2 test
  machine whole layers ran slower NHWC (3x3, 128 channels at 256^2: 18.6 s NHWC vs
  13.9 s NCHW per layer under load, interleaved), although single convolutions were faster.
  After the batch-1 stride fix (see `upconv_channels_last`) it ties with that lever alone
  (ffhq512 against PUBLISHED, 2026-12-04: batch 1 1.51x vs 1.52x, batch 4 1.47x vs 1.44x; held
  to AVX2 1.40x vs 1.39x and 1.51x vs 1.57x), so it stays off.
* `modconv`: 'auto' picks, per shape, one grouped convolution with per-sample weights
  or the demodulated shared-weight form (`next3d.networks.layers.modulated_conv2d`);
  'published' keeps the block's own `fused_modconv` (grouped conv in inference, as
  published).
* `inplace`: bias + activation write into the convolution's output when no gradient is
  recorded (inference), saving an allocation and a pass over memory per layer.
* `polyphase_up`: a 2x up-convolution (3x3 kernel, then StyleGAN's 4x4 filter) runs as
  one 3x3 convolution with four output phases on the input grid and a pixel shuffle
  (`torch_utils.ops.conv2d_resample.upconv_phase_weights`) instead of a transposed
  convolution, a padding copy and a filter pass. Off by default: it does 4x the
  multiply-adds of the transposed form (each phase sees a full 3x3 window where the
  transposed convolution has 9/4 taps on average), and measured on whole forwards it
  loses: ffhq512, batch 1, idle, against PUBLISHED with only this lever changed, 0.55x
  on a 2-core AVX-512 Xeon (2026-12-02); FAST with it on was 0.68x on the 2-core AVX2
  EPYC (2026-12-01). Kept for machines whose transposed convolution is the slow one.
* `fold_filter_padding`: the reference upfirdn2d leaves equal non-negative padding (the 1 px
  all round of the filter after each transposed up-convolution) to the depthwise
  convolution's own zero padding instead of writing a padded copy first; bit-identical
  sums, 1.34-1.38x faster filter passes NCHW at 257-513 px (2-core AVX-512 EPYC,
  2026-12-02; the whole ffhq512 forward, batch 1, FAST with / without it: 11.53 / 12.02 s).
  The published reference pads first.
* `upconv_channels_last`: on the CPU (float32) each up-convolution's transposed convolution,
  its filter and everything after it run NHWC (the layers downstream follow their input's
  layout, and a synthesis block hands an NHWC input straight on to its up-convolution).
  oneDNN's NCHW transposed convolution computes in a blocked layout and copies its output
  back; at (1, 256, 256^2) -> (1, 128, 513^2) NHWC took 416 ms vs 811 ms, the filter 98 vs
  257 ms, the next 3x3 convolution 597 vs 800 ms (2-core AVX-512 EPYC, 2026-12-02). Only with
  autograd off: in training the NHWC backward lost (`bench train`, FAST against FAST without
  this lever: demo G_main 0.935x, G_reg 0.926x; small G_main 0.90x).
  Until 2026-12-04 the NHWC layers after an up-convolution were slowed by a stride defect: at
  batch 1 the grouped modulated convolution reshaped its (1, C, H, W) input to the same shape,
  which gives a channels-last tensor a batch stride of C; torch's convolution then does not see
  channels-last, copies the input to NCHW and runs the NCHW kernel (128 channels at 512^2: 544
  against 268 ms). With that fixed (`next3d.networks.layers.modulated_conv2d`), interleaved
  ffhq512 forwards against PUBLISHED (2-core AVX-512 Xeon, 2026-12-04, 3 repeats, medians), this
  lever off / on: batch 1 1.26x / 1.52x, batch 4 1.06x / 1.44x; with oneDNN and ATen held to
  AVX2 (ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2, the same machine) 1.27x / 1.39x and
  1.35x / 1.57x. So it is on for every CPU now; before the fix it had measured slower on a
  2-core AVX2 EPYC (2026-12-03: 8.31 / 6.82 s, on / off) and was on for AVX-512 only.
* `planes_mean_as_sampled`: the tri-plane decoder averages the three planes' features in the
  layout grid_sample returns them in (points innermost) and hands the FC layer a transposed
  view, instead of a contiguous (B, 3, N, C) copy first (the published sample_from_planes
  reshapes after its permute). (1, 3, 196608, 32) -> FC 32->64: 51 ms against 152 ms with
  the copy, 243 ms averaging the strided view (one thread, 2026-12-03).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Iterator

_MODCONV = ("auto", "published")
_OPS = ("auto", "ref")


@dataclasses.dataclass(frozen=True)
class ComputePolicy:
    """One arrangement of the work (module docstring)."""

    ops: str = "auto"
    """'auto' (faster of compiled and reference per device/op) or 'ref' (references only)."""
    channels_last: bool = False
    """CPU float32 synthesis activations in NHWC layout (off by default: measured slower here)."""
    modconv: str = "auto"
    """'auto' (grouped or shared-weight form by shape) or 'published' (the block's fused_modconv)."""
    inplace: bool = True
    """In-place bias/activation when autograd records nothing."""
    polyphase_up: bool = False
    """CPU 2x up-convolutions (3x3 kernel, 4x4 filter) as four phase convolutions on the input grid
    (off by default: 4x the multiply-adds, measured slower; module docstring)."""
    fold_filter_padding: bool = True
    """Reference upfirdn2d: equal padding goes into the filter convolution (no padded copy)."""
    upconv_channels_last: bool = True
    """CPU float32 inference: up-convolutions switch the activations to NHWC (module docstring)."""
    planes_mean_as_sampled: bool = True
    """The decoder averages the planes in grid_sample's output layout (no copy; module docstring)."""

    def __post_init__(self):
        if self.ops not in _OPS:
            raise ValueError(f"ComputePolicy.ops: got {self.ops!r}, expected one of {', '.join(_OPS)}")
        if self.modconv not in _MODCONV:
            raise ValueError(f"ComputePolicy.modconv: got {self.modconv!r}, expected one of {', '.join(_MODCONV)}")


FAST = ComputePolicy()
"""The default: the fast paths that measured faster (polyphase_up and channels_last stay off)."""

PUBLISHED = ComputePolicy(ops="ref", channels_last=False, modconv="published", inplace=False, polyphase_up=False,
                          fold_filter_padding=False, upconv_channels_last=False, planes_mean_as_sampled=False)
"""The published code's arrangement on a CPU: reference ops, NCHW, grouped modulated conv, fresh outputs,
transposed up-convolution followed by the filter, padded copies before each filter pass, a contiguous
copy of the sampled plane features before the decoder averages them."""

_current: contextvars.ContextVar = contextvars.ContextVar("next3d_compute_policy", default=FAST)


def current() -> ComputePolicy:
    """The policy in force in this thread / task."""
    return _current.get()


@contextlib.contextmanager
def use(policy: ComputePolicy) -> Iterator[ComputePolicy]:
    """Run the body under `policy`; the previous policy returns afterwards."""
    if not isinstance(policy, ComputePolicy):
        raise TypeError(f"compute_policy.use: expected a ComputePolicy, got {type(policy).__name__}")
    token = _current.set(policy)
    try:
        yield policy
    finally:
        _current.reset(token)
