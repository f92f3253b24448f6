import math

import pytest
import torch

from helpers import assert_close
from next3d.networks.discriminator import Discriminator, DiscriminatorEpilogue, MinibatchStdLayer
from torch_utils.misc import ShapeError


def test_minibatch_std_values():
    x = torch.randn(4, 6, 2, 2)
    y = MinibatchStdLayer(group_size=2)(x)
    assert y.shape == (4, 7, 2, 2)
    # Groups are samples (0, 2) and (1, 3).
    for i, j in [(0, 2), (1, 3)]:
        pair = torch.stack([x[i], x[j]])
        std = (pair.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert_close(y[i, 6], std.expand(2, 2), rtol=1e-5, atol=1e-6, name="std")
        assert_close(y[j, 6], std.expand(2, 2), rtol=1e-5, atol=1e-6, name="std")
    with pytest.raises(ShapeError, match="not divisible by the group size 4"):
        MinibatchStdLayer(group_size=4)(torch.randn(6, 2, 2, 2))


def test_epilogue_projection():
    ep = DiscriminatorEpilogue(8, cmap_dim=5, resolution=4, img_channels=3, mbstd_num_channels=0)
    x, cmap = torch.randn(3, 8, 4, 4), torch.randn(3, 5)
    feats = ep.out(ep.fc(ep.conv(x).flatten(1)))
    assert_close(ep(x, None, cmap), (feats * cmap).sum(1, keepdim=True) / math.sqrt(5), name="projection")


def test_discriminator_shapes_and_label(make_dual_d):
    d = Discriminator(c_dim=25, img_resolution=16, img_channels=3, channel_base=128, channel_max=16)
    img, c = torch.randn(4, 3, 16, 16), torch.randn(4, 25)
    out = d(img, c)
    assert out.shape == (4, 1) and torch.isfinite(out).all()
    assert not torch.allclose(d(img, c), d(img, c * 2 + 1))
    assert d.b16.fromrgb.weight.shape == (8, 3, 1, 1) and d.b4.conv.weight.shape == (16, 17, 3, 3)
    assert Discriminator(c_dim=0, img_resolution=8, img_channels=3)(torch.randn(2, 3, 8, 8), None).shape == (2, 1)
    with pytest.raises(ShapeError, match=r"img: expected shape \(\*, 3, 16, 16\)"):
        d(torch.randn(4, 3, 8, 8), c)


def test_dual_discriminator_inputs(make_dual_d):
    d = make_dual_d()
    assert d.b16.fromrgb.weight.shape[1] == 6 and d.resample_filter.shape == (4, 4)
    image, raw, c = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 8, 8), torch.randn(2, 25)
    out = d(image, raw, c)
    assert out.shape == (2, 1)
    assert not torch.allclose(out, d(image, raw + 1, c))  # image_raw is seen
    stacked = d.assemble(image, torch.randn(2, 3, 16, 16))
    assert stacked.shape == (2, 6, 16, 16) and torch.equal(stacked[:, :3], image)
    with pytest.raises(ShapeError, match="image_raw"):
        d(image, torch.randn(2, 4, 8, 8), c)
    with pytest.raises(ValueError, match="mesh_channels=0"):
        d(image, raw, c, image_mesh=torch.randn(2, 3, 16, 16))


def test_dual_discriminator_mesh_channels_and_label_noise(make_dual_d):
    d = make_dual_d(mesh_channels=3, c_noise=1.0)
    assert d.b16.fromrgb.weight.shape[1] == 9
    image, raw, mesh, c = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 8, 8), torch.randn(2, 3, 32, 32), torch.randn(2, 25)
    with pytest.raises(ValueError, match="image_mesh is None"):
        d(image, raw, c)
    d.eval()
    assert torch.equal(d(image, raw, c, image_mesh=mesh), d(image, raw, c, image_mesh=mesh))  # no noise in eval
    d.train()
    assert not torch.equal(d(image, raw, c, image_mesh=mesh), d(image, raw, c, image_mesh=mesh))
