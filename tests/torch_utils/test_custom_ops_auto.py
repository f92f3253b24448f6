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
