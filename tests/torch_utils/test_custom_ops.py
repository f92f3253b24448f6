"""The op loader: NEXT3D_OPS=ref, fallback with one line of reason, cached builds across processes."""

import os
import subprocess
import sys
import uuid

import pytest
import torch

from helpers import REPO, assert_close
from torch_utils import custom_ops
from torch_utils.ops import bias_act, upfirdn2d


def _unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_ref_mode_forces_reference_and_auto_comes_back(monkeypatch):
    if custom_ops.ops_mode() == "ref":
        pytest.skip("NEXT3D_OPS=ref for the whole run")
    assert bias_act._load_cpu() is not None
    monkeypatch.setenv("NEXT3D_OPS", "ref")
    assert bias_act._load_cpu() is None  # a fresh lookup ignores the already-loaded module
    assert custom_ops.statuses()["bias_act_cpu"].reason == "NEXT3D_OPS=ref forces the reference"
    x = torch.randn(2, 3, 4, requires_grad=True)
    y = bias_act.bias_act(x, act="swish")
    assert "Compiled" not in type(y.grad_fn).__name__
    assert_close(y, bias_act._bias_act_ref(x, act="swish"), name="ref")
    monkeypatch.setenv("NEXT3D_OPS", "auto")
    assert bias_act._load_cpu() is not None
    assert custom_ops.statuses()["bias_act_cpu"].ok


def test_missing_sources_fall_back_with_one_line(capsys, tmp_path):
    if custom_ops.ops_mode() == "ref":
        pytest.skip("NEXT3D_OPS=ref")
    name = _unique("next3d_test_missing")
    missing = tmp_path / "nothing_here.cpp"
    assert custom_ops.load_op(name, [str(missing)]) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"next3d: op '{name}' uses the pure-PyTorch reference: sources not found")
    assert str(missing) in err[0]
    status = custom_ops.statuses()[name]
    assert not status.ok and "sources not found" in status.reason
    # Asked again: no second message, still None.
    assert custom_ops.load_op(name, [str(missing)]) is None
    assert capsys.readouterr().err == ""


def test_syntax_error_falls_back_with_one_line(capsys, tmp_path, monkeypatch):
    if custom_ops.ops_mode() == "ref":
        pytest.skip("NEXT3D_OPS=ref")
    if custom_ops._why_cannot_build(False) is not None:
        pytest.skip(custom_ops._why_cannot_build(False))
    monkeypatch.setenv("NEXT3D_BUILD_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "broken.cpp"
    src.write_text("this is not C++ at all;\n")
    name = _unique("next3d_test_broken")
    assert custom_ops.load_op(name, [str(src)]) is None
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.startswith("next3d:")]
    assert err[-1].startswith(f"next3d: op '{name}' uses the pure-PyTorch reference: build failed")
    assert "NEXT3D_OPS_VERBOSE=1" in err[-1]
    assert sum("uses the pure-PyTorch reference" in ln for ln in err) == 1
    assert not custom_ops.statuses()[name].ok


def test_unavailable_compiled_op_uses_reference(monkeypatch):
    monkeypatch.setitem(bias_act._LOADERS, "cpu", lambda: None)
    monkeypatch.setitem(upfirdn2d._LOADERS, "cpu", lambda: None)
    x = torch.randn(2, 3, 8, 8)
    b = torch.randn(3)
    assert_close(bias_act.bias_act(x, b, act="lrelu"), bias_act._bias_act_ref(x, b, act="lrelu"), name="bias_act")
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert_close(upfirdn2d.upsample2d(x, f), upfirdn2d.upsample2d(x, f, impl="ref"), name="upsample2d")


def _load_bias_act_in_subprocess() -> subprocess.CompletedProcess:
    """Load the CPU bias_act op in a fresh process sharing this build cache; stdout = how it was obtained."""
    env = dict(os.environ, NEXT3D_BUILD_CACHE=str(custom_ops.build_cache_dir()), NEXT3D_OPS="auto")
    code = (
        "from torch_utils import custom_ops\n"
        "from torch_utils.ops import bias_act\n"
        "assert bias_act._load_cpu() is not None\n"
        "print(custom_ops.statuses()['bias_act_cpu'].reason)\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_second_process_reuses_the_cached_build():
    if custom_ops.ops_mode() == "ref":
        pytest.skip("NEXT3D_OPS=ref")
    assert bias_act._load_cpu() is not None  # built (or cached) into build_cache_dir()
    res = _load_bias_act_in_subprocess()
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "cached"
    assert "building" not in res.stderr


def test_build_folder_is_named_by_source_hash(tmp_path):
    a = tmp_path / "a.cpp"
    a.write_text("int f() { return 1; }\n")
    h1 = custom_ops._source_hash([a], ["-O3"])
    assert h1 == custom_ops._source_hash([a], ["-O3"])
    assert h1 != custom_ops._source_hash([a], ["-O2"])
    a.write_text("int f() { return 2; }\n")
    assert h1 != custom_ops._source_hash([a], ["-O3"])


def test_registry_lists_the_ops():
    reg = custom_ops.registered()
    for op in ("bias_act", "upfirdn2d"):
        assert set(reg[op]) == {"cpu", "cuda"}
    assert reg["bias_act"]["cpu"][0] == "bias_act_cpu"
    loaded = reg["upfirdn2d"]["cpu"][1]()
    assert (loaded is not None) == (custom_ops.ops_mode() == "auto")


def test_stale_build_lock_of_a_killed_build_is_removed():
    """torch's `lock` file left by a killed build must not make later loads wait forever."""
    if custom_ops.ops_mode() == "ref":
        pytest.skip("NEXT3D_OPS=ref")
    if not hasattr(os, "fork"):
        pytest.skip("flock-based lock is POSIX only")
    assert bias_act._load_cpu() is not None
    build_dir = custom_ops.statuses()["bias_act_cpu"].path
    stale = os.path.join(build_dir, "lock")
    open(stale, "w").close()  # what a build killed between acquiring and releasing leaves
    res = _load_bias_act_in_subprocess()
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "cached"
    assert "stale build lock" in res.stderr
    assert not os.path.exists(stale)
