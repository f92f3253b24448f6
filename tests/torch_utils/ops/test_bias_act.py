"""bias_act: compiled kernels against the pure-PyTorch reference (values, 1st and 2nd derivatives)."""

import math

import pytest
import torch

from helpers import DEVICES, assert_close
from torch_utils import custom_ops
from torch_utils.misc import ShapeError
from torch_utils.ops import bias_act

IMPL = {"cpu": "cpp", "cuda": "cuda"}


def _compiled_or_skip(device):
    if custom_ops.ops_mode() == "ref":
        pytest.skip("NEXT3D_OPS=ref")
    module = bias_act._LOADERS[device]()
    assert module is not None, custom_ops.statuses()[f"bias_act_{device}"].reason
    return IMPL[device]


def _grads(impl, x, b, w, **kw):
    """Output, first derivatives w.r.t. x and b, and second derivatives of a scalar of them."""
    y = bias_act.bias_act(x, b, impl=impl, **kw)
    gx, gb = torch.autograd.grad((y * w).sum(), [x, b], create_graph=True)
    loss2 = (gx ** 2).sum() + (gb ** 3).sum() + 0 * (x.sum() + w.sum())
    g2 = torch.autograd.grad(loss2, [x, b, w], allow_unused=True)
    g2 = [torch.zeros_like(t) if g is None else g for g, t in zip(g2, [x, b, w])]
    return [y, gx, gb, *g2]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("act", list(bias_act.ACTIVATIONS))
@pytest.mark.parametrize("clamp,gain,alpha", [(None, None, None), (0.4, 0.7, 0.3)])
def test_compiled_matches_reference(device, act, clamp, gain, alpha):
    impl = _compiled_or_skip(device)
    g = torch.Generator().manual_seed(1)
    kw = dict(act=act, clamp=clamp, gain=gain, alpha=alpha)
    x = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64).to(device).requires_grad_()
    b = torch.randn(5, generator=g, dtype=torch.float64).to(device).requires_grad_()
    w = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64).to(device).requires_grad_()
    ref = _grads("ref", x, b, w, **kw)
    got = _grads(impl, x, b, w, **kw)
    for name, r, c in zip(["y", "dx", "db", "d2x", "d2b", "d2w"], ref, got):
        assert_close(c, r, rtol=1e-9, atol=1e-9, name=f"{act} {name}")
    if clamp is not None:
        assert float(ref[0].detach().abs().max()) <= clamp + 1e-12
        assert float((ref[0].detach().abs() == clamp).double().mean()) > 0.1  # the clamp really acted


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim,shape", [(1, (3, 7)), (0, (6, 2, 3)), (2, (2, 3, 5))])
def test_float32_and_bias_dims(device, dim, shape):
    impl = _compiled_or_skip(device)
    x = torch.randn(shape, device=device)
    b = torch.randn(shape[dim], device=device)
    for act in ("lrelu", "swish", "tanh"):
        ref = bias_act.bias_act(x, b, dim=dim, act=act, clamp=1.0, impl="ref")
        got = bias_act.bias_act(x, b, dim=dim, act=act, clamp=1.0, impl=impl)
        assert_close(got, ref, rtol=1e-5, atol=1e-6, name=f"{act} dim={dim}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_half():
    _compiled_or_skip("cuda")
    x = torch.randn(4, 8, 16, 16, device="cuda")
    b = torch.randn(8, device="cuda")
    ref = bias_act.bias_act(x, b, act="lrelu", clamp=256, impl="ref")
    got = bias_act.bias_act(x.half(), b.half(), act="lrelu", clamp=256, impl="cuda")
    assert got.dtype == torch.float16
    assert_close(got.float(), ref, rtol=1e-2, atol=1e-2, name="half")


def test_reference_values():
    x = torch.tensor([[-2.0, 0.5], [1.0, -0.25]])
    b = torch.tensor([0.5, -1.0])
    y = bias_act._bias_act_ref(x, b, act="lrelu")
    expect = torch.tensor([[-1.5 * 0.2, -0.5 * 0.2], [1.5, -1.25 * 0.2]]) * math.sqrt(2)
    assert_close(y, expect, name="lrelu")
    assert_close(bias_act._bias_act_ref(x, act="relu", gain=1, clamp=0.75), x.clamp(0, 0.75), name="relu clamp")
    assert_close(bias_act._bias_act_ref(x, b, act="linear"), x + b, name="linear")


def test_auto_uses_compiled_on_cpu():
    if custom_ops.ops_mode() == "ref":
        pytest.skip("NEXT3D_OPS=ref")
    x = torch.randn(2, 3, 4, requires_grad=True)
    y = bias_act.bias_act(x, act="tanh")
    assert "BiasActCompiled" in type(y.grad_fn).__name__


def test_ops_ref_env_forces_reference(monkeypatch):
    monkeypatch.setenv("NEXT3D_OPS", "ref")
    x = torch.randn(2, 3, 4, requires_grad=True)
    y = bias_act.bias_act(x, act="tanh")
    assert "BiasActCompiled" not in type(y.grad_fn).__name__
    assert bias_act._load_cpu() is None
    with pytest.raises(RuntimeError, match="impl='cpp' is unavailable"):
        bias_act.bias_act(x, act="tanh", impl="cpp")


@pytest.mark.parametrize("impl", ["ref", "auto"])
def test_bad_inputs(impl):
    x = torch.randn(2, 3, 4)
    with pytest.raises(ShapeError, match=r"b must have shape \(3,\).*got \(4,\)"):
        bias_act.bias_act(x, torch.zeros(4), impl=impl)
    with pytest.raises(ShapeError, match="floating-point"):
        bias_act.bias_act(torch.zeros(2, 3, dtype=torch.int64), impl=impl)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        bias_act.bias_act(x, act="gelu", impl=impl)
    with pytest.raises(ValueError, match="dim=3 is out of range"):
        bias_act.bias_act(x, torch.zeros(3), dim=3, impl=impl)
    with pytest.raises(ShapeError, match="dtype and device"):
        bias_act.bias_act(x, torch.zeros(3, dtype=torch.float64), impl=impl)
    with pytest.raises(ValueError, match="clamp must be None or >= 0"):
        bias_act.bias_act(x, clamp=-1, impl=impl)


def test_bad_impl():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="impl='fast' is not understood"):
        bias_act.bias_act(x, impl="fast")
    with pytest.raises(ValueError, match="impl='cuda' needs a cuda tensor"):
        bias_act.bias_act(x, impl="cuda")
    with pytest.raises(ValueError, match="supports dtypes float32, float64, got float16"):
        bias_act.bias_act(x.half(), impl="cpp")
