"""upfirdn2d: compiled kernels against the reference, resampling helpers, and bad input."""

import pytest
import torch

from helpers import DEVICES, assert_close
from torch_utils import compute_policy, custom_ops
from torch_utils.misc import ShapeError
from torch_utils.ops import upfirdn2d

IMPL = {"cpu": "cpp", "cuda": "cuda"}


def _compiled_or_skip(device):
    if custom_ops.ops_mode() == "ref":
        pytest.skip("NEXT3D_OPS=ref")
    module = upfirdn2d._LOADERS[device]()
    assert module is not None, custom_ops.statuses()[f"upfirdn2d_{device}"].reason
    return IMPL[device]


CASES = [
    # filter taps, separable, up, down, padding, flip, gain
    ([1, 3, 3, 1], None, 2, 1, [2, 1, 2, 1], False, 4.0),
    ([1, 3, 3, 1], None, 1, 2, [1, 1, 1, 1], False, 1.0),
    ([1, 2, 1], None, 1, 1, 1, True, 2.0),
    ([1, 3, 3, 1], None, (2, 1), (1, 2), [0, 3, -1, 2], False, 1.5),
    ([1, 3, 5, 3, 1, 2, 4, 1], None, 2, 1, [4, 3, 4, 3], False, 4.0),  # 8 taps: separable
    ([[1, 2, 0], [0, 1, 3]], None, 3, 2, [-1, 2, 1, 0], True, 1.0),  # non-square 2-D
    (None, None, 1, 1, [-1, -2, 0, 1], False, 1.0),  # pure crop/pad
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_compiled_matches_reference(device, case):
    impl = _compiled_or_skip(device)
    taps, separable, up, down, padding, flip, gain = CASES[case]
    f = upfirdn2d.setup_filter(taps, device=device, separable=separable)
    g = torch.Generator().manual_seed(case)
    x = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64).to(device).requires_grad_()
    kw = dict(up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
    outs = []
    for which in ("ref", impl):
        y = upfirdn2d.upfirdn2d(x, f, impl=which, **kw)
        w = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=y.dtype).to(device)
        w.requires_grad_()
        (gx,) = torch.autograd.grad((y * w).sum(), [x], create_graph=True)
        # The op is linear, so the second derivative flows to the incoming gradient w.
        (g2,) = torch.autograd.grad((gx ** 2).sum(), [w])
        outs.append((y, gx, g2))
    for name, r, c in zip(("y", "dx", "d2w"), *outs):
        assert r.shape == c.shape, name
        assert_close(c, r, rtol=1e-9, atol=1e-9, name=f"case {case} {name}")
    assert float(outs[0][0].detach().abs().sum()) > 0


@pytest.mark.parametrize("case", range(len(CASES)))
def test_cuda_algorithm_on_cpu(case):
    """The per-pixel math of the CUDA kernel (shared header), run on the CPU, equals the reference."""
    _compiled_or_skip("cpu")
    module = upfirdn2d._LOADERS["cpu"]()
    taps, separable, up, down, padding, flip, gain = CASES[case]
    f = upfirdn2d.setup_filter(taps, separable=False if taps is not None and len(taps) >= 8 else separable)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    upx, upy = upfirdn2d._parse_scaling(up)
    downx, downy = upfirdn2d._parse_scaling(down)
    px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)
    got = module.upfirdn2d_pointwise(x, f, upx, upy, downx, downy, px0, px1, py0, py1, flip, gain)
    ref = upfirdn2d._upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
    assert_close(got, ref, rtol=1e-12, atol=1e-12, name=f"case {case}")


@pytest.mark.parametrize("device", DEVICES)
def test_float32_helpers(device):
    impl = _compiled_or_skip(device)
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    x = torch.randn(2, 4, 8, 8, device=device)
    for fn, shape in ((upfirdn2d.upsample2d, (2, 4, 16, 16)), (upfirdn2d.downsample2d, (2, 4, 4, 4)),
                      (upfirdn2d.filter2d, (2, 4, 8, 8))):
        ref = fn(x, f, impl="ref")
        got = fn(x, f, impl=impl)
        assert got.shape == shape
        assert_close(got, ref, rtol=1e-5, atol=1e-5, name=fn.__name__)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_half():
    _compiled_or_skip("cuda")
    f = upfirdn2d.setup_filter([1, 3, 3, 1], device="cuda")
    x = torch.randn(2, 4, 16, 16, device="cuda")
    ref = upfirdn2d.upsample2d(x, f, impl="ref")
    got = upfirdn2d.upsample2d(x.half(), f, impl="cuda")
    assert got.dtype == torch.float16
    assert_close(got.float(), ref, rtol=1e-2, atol=1e-2, name="half")


def test_resampling_preserves_constants():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.full((1, 2, 8, 8), 3.0)
    up = upfirdn2d.upsample2d(x, f, impl="ref")
    down = upfirdn2d.downsample2d(x, f, impl="ref")
    # Away from the zero-padded border the mean brightness is kept exactly.
    assert_close(up[:, :, 2:-2, 2:-2], torch.full_like(up[:, :, 2:-2, 2:-2], 3.0), name="upsample")
    assert_close(down[:, :, 1:-1, 1:-1], torch.full_like(down[:, :, 1:-1, 1:-1], 3.0), name="downsample")


