"""The fast arrangements of the work compute what the published arrangement computes."""

import dataclasses

import pytest
import torch

from torch_utils import compute_policy as cp
from torch_utils.ops import bias_act, upfirdn2d


def test_policy_is_a_context_and_validates():
    assert cp.current() == cp.FAST
    with cp.use(cp.PUBLISHED):
        assert cp.current().ops == "ref" and not cp.current().channels_last
        with cp.use(cp.FAST):
            assert cp.current() is cp.FAST
        assert cp.current() is cp.PUBLISHED
    assert cp.current() is cp.FAST
    with pytest.raises(ValueError, match="modconv"):
        cp.ComputePolicy(modconv="grouped")
    with pytest.raises(TypeError, match="ComputePolicy"):
        with cp.use("ref"):
            pass


@pytest.mark.parametrize("act,clamp", [("lrelu", 256.0), ("linear", None), ("lrelu", 0.5)])
@pytest.mark.parametrize("impl", ["ref", "auto"])
def test_bias_act_inplace_and_channels_last(act, clamp, impl):
    torch.manual_seed(0)
    x = torch.randn(2, 12, 5, 7)
    b = torch.randn(12)
    want = bias_act.bias_act(x, b, act=act, gain=1.3, clamp=clamp, impl="ref")
    nhwc = x.contiguous(memory_format=torch.channels_last)
    got = bias_act.bias_act(nhwc, b, act=act, gain=1.3, clamp=clamp, impl=impl)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    for t in (x.clone(), nhwc.clone()):
        with torch.no_grad():
            out = bias_act.bias_act(t, b, act=act, gain=1.3, clamp=clamp, impl=impl, inplace=True)
        assert out.data_ptr() == t.data_ptr()  # written into the input
        torch.testing.assert_close(out, want, atol=1e-6, rtol=1e-6)
    # With autograd recording, `inplace` is ignored and the input stays as it was.
    xg = x.clone().requires_grad_(True)
    y = bias_act.bias_act(xg, b, act=act, clamp=clamp, impl=impl, inplace=True)
    assert y.data_ptr() != xg.data_ptr()
    torch.testing.assert_close(xg.detach(), x)
    # The published policy never writes in place.
    t = x.clone()
    with torch.no_grad(), cp.use(cp.PUBLISHED):
        out = bias_act.bias_act(t, b, act=act, gain=1.3, clamp=clamp, impl=impl, inplace=True)
    assert out.data_ptr() != t.data_ptr()
    torch.testing.assert_close(t, x)


