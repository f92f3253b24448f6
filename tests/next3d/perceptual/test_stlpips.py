"""ST-LPIPS and the shift-tolerant trunks: weights load by name, distance properties."""

import importlib.util

import pytest

if importlib.util.find_spec("stlpips_pytorch") is None:
    pytest.skip("needs the stlpips-pytorch package (its weight files)", allow_module_level=True)

import math

import torch

from next3d.perceptual import STLPIPS, PerceptualError, VGGFeatures, load_state_dict, weights_path
from next3d.perceptual.backbones import shift_tolerant_alexnet, shift_tolerant_vgg16
from next3d.perceptual.blurpool import BlurPool, binomial_filter
from next3d.perceptual.weights import load_into
from torch_utils.misc import ShapeError


def smooth_image(size=64, seed=0):
    """A deterministic natural-ish image (1, 3, S, S) in [-1, 1]: blobs, an edge, a ramp."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    img = torch.zeros(3, size, size)
    for _ in range(6):
        cx, cy, r = torch.rand(3, generator=g)
        col = torch.rand(3, 1, 1, generator=g) * 2 - 1
        blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (0.02 + 0.05 * r))
        img = img + col * blob
    img = img + 0.5 * (xx > 0.6).float() - 0.3 * yy
    return img.clamp(-1, 1)[None]


@pytest.fixture(scope="module")
def lpips_vgg():
    return STLPIPS("vgg")


def test_weights_file_found_and_keys_match_module():
    for net in ("vgg", "alex"):
        sd = load_state_dict(weights_path(net))
        model = STLPIPS(net, pretrained=False)
        assert set(model.state_dict()) == set(sd)
        # The shipped blur filters are the normalised [1, 2, 1] binomial.
        filt = [v for k, v in sd.items() if k.endswith(".filt")]
        assert len(filt) == (4 if net == "vgg" else 3)
        for f in filt:
            assert torch.allclose(f[0, 0], binomial_filter(3), atol=1e-7)
    loaded = STLPIPS("alex")
    sd = load_state_dict(weights_path("alex"))
    assert torch.equal(getattr(loaded.net.slice5, "13").weight, sd["net.slice5.13.weight"])
    assert torch.equal(loaded.lin2.model[1].weight, sd["lin2.model.1.weight"])


def test_wrong_weights_give_one_line_error(tmp_path):
    sd = load_state_dict(weights_path("alex"))
    sd["lin0.model.1.weight"] = torch.zeros(1, 3, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    with pytest.raises(PerceptualError, match=r"bad\.pth.*wrong shape lin0\.model\.1\.weight"):
        STLPIPS("alex", weights_file=path)
    with pytest.raises(PerceptualError, match="net: expected one of vgg, alex"):
        STLPIPS("squeeze")
    with pytest.raises(PerceptualError, match="no such weights file"):
        STLPIPS("vgg", weights_file=tmp_path / "missing.pth")


def test_blurpool_sizes_and_constant_preserved():
    bp = BlurPool(2)
    for size in (8, 9, 31, 32):
        out = bp(torch.full((1, 2, size, size), 0.7))
        assert out.shape[-1] == (size + 1) // 2 + 1
        assert torch.allclose(out, torch.full_like(out, 0.7), atol=1e-6)
    # A single bright pixel spreads with the binomial weights (reflection-padded).
    x = torch.zeros(1, 2, 9, 9)
    x[..., 5, 5] = 16.0
    out = bp(x)  # output pixel j covers padded pixels 2j..2j+2, i.e. input pixels 2j-2..2j
    assert out[0, 0, 3, 3].item() == pytest.approx(4.0)   # window 4..6 has pixel 5 at its centre tap: 4/16
    assert out[0, 0, 3, 2].item() == 0.0 and out[0, 0, 3, 4].item() == 0.0  # windows 2..4 and 6..8 miss it
    with pytest.raises(ValueError, match="too small"):
        bp(torch.zeros(1, 2, 2, 2))


def test_backbone_output_shapes():
    feats = shift_tolerant_vgg16()(torch.zeros(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 64, 64), (128, 33, 33), (256, 17, 17), (512, 9, 9),
                                                    (512, 5, 5)]
    feats = shift_tolerant_alexnet()(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [64, 192, 384, 256, 256]
    with pytest.raises(ValueError, match="at least 32x32"):
        shift_tolerant_vgg16()(torch.zeros(1, 3, 16, 16))


def test_distance_properties_vgg(lpips_vgg):
    x = smooth_image(64, seed=1)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    with torch.no_grad():
        batch = torch.cat([x, x, (x + 0.05 * noise).clamp(-1, 1), (x + 0.2 * noise).clamp(-1, 1),
                           torch.roll(x, 1, dims=3)])
        ref = x.expand_as(batch)
        d = lpips_vgg(ref, batch)
        d_rev = lpips_vgg(batch, ref)
    assert d.shape == (5,)
    assert d[0].item() == 0.0 and d[1].item() == 0.0
    assert torch.allclose(d, d_rev, atol=1e-6)              # symmetric
    assert 0 < d[2] < d[3]                                   # grows with noise
    assert d[4] < 0.5 * d[2]                                 # a 1-pixel shift is far below light noise
    assert (d >= 0).all()


def test_distance_alex_and_gradients():
    model = STLPIPS("alex")
    x = smooth_image(48, seed=2)
    y = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    y.requires_grad_(True)
    d, layers = model(x, y, return_layers=True)
    assert len(layers) == 5 and math.isclose(sum(t.item() for t in layers), d.item(), rel_tol=1e-5)
    d.sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in model.parameters())
    shifted = torch.roll(x, 1, dims=2)
    with torch.no_grad():
        assert model(x, shifted).item() < 0.5 * model(x, y.detach()).item()
    with pytest.raises(ShapeError):
        model(x, x[:, :, :40])


def test_vgg_features_match_lpips_trunk(lpips_vgg):
    feats = VGGFeatures()
    x = smooth_image(32, seed=3)
    with torch.no_grad():
        a = feats(x)
        b = lpips_vgg.net(lpips_vgg.scaling_layer(x))
    assert len(a) == 5 and all(torch.equal(u, v) for u, v in zip(a, b))
    assert not feats.training


def test_load_into_reports_missing_keys():
    module = BlurPool(3)
    with pytest.raises(PerceptualError, match="missing filt"):
        load_into(module, {}, "test weights")