def test_setup_filter():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and f.dtype == torch.float32
    assert_close(f.sum(), torch.tensor(1.0), name="normalised")
    assert_close(f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64, name="outer")
    assert upfirdn2d.setup_filter([1] * 8).shape == (8,)
    assert_close(upfirdn2d.setup_filter([1, 3, 3, 1], gain=4).sum(), torch.tensor(4.0), name="gain")
    assert_close(upfirdn2d.setup_filter([1, 2], flip_filter=True, normalize=False),
                 torch.tensor([[4.0, 2], [2, 1]]), name="flip")
    with pytest.raises(ShapeError, match="scalar, 1-D or 2-D"):
        upfirdn2d.setup_filter(torch.ones(2, 2, 2))


def test_reference_upsample_by_hand():
    # up=2 with a 2-tap box filter (unnormalised) is nearest-neighbour upsampling.
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    f = upfirdn2d.setup_filter([1, 1], normalize=False)
    y = upfirdn2d._upfirdn2d_ref(x, f, up=2, padding=[1, 0, 1, 0])
    expect = torch.tensor([[1.0, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    assert_close(y[0, 0], expect, name="nearest")


def _filter_by_hand(x, f, px, py, gain, flip):
    """No upsampling, equal padding (px, py) per axis: zero-pad, then a true convolution
    written out as sums of shifted slices (2-D f; a 1-D f is its outer product)."""
    f = torch.as_tensor(f, dtype=torch.float64)
    f = torch.outer(f, f) * gain if f.ndim == 1 else f * gain
    if not flip:
        f = f.flip([0, 1])
    x = torch.nn.functional.pad(x.double(), [px, px, py, py])
    fh, fw = f.shape
    h, w = x.shape[2] - fh + 1, x.shape[3] - fw + 1
    out = torch.zeros(*x.shape[:2], h, w, dtype=torch.float64)
    for i in range(fh):
        for j in range(fw):
            out += f[i, j] * x[:, :, i:i + h, j:j + w]
    return out


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("taps, px, py, flip, gain", [
    ([[1, 3, 3, 1], [3, 9, 9, 3], [3, 9, 9, 3], [1, 3, 3, 1]], 1, 1, False, 4.0),  # the filter after an up-conv
    ([[1, 2, 0], [0, 1, 3]], 2, 0, True, 1.0),
    ([1, 3, 5, 3, 1, 2, 4, 1], 3, 2, False, 2.0),  # separable: padding split between the two passes
])
def test_equal_padding_is_left_to_the_convolution(layout, taps, px, py, flip, gain):
    # Equal padding per axis goes into conv2d's own padding (no padded copy); the result must be
    # the zero-pad-then-filter sum exactly as written out by hand, for either memory layout.
    x = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(1))
    if layout == "nhwc":
        x = x.contiguous(memory_format=torch.channels_last)
    f = torch.tensor(taps, dtype=torch.float32)
    y = upfirdn2d._upfirdn2d_ref(x, f, padding=[px, px, py, py], flip_filter=flip, gain=gain)
    expect = _filter_by_hand(x, f, px, py, gain, flip)  # a separable f: gain ** 0.5 per pass, gain in all
    assert y.shape == expect.shape
    assert_close(y.double(), expect, atol=1e-4, name=f"{layout} pad {px},{py}")
    # The published arrangement (a padded copy first) gives the same numbers.
    with compute_policy.use(compute_policy.PUBLISHED):
        published = upfirdn2d._upfirdn2d_ref(x, f, padding=[px, px, py, py], flip_filter=flip, gain=gain)
    assert_close(published, y, atol=1e-5, name="published padding")


@pytest.mark.parametrize("impl", ["ref", "auto"])
def test_bad_inputs(impl):
    x = torch.randn(1, 2, 4, 4)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    with pytest.raises(ShapeError, match=r"x must be a 4-D tensor \(N, C, H, W\), got shape \(2, 4, 4\)"):
        upfirdn2d.upfirdn2d(x[0], f, impl=impl)
    with pytest.raises(ShapeError, match=r"filter must be a 1-D \(fw,\) or 2-D \(fh, fw\) tensor, got shape \(1, 4, 4\)"):
        upfirdn2d.upfirdn2d(x, f[None], impl=impl)
    with pytest.raises(ShapeError, match="filter must be float32"):
        upfirdn2d.upfirdn2d(x, f.double(), impl=impl)
    with pytest.raises(ShapeError, match="floating point"):
        upfirdn2d.upfirdn2d(x.long(), f, impl=impl)
    with pytest.raises(ValueError, match="up factors must be >= 1"):
        upfirdn2d.upfirdn2d(x, f, up=0, impl=impl)
    with pytest.raises(ValueError, match="padding must be"):
        upfirdn2d.upfirdn2d(x, f, padding=[1, 2, 3], impl=impl)
    with pytest.raises(ShapeError, match="gives an empty output"):
        upfirdn2d.upfirdn2d(x, f, padding=-3, impl=impl)
