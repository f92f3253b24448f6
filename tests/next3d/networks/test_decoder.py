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


@pytest.mark.parametrize("batch", [1, 2])
def test_planes_averaged_as_sampled_equal_the_published_copy(batch):
    """grid_sample's layout (B, 3, C, N) seen as (B, 3, N, C): both averaging paths, values and gradients."""
    from torch_utils import compute_policy as cp

    torch.manual_seed(1)
    dec = TriPlaneDecoder(in_channels=5, hidden_channels=8, out_channels=4)
    raw = torch.randn(batch, 3, 5, 11, requires_grad=True)
    feats = raw.permute(0, 1, 3, 2)
    assert feats.stride(2) == 1
    outs = {}
    for name, policy in (("fast", cp.FAST), ("published", cp.PUBLISHED)):
        with cp.use(policy):
            out = dec(feats)
        grad, = torch.autograd.grad(out["sigma"].sum() + out["features"].square().sum(), raw)
        outs[name] = (out, grad)
    (fast, g_fast), (pub, g_pub) = outs["fast"], outs["published"]
    for key in ("sigma", "features"):
        assert fast[key].shape == pub[key].shape
        torch.testing.assert_close(fast[key], pub[key], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g_fast, g_pub, atol=1e-6, rtol=1e-6)
    assert float(g_fast.abs().sum()) > 0
