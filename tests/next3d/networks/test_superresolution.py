import pytest
import torch

from next3d.networks.superresolution import SuperresolutionHybrid4X
from torch_utils.misc import ShapeError


def test_shapes_and_style_source():
    sr = SuperresolutionHybrid4X(channels=6, img_resolution=32, w_dim=16, block_channels=(8, 4))
    assert sr.input_resolution == 8
    assert sr.block0.conv0.weight.shape == (8, 6, 3, 3) and sr.block1.conv1.noise_const.shape == (32, 32)
    feats = torch.randn(2, 6, 16, 16)  # resized to 8^2 first
    rgb = feats[:, :3]
    ws = torch.randn(2, 5, 16)
    out = sr(rgb, feats, ws, noise_mode="none")
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32
    ws2 = ws.clone()
    ws2[:, :-1] = torch.randn(2, 4, 16)  # only ws[:, -1] styles the blocks
    assert torch.equal(out, sr(rgb, feats, ws2, noise_mode="none"))
    ws2[:, -1] += 1
    assert not torch.allclose(out, sr(rgb, feats, ws2, noise_mode="none"))
    # The raw RGB is the skip image: it passes through (upsampled) into the output.
    assert not torch.allclose(out, sr(rgb + 1, feats, ws, noise_mode="none"))
    with pytest.raises(ShapeError, match="rgb"):
        sr(torch.randn(2, 3, 8, 8), feats, ws)
