import pytest
import torch

from helpers import assert_close
from next3d.networks.synthesis import SynthesisBlock, SynthesisLayer, SynthesisNetwork, ToRGBLayer
from torch_utils.misc import ShapeError


def _net(img_channels=5, img_resolution=16, **kw):
    return SynthesisNetwork(w_dim=16, img_resolution=img_resolution, img_channels=img_channels,
                            channel_base=128, channel_max=16, **kw)


def test_output_shapes_and_num_ws():
    for res, ch in [(8, 96), (16, 32), (32, 3)]:
        net = _net(img_channels=ch, img_resolution=res)
        assert net.num_ws == 2 * (res.bit_length() - 1) - 2
        img = net(torch.randn(2, net.num_ws, 16))
        assert img.shape == (2, ch, res, res) and img.dtype == torch.float32
        assert torch.isfinite(img).all() and img.std() > 1e-3
    net = _net()
    assert [b for b in net.block_resolutions] == [4, 8, 16]
    assert net.b4.const.shape == (16, 4, 4) and net.b16.conv0.weight.shape == (8, 16, 3, 3)
    assert net.b16.conv1.noise_const.shape == (16, 16) and net.b16.torgb.weight.shape == (5, 8, 1, 1)
    assert "img_channels=5" in repr(net) and "architecture=skip" in repr(net.b8)
    with pytest.raises(ValueError, match="power of two"):
        _net(img_resolution=24)


def test_ws_shape_is_checked():
    net = _net()
    with pytest.raises(ShapeError, match=r"ws: expected shape \(\*, 6, 16\)"):
        net(torch.randn(2, 5, 16))
    with pytest.raises(ShapeError, match="SynthesisBlock ws"):
        net.b8(torch.randn(2, 16, 4, 4), None, torch.randn(2, 2, 16))


def test_noise_modes():
    net = _net()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    ws = torch.randn(2, net.num_ws, 16)
    assert torch.equal(net(ws, noise_mode="const"), net(ws, noise_mode="const"))
    assert torch.equal(net(ws, noise_mode="none"), net(ws, noise_mode="none"))
    a, b = net(ws, noise_mode="random"), net(ws, noise_mode="random")
    assert (a - b).abs().max() > 1e-4
    assert (net(ws, noise_mode="const") - net(ws, noise_mode="none")).abs().max() > 1e-4
    torch.manual_seed(3)
    c = net(ws)
    torch.manual_seed(3)
    assert torch.equal(c, net(ws))  # same seed -> same output
    with pytest.raises(ValueError, match="noise_mode"):
        net(ws, noise_mode="fixed")


def test_ws_split_shares_torgb_and_next_conv():
    net = _net()
    ws = torch.zeros(1, net.num_ws, 16)
    parts = net.split_ws(ws + torch.arange(net.num_ws).reshape(1, -1, 1))
    assert [p[0, :, 0].tolist() for p in parts] == [[0, 1], [1, 2, 3], [3, 4, 5]]


def test_fused_and_unfused_modconv_agree():
    net = _net()
    ws = torch.randn(3, net.num_ws, 16)
    assert_close(net(ws, noise_mode="const", fused_modconv=True), net(ws, noise_mode="const", fused_modconv=False),
                 rtol=1e-4, atol=1e-4, name="fused vs unfused")


def test_fp16_request_is_ignored_on_cpu():
    net = _net(num_fp16_res=4, conv_clamp=256)
    assert net.b16.use_fp16 and net.b8.use_fp16
    ref = _net(num_fp16_res=0)
    ref.load_state_dict(net.state_dict())
    ws = torch.randn(2, net.num_ws, 16)
    out = net(ws, noise_mode="const")
    assert out.dtype == torch.float32
    assert_close(out, ref(ws, noise_mode="const"), name="fp16 on CPU == fp32")


def test_layer_and_torgb_shapes_and_resnet_architecture():
    layer = SynthesisLayer(4, 6, w_dim=16, resolution=8, up=2)
    assert layer(torch.randn(2, 4, 4, 4), torch.randn(2, 16)).shape == (2, 6, 8, 8)
    with pytest.raises(ShapeError, match="SynthesisLayer input"):
        layer(torch.randn(2, 4, 8, 8), torch.randn(2, 16))
    rgb = ToRGBLayer(6, 3, w_dim=16)
    assert rgb(torch.randn(2, 6, 8, 8), torch.randn(2, 16)).shape == (2, 3, 8, 8)
    block = SynthesisBlock(4, 6, w_dim=16, resolution=8, img_channels=3, is_last=True, architecture="resnet")
    x, img = block(torch.randn(2, 4, 4, 4), None, torch.randn(2, 3, 16))
    assert x.shape == (2, 6, 8, 8) and img.shape == (2, 3, 8, 8) and hasattr(block, "skip")
