import math

import pytest
import torch
import torch.nn.functional as F

from helpers import assert_close
from next3d.networks.decoder import TriPlaneDecoder
from next3d.networks.layers import FullyConnectedLayer
from torch_utils.misc import ShapeError


def test_state_dict_names_and_shapes_match_published():
    dec = TriPlaneDecoder()
    shapes = {k: tuple(v.shape) for k, v in dec.state_dict().items()}
    assert shapes == {"net.0.weight": (64, 32), "net.0.bias": (64,), "net.2.weight": (33, 64), "net.2.bias": (33,)}
    assert sum(p.numel() for p in dec.parameters()) == 4257  # "decoder 4.3 K" in the design notes


def test_outputs_shapes_range_and_manual_formula():
    dec = TriPlaneDecoder()
    with torch.no_grad():
        dec.net[0].bias.normal_()
        dec.net[2].bias.normal_(std=5.0)  # push features into both sigmoid tails
    x = torch.randn(2, 3, 7, 32)
    with torch.no_grad():
        out = dec(x)
    assert out["sigma"].shape == (2, 7, 1) and out["features"].shape == (2, 7, 32)
    assert float(out["features"].min()) > -0.001 and float(out["features"].max()) < 1.001
    assert float(out["features"].min()) < 0.05 and float(out["features"].max()) > 0.95
    # Equalised lr: weights scaled by 1/sqrt(fan_in) at run time.
    m = x.mean(1)
    h = F.softplus(m @ (dec.net[0].weight / math.sqrt(32)).t() + dec.net[0].bias)
    y = h @ (dec.net[2].weight / 8.0).t() + dec.net[2].bias
    assert_close(out["sigma"], y[..., :1], name="sigma")
    assert_close(out["features"], torch.sigmoid(y[..., 1:]) * 1.002 - 0.001, name="features")


def test_plane_order_does_not_matter_and_errors():
    dec = TriPlaneDecoder(in_channels=4, hidden_channels=8, out_channels=3)
    x = torch.randn(1, 3, 5, 4)
    assert_close(dec(x)["features"], dec(x.flip(1))["features"], name="mean over planes")
    with pytest.raises(ShapeError, match="plane features"):
        dec(torch.randn(1, 2, 5, 4))


def test_lr_multiplier_keeps_effective_weights():
    torch.manual_seed(0)
    a = TriPlaneDecoder(in_channels=16, hidden_channels=4, lr_multiplier=0.01).net[0]
    assert isinstance(a, FullyConnectedLayer)
    assert 50 < float(a.weight.detach().std()) < 200  # stored weights are N(0, 1/lr^2)
    x = torch.randn(3, 16)
    assert_close(a(x), x @ (a.weight * 0.01 / 4.0).t() + a.bias * 0.01, name="lr multiplier")
