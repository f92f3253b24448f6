"""Build flags of the CPU kernels and what impl='auto' picks per device and op."""

import torch

from torch_utils import compute_policy as cp
from torch_utils import custom_ops


def test_cpu_flags_enable_openmp_when_torch_runs_on_openmp():
    flags = custom_ops.cpu_build_flags()
    links = custom_ops.cpu_link_flags()
    if "parallel backend: OpenMP" in torch.__config__.parallel_info():
        assert "-fopenmp" in flags
        assert any("gomp" in f or f == "-fopenmp" for f in links)
    else:
        assert "-fopenmp" not in flags and links == []
    if {"avx2", "fma"} <= custom_ops._cpu_features():
        assert "-mavx2" in flags and "-mfma" in flags


def test_auto_choice_follows_the_table_and_the_policy(monkeypatch):
    monkeypatch.setitem(custom_ops.AUTO_PREFERENCE, ("fake_op", "cpu"), "ref")
    assert custom_ops.auto_choice("fake_op", "cpu") == "ref"
    assert custom_ops.auto_choice("fake_op", "cuda") == "compiled"
    assert custom_ops.auto_choice("unlisted_op", "cpu") == "compiled"
    with cp.use(cp.PUBLISHED):
        assert custom_ops.auto_choice("unlisted_op", "cpu") == "ref"


def test_info_names_what_auto_uses(monkeypatch):
    from next3d import info

    monkeypatch.setitem(custom_ops.AUTO_PREFERENCE, ("upfirdn2d", "cpu"), "ref")
    monkeypatch.setitem(custom_ops.AUTO_REASON, ("upfirdn2d", "cpu"), "test reason")
    assert info._auto_use("upfirdn2d", "cpu") == "the reference (test reason)"
    monkeypatch.setitem(custom_ops.AUTO_PREFERENCE, ("upfirdn2d", "cpu"), "compiled")
    assert info._auto_use("upfirdn2d", "cpu") == "the compiled kernel"


def test_inplace_bias_act_on_the_cpu_takes_the_table_entry(monkeypatch):
    """impl='auto' in place on the CPU runs the in-place reference when the table says so
    (measured faster), the kernel otherwise; same values either way."""
    from torch_utils.ops import bias_act

    calls = []
    real = bias_act._bias_act_inplace_ref
    monkeypatch.setattr(bias_act, "_bias_act_inplace_ref", lambda *a: calls.append(1) or real(*a))
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 5)
    b = torch.randn(8)
    want = bias_act.bias_act(x, b, act="lrelu", clamp=1.0, impl="ref")
    results = {}
    with torch.no_grad():
        for choice in ("ref", "compiled"):
            monkeypatch.setitem(custom_ops.AUTO_PREFERENCE, ("bias_act_inplace", "cpu"), choice)
            calls.clear()
            results[choice] = bias_act.bias_act(x.clone(), b, act="lrelu", clamp=1.0, inplace=True)
            assert len(calls) == (1 if choice == "ref" or bias_act._compiled_module("auto", x) is None else 0)
    for got in results.values():
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
    from next3d import info

    monkeypatch.setitem(custom_ops.AUTO_PREFERENCE, ("bias_act_inplace", "cpu"), "ref")
    assert "written in place (inference) the reference" in info._auto_use("bias_act", "cpu")