def test_upfirdn2d_reference_keeps_channels_last():
    torch.manual_seed(0)
    x = torch.randn(2, 6, 9, 9)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    want = upfirdn2d.upfirdn2d(x, f, padding=[1, 1, 1, 1], impl="ref")
    got = upfirdn2d.upfirdn2d(x.contiguous(memory_format=torch.channels_last), f, padding=[1, 1, 1, 1])
    assert got.shape == want.shape == (2, 6, 8, 8)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("batch,res,up", [(1, 8, 1), (3, 8, 1), (2, 8, 2), (1, 4, 2)])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modconv_forms_agree(batch, res, up, demodulate):
    from next3d.networks.layers import make_filter, modulated_conv2d

    torch.manual_seed(1)
    x = torch.randn(batch, 16, res, res)
    w = torch.randn(8, 16, 3, 3)
    s = torch.randn(batch, 16) + 1
    noise = torch.randn(res * up, res * up) * 0.1
    f = make_filter([1, 3, 3, 1])
    kw = dict(noise=noise, up=up, padding=1, resample_filter=f, demodulate=demodulate, flip_weight=(up == 1))
    with torch.no_grad():
        with cp.use(cp.PUBLISHED):
            grouped = modulated_conv2d(x, w, s, fused_modconv=True, **kw)
        fast = modulated_conv2d(x, w, s, fused_modconv=True, **kw)
        shared = modulated_conv2d(x, w, s, fused_modconv=False, **kw)
    assert fast.shape == grouped.shape == (batch, 8, res * up, res * up)
    torch.testing.assert_close(fast, grouped, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(shared, grouped, atol=1e-4, rtol=1e-4)


def test_generator_fast_policy_matches_published():
    """The tiny generator: every fast path together against the published arrangement."""
    from next3d.generate import deterministic_rays, load_generator
    from next3d.render.cameras import orbit_label

    G = load_generator("random:tiny", device="cpu").eval()
    torch.manual_seed(0)
    z = torch.randn(2, G.z_dim)
    c = orbit_label(torch.tensor([-0.3, 0.3]), 0.0)
    flame = {"jaw": torch.tensor([[0.0, 0, 0], [0.25, 0, 0]])}
    with torch.no_grad(), deterministic_rays(G):
        with cp.use(cp.PUBLISHED):
            pub = G(z, c, flame, noise_mode="const")
        alone = [dataclasses.replace(cp.PUBLISHED, **{lever: True}) for lever in ("fold_filter_padding",
                                                                                "upconv_channels_last",
                                                                                "planes_mean_as_sampled")]
        for policy in (cp.FAST, cp.ComputePolicy(channels_last=True), cp.ComputePolicy(polyphase_up=True), *alone):
            with cp.use(policy):
                fast = G(z, c, flame, noise_mode="const")
            for key in ("image", "image_raw", "image_depth"):
                assert fast[key].shape == pub[key].shape
                torch.testing.assert_close(fast[key], pub[key], atol=2e-4, rtol=1e-4)
    assert float(pub["image"].std()) > 1e-3  # not a constant image


def _up_convolutions(off, on, groups, flip_weight, seed):
    """conv2d_resample's 2x up-convolution under policies `off` and `on`: (x, want, got), and the
    input gradients of both compared."""
    from torch_utils.ops import conv2d_resample

    torch.manual_seed(seed)
    x = torch.randn(2, 4 * groups, 5, 6, requires_grad=True)
    w = torch.randn(6 * groups, 4, 3, 3)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    kw = dict(f=f, up=2, padding=1, groups=groups, flip_weight=flip_weight)
    with cp.use(off):
        want = conv2d_resample.conv2d_resample(x, w, **kw)
    with cp.use(on):
        got = conv2d_resample.conv2d_resample(x, w, **kw)
    assert got.shape == want.shape == (2, 6 * groups, 10, 12)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    gx_want, = torch.autograd.grad(want.square().sum(), x)
    gx_got, = torch.autograd.grad(got.square().sum(), x)
    torch.testing.assert_close(gx_got, gx_want, atol=1e-4, rtol=1e-4)
    return x, want, got


@pytest.mark.parametrize("flip_weight", [False, True])
@pytest.mark.parametrize("groups", [1, 2])
def test_polyphase_up_convolution_equals_transposed_form(flip_weight, groups):
    _up_convolutions(cp.ComputePolicy(polyphase_up=False), cp.ComputePolicy(polyphase_up=True), groups, flip_weight, 2)


@pytest.mark.parametrize("groups", [1, 2])
def test_up_convolution_in_channels_last_equals_nchw(groups):
    from torch_utils.ops import conv2d_resample

    torch.manual_seed(3)
    x = torch.randn(2, 4 * groups, 5, 6)
    w = torch.randn(6 * groups, 4, 3, 3)
    kw = dict(f=upfirdn2d.setup_filter([1, 3, 3, 1]), up=2, padding=1, groups=groups)
    with torch.no_grad():
        with cp.use(cp.ComputePolicy(upconv_channels_last=False)):
            want = conv2d_resample.conv2d_resample(x, w, **kw)
        with cp.use(cp.ComputePolicy(upconv_channels_last=True)):
            got = conv2d_resample.conv2d_resample(x, w, **kw)
            # Other dtypes keep the NCHW path (the NHWC route is for float32 on the CPU).
            assert not conv2d_resample.upconv_nhwc(x.double())
    assert want.is_contiguous() and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # With autograd on the lever stays off (its backward was slower): NCHW out, same gradients.
    _, _, with_grad = _up_convolutions(cp.ComputePolicy(upconv_channels_last=False),
                                       cp.ComputePolicy(upconv_channels_last=True), groups, False, 3)
    assert with_grad.is_contiguous()


def _standard_nhwc(t: torch.Tensor) -> bool:
    """Channels-last with the batch stride oneDNN expects (C*H*W, even at batch 1)."""
    n, c, h, w = t.shape
    return t.stride() == (c * h * w, 1, w * c, c)


@pytest.mark.parametrize("up", [1, 2])
def test_batch1_grouped_modconv_keeps_standard_nhwc_strides(up):
    """A batch-1 NHWC input to the grouped form: the output is NHWC with a batch stride of
    C*H*W. A reshape to its own shape gives batch stride C, which torch's convolution does not
    take for channels-last: it copied the input to NCHW and ran the slower NCHW kernel."""
    from next3d.networks.layers import make_filter, modulated_conv2d

    torch.manual_seed(4)
    x = torch.randn(1, 16, 6, 6)
    w = torch.randn(8, 16, 3, 3)
    s = torch.randn(1, 16) + 1
    kw = dict(up=up, padding=1, resample_filter=make_filter([1, 3, 3, 1]), flip_weight=(up == 1), fused_modconv=True)
    with torch.no_grad(), cp.use(dataclasses.replace(cp.FAST, modconv="published", upconv_channels_last=True)):
        want = modulated_conv2d(x, w, s, **kw)
        got = modulated_conv2d(x.contiguous(memory_format=torch.channels_last), w, s, **kw)
    assert got.shape == want.shape == (1, 8, 6 * up, 6 * up)
    assert _standard_nhwc(got), got.stride()
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_synthesis_block_passes_nhwc_on_to_its_up_convolution():
    """Under upconv_channels_last an NHWC input stays NHWC through the block (no NCHW copy
    that conv0 would undo); the values are those of the NCHW block."""
    from next3d.networks.synthesis import SynthesisBlock

    torch.manual_seed(5)
    block = SynthesisBlock(8, 8, w_dim=16, resolution=16, img_channels=3, is_last=False).eval()
    x = torch.randn(1, 8, 8, 8)
    ws = torch.randn(1, block.num_conv + block.num_torgb, 16)
    with torch.no_grad():
        with cp.use(dataclasses.replace(cp.FAST, upconv_channels_last=False)):
            want_x, want_img = block(x, None, ws, noise_mode="const")
        with cp.use(dataclasses.replace(cp.FAST, upconv_channels_last=True)):
            got_x, got_img = block(x.contiguous(memory_format=torch.channels_last), None, ws, noise_mode="const")
    assert want_x.is_contiguous() and _standard_nhwc(got_x), got_x.stride()
    assert got_img.is_contiguous()  # the running image is handed on NCHW
    torch.testing.assert_close(got_x, want_x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_img, want_img, atol=1e-5, rtol=1e-5)
