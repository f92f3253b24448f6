import pytest
import torch

from next3d.networks.style_unet import StyleUNet, blending_style_unet, mouth_style_unet
from torch_utils.misc import ShapeError

SMALL = dict(channel_base=256, channel_max=16, mapping_kwargs=dict(num_layers=2))


def test_mouth_like_unet_shapes_and_gradients():
    # Mouth layout at tiny size: cond 16^2 -> encoder 16 -> 4 (2 blocks), decoder to 32^2.
    net = StyleUNet(8, 25, 16, img_resolution=32, img_channels=6, cond_channels=5, in_size=16, final_size=4,
                    num_cond_res=16, **SMALL)
    syn = net.synthesis
    assert len(syn.encoder) == 2 and len(syn.fusion) == 3 and syn.num_fused == 2
    assert syn.fusion[0].weight.shape[1] == 16 and syn.fusion[1].weight.shape[1] == 32
    assert syn.unused_prefixes() == ["b4.", "fusion.2."]
    cond, ws = torch.randn(2, 5, 16, 16, requires_grad=True), torch.randn(2, syn.num_ws, 16)
    out = syn(cond, ws, noise_mode="const")
    assert out.shape == (2, 6, 32, 32) and out.dtype == torch.float32
    out.square().mean().backward()
    assert cond.grad.abs().max() > 0  # the conditioning image reaches the output
    unused = tuple(syn.unused_prefixes())
    for name, p in syn.named_parameters():
        if name.startswith(unused):
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().max() > 0, name


def test_blending_like_unet_and_full_forward():
    # Blending layout at tiny size: cond 32^2 -> encoder 32 -> 8 (2 blocks), decoder 16 -> 32.
    net = StyleUNet(8, 25, 16, img_resolution=32, img_channels=4, cond_channels=4, in_size=32, final_size=8,
                    num_cond_res=32, **SMALL)
    syn = net.synthesis
    assert syn.decoder_resolutions == [16, 32] and syn.num_fused == 2
    assert syn.unused_prefixes() == ["b4.", "b8.", "fusion.2."]
    cond = torch.randn(2, 4, 32, 32)
    ws = torch.randn(2, syn.num_ws, 16)
    a = syn(cond, ws, noise_mode="const")
    assert a.shape == (2, 4, 32, 32)
    assert not torch.allclose(a, syn(cond * 0.5, ws, noise_mode="const"))
    assert net(cond, torch.randn(2, 8), torch.randn(2, 25), noise_mode="none").shape == (2, 4, 32, 32)
    with pytest.raises(ShapeError, match="cond"):
        syn(torch.randn(2, 4, 16, 16), ws)
    with pytest.raises(ValueError, match="final_size=32 must be below in_size=32"):
        StyleUNet(8, 25, 16, img_resolution=64, img_channels=4, in_size=32, final_size=32)


def test_published_presets_on_meta():
    with torch.device("meta"):
        mouth, blend = mouth_style_unet(), blending_style_unet()
    assert len(mouth.synthesis.encoder) == 4 and len(blend.synthesis.encoder) == 3
    assert mouth.synthesis.num_ws == blend.synthesis.num_ws == 14
    assert mouth.synthesis.unused_prefixes() == ["b4.", "fusion.4."]
    assert blend.synthesis.unused_prefixes() == ["b4.", "b8.", "b16.", "b32.", "fusion.3."]
