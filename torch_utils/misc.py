"""Small helpers shared by every module: shape assertions and seeded randomness."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

Dim = Union[int, None, torch.Tensor]


class ShapeError(ValueError):
    """A tensor reached a public boundary with the wrong shape or dtype."""


def _fmt(shape: Sequence) -> str:
    return "(" + ", ".join("*" if s is None else str(int(s)) for s in shape) + ")"


def is_nhwc(x: torch.Tensor) -> bool:
    """A 4-D channels-last tensor that is not also plain contiguous (NHWC in memory)."""
    return x.ndim == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def assert_shape(tensor: torch.Tensor, ref_shape: Sequence[Dim], name: str = "tensor") -> None:
    """Check `tensor.shape` against `ref_shape`; `None` in `ref_shape` matches any size.

    Raises ShapeError naming the tensor, the expected and the received shape.
    """
    if not isinstance(tensor, torch.Tensor):
        raise ShapeError(f"{name}: expected a torch.Tensor of shape {_fmt(ref_shape)}, got {type(tensor).__name__}")
    if tensor.ndim != len(ref_shape):
        raise ShapeError(
            f"{name}: expected {len(ref_shape)} dimensions {_fmt(ref_shape)}, got {tensor.ndim} {_fmt(tensor.shape)}"
        )
    for idx, (size, ref) in enumerate(zip(tensor.shape, ref_shape)):
        if ref is None:
            continue
        if isinstance(ref, torch.Tensor):
            ref = int(ref)
        if int(size) != int(ref):
            raise ShapeError(
                f"{name}: expected shape {_fmt(ref_shape)}, got {_fmt(tensor.shape)} (dimension {idx} differs)"
            )


def assert_dtype(tensor: torch.Tensor, dtypes: Union[torch.dtype, Sequence[torch.dtype]], name: str = "tensor") -> None:
    """Check that `tensor.dtype` is one of `dtypes`."""
    if isinstance(dtypes, torch.dtype):
        dtypes = (dtypes,)
    if tensor.dtype not in tuple(dtypes):
        want = " or ".join(str(d).replace("torch.", "") for d in dtypes)
        raise ShapeError(f"{name}: expected dtype {want}, got {str(tensor.dtype).replace('torch.', '')}")


def assert_finite(tensor: torch.Tensor, name: str = "tensor") -> None:
    """Raise ValueError if `tensor` holds NaN or infinity."""
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")


def seeded_generator(seed: int, device: Union[str, torch.device] = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with `seed` (reproducible across runs)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def randn_seeded(shape: Sequence[int], seed: int, device: Optional[Union[str, torch.device]] = None) -> torch.Tensor:
    """Standard normal noise drawn on the CPU from `seed`, then moved: same values on every device."""
    out = torch.randn(tuple(shape), generator=seeded_generator(seed, "cpu"))
    return out.to(device) if device is not None else out
