"""StyleGAN2 primitive layers: equalised-lr fully connected and conv layers, modulated conv.

Tensors are NCHW. Weights are stored with unit-variance initialisation and scaled at run
time ("equalised learning rate"): a weight of shape (O, I, k, k) is multiplied by
1/sqrt(I*k*k), a fully connected weight (O, I) by lr_multiplier/sqrt(I). Parameter and
buffer names (`weight`, `bias`, `resample_filter`) follow the published EG3D / Next3D
checkpoints so that their state_dicts load by name.

All layers run on any device; nothing here picks a device.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

from torch_utils import compute_policy
from torch_utils.misc import ShapeError, assert_shape
from torch_utils.ops import bias_act, conv2d_resample, fma, upfirdn2d

# Gains that keep unit variance through each activation (He et al.); StyleGAN2's values.
ACTIVATION_GAINS = {
    "linear": 1.0,
    "relu": math.sqrt(2),
    "lrelu": math.sqrt(2),
    "tanh": 1.0,
    "sigmoid": 1.0,
    "elu": 1.0,
    "selu": 1.0,
    "softplus": 1.0,
    "swish": math.sqrt(2),
}


def activation_gain(activation: str) -> float:
    """Default output gain of `activation`; ValueError naming the known ones otherwise."""
    if activation not in ACTIVATION_GAINS:
        raise ValueError(f"activation: unknown {activation!r}, expected one of {sorted(ACTIVATION_GAINS)}")
    return ACTIVATION_GAINS[activation]


def make_filter(f: Sequence[float]) -> torch.Tensor:
    """upfirdn2d.setup_filter(f) placed on the current default device.

    Built on the CPU first so that construction also works under `with torch.device('meta')`
    (setup_filter computes with the filter's values, which meta tensors do not have).
    """
    with torch.device("cpu"):
        filt = upfirdn2d.setup_filter(list(f))
    return filt.to(torch.empty(0).device)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale `x` so that its mean square along `dim` is 1."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def modulated_conv2d(
    x: torch.Tensor,                    # Input (B, I, H, W).
    weight: torch.Tensor,               # Weight (O, I, kh, kw).
    styles: torch.Tensor,               # Per-sample input-channel scales (B, I).
    noise: Optional[torch.Tensor] = None,  # Added to the output, broadcastable to (B, O, H', W').
    up: int = 1,                        # Integer upsampling factor.
    down: int = 1,                      # Integer downsampling factor.
    padding: int = 0,                   # Padding with respect to the upsampled image.
    resample_filter: Optional[torch.Tensor] = None,  # Low-pass filter from upfirdn2d.setup_filter().
    demodulate: bool = True,            # Normalise each output channel's weight to unit norm?
    flip_weight: bool = True,           # True = correlation (like torch conv2d), False = convolution.
    fused_modconv: bool = True,         # One grouped conv with per-sample weights, or scale activations?
) -> torch.Tensor:
    """StyleGAN2 weight modulation/demodulation followed by a (resampling) convolution.

    Returns (B, O, H', W'). The fused path folds the styles into per-sample weights and
    runs one grouped convolution; the unfused path scales the activations before and the
    output after a shared-weight convolution. Both compute the same function.
    """
    batch_size = int(x.shape[0])
    out_channels, in_channels, kh, kw = weight.shape
    assert_shape(weight, [out_channels, in_channels, kh, kw], "weight")
    assert_shape(x, [batch_size, in_channels, None, None], "x")
    assert_shape(styles, [batch_size, in_channels], "styles")

    # Keep fp16 activations in range: rescale weight and styles by their max (demodulation
    # undoes any scale anyway).
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    policy = compute_policy.current()
    inplace = policy.inplace and not (torch.is_grad_enabled() and
                                      (x.requires_grad or weight.requires_grad or styles.requires_grad))
    if fused_modconv and policy.modconv == "auto" and _prefer_shared_weight(x, weight, up, down):
        return _modconv_shared_weight(x, weight, styles, noise, up, down, padding, resample_filter, demodulate,
                                      flip_weight, inplace)

    w = None
    dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)  # (B, O, I, kh, kw)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # (B, O)
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample.conv2d_resample(
            x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight
        )
        if demodulate and noise is not None:
            x = fma.fma(x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1), noise.to(x.dtype))
        elif demodulate:
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        elif noise is not None:
            x = x + noise.to(x.dtype)
        return x

    # Fused: the batch becomes groups of one grouped convolution. At batch 1 the reshapes are
    # skipped: reshaping a channels-last (1, C, H, W) tensor to its own shape gives it a batch
    # stride of C, which oneDNN's layout check rejects, so the convolution copied its input to
    # NCHW and ran the slower NCHW kernel (128 ch, 512^2: 544 ms against 268 ms, 2026-12-04).
    if batch_size > 1:
        x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample.conv2d_resample(
        x=x, w=w.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, groups=batch_size,
        flip_weight=flip_weight,
    )
    if batch_size > 1:
        x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise.to(x.dtype)) if inplace else x + noise.to(x.dtype)
    return x


def _prefer_shared_weight(x: torch.Tensor, weight: torch.Tensor, up: int, down: int) -> bool:
    """Whether the shared-weight form beats one grouped convolution (CPU inference).

    The grouped form builds per-sample weights (three passes over B x O x I x k x k) and
    runs a B-group convolution, which oneDNN runs as B small convolutions; the shared
    form scales the input and the output instead (about I x H x W + O x H' x W' elements)
    and runs one batched convolution. Batch > 1: always shared; batch 1: shared when the
    activations are smaller than twice the weight.
    """
    if x.device.type != "cpu":
        return False
    batch = x.shape[0]
    if batch > 1:
        return True
    out_channels, in_channels, kh, kw = weight.shape
    h, w = x.shape[2], x.shape[3]
    act = in_channels * h * w + out_channels * h * w * (up * up) // (down * down)
    return act < 2 * out_channels * in_channels * kh * kw


def _modconv_shared_weight(x, weight, styles, noise, up, down, padding, resample_filter, demodulate, flip_weight,
                           inplace):
    """Modulated conv with the shared weight: conv(x * s, W) * d (+ noise), where the
    demodulation d[b, o] = rsqrt(sum_i s[b, i]^2 sum_k W[o, i, k]^2 + 1e-8) is one small
    matrix product instead of a pass over per-sample weights. Same function as the grouped form."""
    batch_size = x.shape[0]
    x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
    x = conv2d_resample.conv2d_resample(
        x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight
    )
    if demodulate:
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # (B, O)
        dcoefs = dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if inplace:
            x.mul_(dcoefs)
        elif noise is None:
            return x * dcoefs
        else:
            return fma.fma(x, dcoefs, noise.to(x.dtype))
    if noise is not None:
        x = x.add_(noise.to(x.dtype)) if inplace else x + noise.to(x.dtype)
    return x


class FullyConnectedLayer(torch.nn.Module):
    """y = act(x @ (W * lr_mul / sqrt(I)).T + b * lr_mul); x (B, I) -> y (B, O)."""

    def __init__(
        self,
        in_features: int,               # Number of input features I.
        out_features: int,              # Number of output features O.
        bias: bool = True,              # Add a bias before the activation?
        activation: str = "linear",     # 'linear', 'relu', 'lrelu', ...
        lr_multiplier: float = 1.0,     # Learning-rate multiplier (0.01 in the mapping network).
        bias_init: float = 0.0,         # Initial bias value (1 for style affines).
    ):
        super().__init__()
        activation_gain(activation)  # validate early
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.activation = activation
        self.lr_multiplier = float(lr_multiplier)
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.in_features], "FullyConnectedLayer input")
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        return bias_act.bias_act(x, b, act=self.activation)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"activation={self.activation}, lr_multiplier={self.lr_multiplier:g}"
        )


class Conv2dLayer(torch.nn.Module):
    """Equalised-lr conv with optional up/down-sampling (FIR filtered), bias, activation, clamp.

    x (B, I, H, W) -> (B, O, H*up/down, W*up/down); the kernel is odd-sized, 'same' padding.
    """

    def __init__(
        self,
        in_channels: int,               # Number of input channels I.
        out_channels: int,              # Number of output channels O.
        kernel_size: int,               # Kernel width and height (odd).
        bias: bool = True,              # Add a bias before the activation?
        activation: str = "linear",     # 'linear', 'relu', 'lrelu', ...
        up: int = 1,                    # Integer upsampling factor.
        down: int = 1,                  # Integer downsampling factor.
        resample_filter: Sequence[float] = (1, 3, 3, 1),  # Low-pass FIR filter used when resampling.
        conv_clamp: Optional[float] = None,  # Clamp outputs to +-conv_clamp (fp16 safety), None = off.
        channels_last: bool = False,    # Store the weight in channels_last memory format?
        trainable: bool = True,         # False = weight and bias are buffers (frozen layers).
    ):
        super().__init__()
        activation_gain(activation)
        if up != 1 and down != 1:
            raise ValueError(f"Conv2dLayer: up={up} and down={down}; expected at most one of them to differ from 1")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        self.up = int(up)
        self.down = int(down)
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", make_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = activation_gain(activation)

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias_t = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias_t) if bias_t is not None else None
        else:
            self.register_buffer("weight", weight)
            if bias_t is not None:
                self.register_buffer("bias", bias_t)
            else:
                self.bias = None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, None, None], "Conv2dLayer input")
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        flip_weight = self.up == 1  # correlation is slightly faster; transposed conv needs the flip
        x = conv2d_resample.conv2d_resample(
            x=x, w=w.to(x.dtype), f=self.resample_filter, up=self.up, down=self.down, padding=self.padding,
            flip_weight=flip_weight,
        )
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, b, act=self.activation, gain=act_gain, clamp=act_clamp, inplace=True)

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, kernel_size={self.kernel_size}, "
            f"activation={self.activation}, up={self.up}, down={self.down}, conv_clamp={self.conv_clamp}"
        )


def check_noise_mode(noise_mode: str) -> None:
    """ValueError unless noise_mode is 'random', 'const' or 'none'."""
    if noise_mode not in ("random", "const", "none"):
        raise ValueError(f"noise_mode: got {noise_mode!r}, expected 'random', 'const' or 'none'")


__all__ = [
    "ACTIVATION_GAINS",
    "Conv2dLayer",
    "FullyConnectedLayer",
    "ShapeError",
    "activation_gain",
    "check_noise_mode",
    "make_filter",
    "modulated_conv2d",
    "normalize_2nd_moment",
]
