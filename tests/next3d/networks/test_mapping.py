import pytest
import torch

from helpers import assert_close
from next3d.networks.mapping import MappingNetwork
from torch_utils.misc import ShapeError


def _mapping(**kw):
    return MappingNetwork(z_dim=8, c_dim=25, w_dim=16, num_ws=6, num_layers=2, **kw)


def test_shapes_and_names():
    m = _mapping()
    z, c = torch.randn(3, 8), torch.randn(3, 25)
    ws = m(z, c)
    assert ws.shape == (3, 6, 16)
    assert torch.equal(ws[:, 0], ws[:, 5])  # broadcast of one w
    assert m(z, c, num_ws=28).shape == (3, 28, 16)
    assert_close(m(z, c, num_ws=28)[:, 0], ws[:, 0], name="override")
    assert set(dict(m.named_parameters())) == {"embed.weight", "embed.bias", "fc0.weight", "fc0.bias",
                                               "fc1.weight", "fc1.bias"}
    assert m.fc0.weight.shape == (16, 8 + 16)
    assert "num_ws=6" in repr(m)


def test_label_matters_and_is_normalised():
    m = _mapping()
    z, c = torch.randn(2, 8), torch.randn(2, 25)
    assert not torch.allclose(m(z, c), m(z, c + 1))
    # Second-moment normalisation makes the output invariant to the scale of z.
    assert_close(m(z, c), m(z * 7, c), rtol=1e-4, atol=1e-5, name="z scale")


def test_truncation():
    m = _mapping()
    with torch.no_grad():
        m.w_avg.normal_()
    z, c = torch.randn(2, 8), torch.randn(2, 25)
    ws = m(z, c)
    assert_close(m(z, c, truncation_psi=0), m.w_avg.expand(2, 6, 16), name="psi=0")
    half = m(z, c, truncation_psi=0.5, truncation_cutoff=2)
    assert_close(half[:, :2], m.w_avg + 0.5 * (ws[:, :2] - m.w_avg), rtol=1e-5, atol=1e-5, name="head")
    assert_close(half[:, 2:], ws[:, 2:], name="tail untouched")


def test_w_avg_update():
    m = _mapping(w_avg_beta=0.9)
    z, c = torch.randn(4, 8), torch.randn(4, 25)
    m(z, c)
    assert torch.count_nonzero(m.w_avg) == 0  # no update unless asked
    w = m(z, c, num_ws=1)[:, 0]
    m(z, c, update_emas=True)
    assert_close(m.w_avg, 0.1 * w.mean(0), rtol=1e-5, atol=1e-6, name="ema")


def test_errors():
    m = _mapping()
    with pytest.raises(ShapeError, match=r"c: expected shape \(\*, 25\)"):
        m(torch.randn(2, 8), torch.randn(2, 24))
    with pytest.raises(ValueError, match="batch"):
        m(torch.randn(2, 8), torch.randn(3, 25))
    d = MappingNetwork(z_dim=0, c_dim=25, w_dim=16, num_ws=None, w_avg_beta=None)
    assert d(None, torch.randn(2, 25)).shape == (2, 16)
    assert not hasattr(d, "w_avg")
    with pytest.raises(ValueError, match="truncation needs w_avg"):
        d(None, torch.randn(2, 25), truncation_psi=0.5)
